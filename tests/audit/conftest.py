"""Audit-log fixtures: `kit` opens logs on a fresh directory and tampers with their files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.log import AuditLog
from deskgate.server.audit.segments import segment_name
from deskgate.server.audit.verify import Report, verify
from deskgate.server.settings import AuditSection

APPENDER = Path(__file__).with_name("appender.py")


class AuditKit:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.opened: list[AuditLog] = []

    def open(self, **settings: Any) -> AuditLog:
        log = AuditLog(self.dir, AuditSection(**settings))
        self.opened.append(log)
        return log

    @staticmethod
    def event(i: int, **extra: Any) -> dict[str, Any]:
        return {"kind": "call", "request_id": f"r-{i}", "tool": "lookup_order", "status": "ok",
                "sub": "agent-1", "latency_ms": i % 10, **extra}

    def fill(self, log: AuditLog, count: int) -> list[int]:
        return [log.append_sync(self.event(i)) for i in range(count)]

    def check(self, anchor: Path | None = None) -> Report:
        return verify(self.dir, load_public_key(self.dir), anchor=anchor)

    def segment(self, index: int = 1) -> Path:
        return self.dir / segment_name(index)

    def lines(self, index: int = 1) -> list[bytes]:
        return self.segment(index).read_bytes().splitlines(keepends=True)

    def rewrite(self, lines: list[bytes], index: int = 1) -> None:
        self.segment(index).write_bytes(b"".join(lines))

    def appender(self, *args: str) -> list[str]:
        """argv for tests/audit/appender.py on this directory (a separate process)."""
        return [sys.executable, str(APPENDER), str(self.dir), *args]


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[AuditKit]:
    k = AuditKit(tmp_path / "audit")
    yield k
    for log in k.opened:
        log.close()
