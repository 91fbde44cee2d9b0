"""Signed checkpoints of the chain head, kept beside the log and shipped to an external anchor.

A checkpoint is `{seq, head, ts, kid, why}` plus `sig`, an Ed25519 signature over the canonical
JSON of the other fields. A key rotation writes a handover checkpoint: signed by the old key, it
also names the new one (`next: {kid, pub}`), and from it on every checkpoint must be signed by the
new key (`verify` follows the handovers from the first key; no other way to change keys exists).
Someone who can write the audit directory but has no audit key can
still recompute every hash after an edit - but cannot sign the new head, and cannot make an
already signed (seq, head) disagree with the chain without `verify` noticing. Deleting the tail
or the checkpoints themselves is caught by the anchor: a copy kept where the server's account
cannot rewrite it, as an append-only file or a command (a syslog forwarder, an object-store
upload) that receives each checkpoint's JSON line on stdin.

Shipping runs in its own thread: a slow or failing anchor delays nothing and fails no call; a
failure is logged (the local checkpoint is already durable).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shlex
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deskgate.server.audit.keys import AuditKey, key_id, public_from_text, public_text, verify_signature
from deskgate.server.audit.records import canonical, timestamp
from deskgate.server.audit.segments import append_durably, describe_oserror

ANCHOR_FILE_ENV = "DESKGATE_AUDIT_ANCHOR_FILE"
ANCHOR_COMMAND_ENV = "DESKGATE_AUDIT_ANCHOR_COMMAND"
_FIELDS = frozenset({"seq", "head", "ts", "kid", "why", "sig"})
_HANDOVER_FIELDS = _FIELDS | {"next"}
log = logging.getLogger("deskgate.audit")


def make_checkpoint(key: AuditKey, seq: int, head: str, now: float, why: str, *,
                    hand_to: Ed25519PublicKey | None = None) -> bytes:
    """The checkpoint's line (with newline), signed; with `hand_to`, the handover to that key."""
    body: dict[str, Any] = {"seq": seq, "head": head, "ts": timestamp(now), "kid": key.kid, "why": why}
    if hand_to is not None:
        body["next"] = {"kid": key_id(hand_to), "pub": public_text(hand_to)}
    body["sig"] = key.sign(canonical(body))
    return canonical(body) + b"\n"


def handed_to(cp: dict[str, Any]) -> Ed25519PublicKey | None:
    """The key a valid checkpoint hands over to, if it is a handover (call `checkpoint_problem` first)."""
    return public_from_text(cp["next"]["pub"]) if "next" in cp else None


def checkpoint_problem(public: Ed25519PublicKey, cp: Any) -> str | None:
    """Why `cp` is not a valid checkpoint signed by `public`, or None."""
    if not isinstance(cp, dict) or set(cp) not in (_FIELDS, _HANDOVER_FIELDS):
        return "malformed checkpoint"
    if type(cp["seq"]) is not int or cp["seq"] < 0 or not isinstance(cp["sig"], str):
        return "malformed checkpoint"
    if "next" in cp and _handover_problem(cp["next"]):
        return "malformed key handover"
    if cp["kid"] != key_id(public):
        return f"signed by another key (kid {cp['kid']!s:.16}, expected {key_id(public)})"
    body = {k: v for k, v in cp.items() if k != "sig"}
    if not verify_signature(public, cp["sig"], canonical(body)):
        return "bad signature"
    return None


def _handover_problem(nxt: Any) -> bool:
    if not isinstance(nxt, dict) or set(nxt) != {"kid", "pub"} or not isinstance(nxt["pub"], str):
        return True
    public = public_from_text(nxt["pub"])
    return public is None or nxt["kid"] != key_id(public)


def read_checkpoints(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed JSON or None when unparseable) for each line of a checkpoints file."""
    out: list[tuple[int, Any]] = []
    with path.open("rb") as f:
        for n, line in enumerate(f, 1):
            try:
                out.append((n, json.loads(line)))
            except ValueError:
                out.append((n, None))
    return out


class Anchor(Protocol):
    """Somewhere outside the audit directory that keeps a copy of every checkpoint."""

    def ship(self, line: bytes) -> None: ...


class FileAnchor:
    def __init__(self, path: Path) -> None:
        self.path = path

    def ship(self, line: bytes) -> None:
        append_durably(self.path, line)

    def __repr__(self) -> str:
        return f"FileAnchor({self.path})"


class CommandAnchor:
    """Runs `argv` (no shell) with the checkpoint line on stdin; non-zero exit is a failure."""

    def __init__(self, argv: Sequence[str], timeout: float = 30.0) -> None:
        if not argv:
            raise ValueError("an anchor command needs a program")
        self.argv = list(argv)
        self.timeout = timeout

    def ship(self, line: bytes) -> None:
        subprocess.run(self.argv, input=line, timeout=self.timeout, check=True, capture_output=True)  # noqa: S603 - operator-configured argv, no shell

    def __repr__(self) -> str:
        return f"CommandAnchor({self.argv[0]})"


def anchor_from_env() -> Anchor | None:
    if path := os.environ.get(ANCHOR_FILE_ENV):
        return FileAnchor(Path(path).expanduser())
    if command := os.environ.get(ANCHOR_COMMAND_ENV):
        return CommandAnchor(shlex.split(command))
    return None


class Shipper:
    """One daemon thread delivering checkpoint lines to an anchor, in order."""

    _STOP = b""

    def __init__(self, anchor: Anchor) -> None:
        self.anchor = anchor
        self.failures = 0
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="deskgate-audit-anchor", daemon=True)
        self._thread.start()

    def ship(self, line: bytes) -> None:
        self._queue.put(line)

    def close(self) -> None:
        """Deliver what is queued, then stop."""
        self._queue.put(self._STOP)
        self._thread.join()

    def _run(self) -> None:
        while (line := self._queue.get()) != self._STOP:
            try:
                self.anchor.ship(line)
            except OSError as exc:
                self.failures += 1
                log.warning("audit checkpoint not anchored at %r: %s", self.anchor, describe_oserror(exc))
            except subprocess.SubprocessError as exc:
                self.failures += 1
                log.warning("audit checkpoint not anchored at %r: %s", self.anchor, type(exc).__name__)
