"""Append-only, hash-chained audit log as JSON Lines (first version: one fsync per record).

Contract the guard chain relies on: `append(event)` returns the record's sequence number only
once the record is durable on disk; if it cannot be made durable it raises `AuditUnavailable`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio.to_thread

from deskgate.server.errors import AuditUnavailable

GENESIS = "0" * 64


def canonical_line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class AuditLog:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "audit.jsonl"
        self._lock = threading.Lock()
        self._seq, self._head = self._recover()

    def _recover(self) -> tuple[int, str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return 0, GENESIS
        seq, head = 0, GENESIS
        with self.path.open("rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break
                rec = json.loads(line)
                seq, head = rec["seq"], rec["hash"]
        return seq, head

    async def append(self, event: dict[str, Any]) -> int:
        return await anyio.to_thread.run_sync(self.append_sync, event)

    def append_sync(self, event: dict[str, Any]) -> int:
        with self._lock:
            record = {**event, "seq": self._seq + 1, "ts": time.time(), "prev": self._head}
            record["hash"] = hashlib.sha256(canonical_line(record)).hexdigest()
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, canonical_line(record) + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                raise AuditUnavailable("the audit log cannot be written") from exc
            self._seq, self._head = record["seq"], record["hash"]
            return self._seq

    async def aclose(self) -> None:
        return None
