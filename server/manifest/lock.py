"""The manifest lock: the reviewed manifest, pinned, and the check that the server serves exactly it.

A lock file is canonical JSON `{"kind": "deskgate-manifest-lock", "manifest_hash": H, "manifest": M}`.
Reading one recomputes H from M and refuses a lock whose stored hash does not match (hand-edited
or damaged), so the hash a reviewer approved is the hash of the text the lock holds.

`pin` replaces a lock atomically (temporary file in the same directory, fsync, rename, fsync of
the directory): a crash leaves the old lock or the new one, never a torn file. `check` refuses any
difference, naming what changed; `check_served` is how `deskgate serve` applies it at start-up.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deskgate.config import packaged
from deskgate.server.durable import PRIVATE_FILE, atomic_replace
from deskgate.server.errors import ConfigError
from deskgate.server.manifest.build import HASH_KEY, canonical_bytes, manifest_hash, require_manifest
from deskgate.server.manifest.diff import Change, diff, render_diff
from deskgate.server.settings import Paths

LOCK_KIND = "deskgate-manifest-lock"
RELEASE_LOCK = "manifest.lock"  # in the packaged config directory: the repository's config/manifest.lock
_SHOWN_CHANGES = 10  # in the one-line reason; diagnostics() lists them all

logger = logging.getLogger("deskgate.manifest")


class ManifestMismatch(ConfigError):
    """The served manifest is not the pinned one; `changes` says how (riskiest first)."""

    code = "manifest_mismatch"

    def __init__(self, reason: str, *, file: str, changes: list[Change]) -> None:
        super().__init__(reason, file=file)
        self.changes = changes

    def diagnostics(self) -> str:
        return f"{self.reason}\n{render_diff(self.changes)}"


def pin(manifest: Mapping[str, Any], path: Path) -> str:
    """Write `manifest` as the lock at `path`, atomically; returns the pinned hash."""
    manifest = require_manifest(manifest, "manifest to pin")
    digest = manifest_hash(manifest)
    if manifest.get(HASH_KEY) != digest:
        raise ConfigError("the manifest's manifest_hash does not match its content; rebuild it before pinning")
    data = canonical_bytes({"kind": LOCK_KIND, "manifest_hash": digest, "manifest": manifest}) + b"\n"
    _replace(path, data)
    return digest


def load(path: Path) -> dict[str, Any]:
    """The manifest held by a lock file or a plain manifest JSON file, its hash verified."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("no such manifest or lock file", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return parse(raw, str(path))


def parse(raw: bytes, source: str) -> dict[str, Any]:
    """Like `load`, for bytes from elsewhere (e.g. `git show`); `source` names them in errors."""
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"not JSON: {exc}", file=source) from None
    if isinstance(document, dict) and document.get("kind") == LOCK_KIND:
        manifest = require_manifest(document.get("manifest"), source)
        claimed = document.get("manifest_hash")
    else:
        manifest = require_manifest(document, source)
        claimed = manifest.get(HASH_KEY)
    actual = manifest_hash(manifest)
    if claimed != actual or manifest.get(HASH_KEY) != actual:
        raise ConfigError("the stored manifest_hash does not match the manifest it pins (edited or damaged)",
                          file=source)
    return manifest


def check(manifest: Mapping[str, Any], lock_path: Path, *, allow_missing: bool = False) -> None:
    """Refuse (ManifestMismatch) unless `manifest` is exactly the one pinned at `lock_path`."""
    if allow_missing and not lock_path.exists():
        return
    pinned = load(lock_path)
    served_hash = manifest_hash(manifest)
    if served_hash == pinned[HASH_KEY]:
        return
    changes = diff(pinned, manifest)
    shown = "; ".join(f"{c.subject}: {c.detail}" for c in changes[:_SHOWN_CHANGES])
    more = f"; and {len(changes) - _SHOWN_CHANGES} more" if len(changes) > _SHOWN_CHANGES else ""
    raise ManifestMismatch(
        f"the served tool manifest ({served_hash[:12]}) is not the pinned one ({pinned[HASH_KEY][:12]}); "
        f"{len(changes)} change(s): {shown}{more}. Review with `deskgate manifest diff`, then `deskgate manifest pin`",
        file=str(lock_path), changes=changes)


def check_served(manifest: Mapping[str, Any], paths: Paths, *, dev: bool, warn: Callable[[str], None]) -> None:
    """What `deskgate serve` runs before it answers anything.

    The deployment's lock (`$DESKGATE_HOME/manifest.lock`) if there is one, else the release's
    (`config/manifest.lock`), must pin exactly `manifest`. With `dev`, a mismatch or a missing lock
    is only reported through `warn` (and logged) - the development bypass, named as such.
    """
    target = paths.manifest_lock if paths.manifest_lock.exists() else packaged(RELEASE_LOCK)
    try:
        check(manifest, target)
    except ConfigError as exc:
        if not dev:
            raise
        text = f"DEVELOPMENT MODE: serving a tool manifest that is not pinned. {exc.diagnostics()}"
        logger.warning(text)
        warn(text)


def _replace(path: Path, data: bytes) -> None:
    """A new lock is its owner's alone (0600, as all state); a re-pinned one keeps its mode, so the release
    lock in the repository stays readable by everyone who installs it."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else PRIVATE_FILE
        atomic_replace(path, data, mode=mode)
    except OSError as exc:
        raise ConfigError(f"cannot write the lock: {exc.strerror}", file=str(path)) from None
