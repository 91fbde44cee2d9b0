"""When the log cannot be written, append fails closed with a reason; once fixed, the same log works on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from deskgate.server.errors import AuditUnavailable

NOBODY = 65534


@contextmanager
def _unwritable(kit) -> Iterator[None]:
    """Take write access away for real: as another user when root (root ignores modes), else by chmod."""
    if os.geteuid() == 0:
        os.seteuid(NOBODY)
        try:
            yield
        finally:
            os.seteuid(0)
    else:
        os.chmod(kit.dir / "audit.lock", 0o400)
        try:
            yield
        finally:
            os.chmod(kit.dir / "audit.lock", 0o600)


def test_append_fails_closed_without_permission_and_succeeds_once_restored(kit) -> None:
    """Permission denied -> AuditUnavailable naming the cause; the writer survives; seqs stay gapless."""
    log = kit.open()
    kit.fill(log, 2)
    with _unwritable(kit), pytest.raises(AuditUnavailable) as caught:
        log.append_sync(kit.event(3))
    assert caught.value.reason == "the audit log cannot be written: permission denied"
    assert caught.value.code == "audit_unavailable"
    assert log.append_sync(kit.event(4)) == 3
    log.close()
    assert kit.check().records == 3


def test_append_fails_closed_while_the_directory_is_gone_and_resumes_when_it_returns(kit, tmp_path) -> None:
    """An unmounted or moved audit directory is a clear error, not a new chain somewhere else."""
    log = kit.open()
    kit.fill(log, 2)
    moved = tmp_path / "moved"
    os.replace(kit.dir, moved)
    with pytest.raises(AuditUnavailable, match="the audit directory is missing"):
        log.append_sync(kit.event(3))
    assert not kit.dir.exists()  # nothing was recreated behind the operator's back
    os.replace(moved, kit.dir)
    assert log.append_sync(kit.event(4)) == 3
    log.close()
    assert kit.check().ok


def test_a_log_replaced_by_an_empty_directory_is_refused_not_restarted_from_seq_1(kit, tmp_path) -> None:
    """The head never moves back: an emptied directory would silently hide every earlier record."""
    log = kit.open()
    kit.fill(log, 5)
    os.replace(kit.dir, tmp_path / "hidden")
    kit.dir.mkdir()
    with pytest.raises(AuditUnavailable, match="ends before seq 5"):
        log.append_sync(kit.event(6))
    shutil.rmtree(kit.dir)  # holds only the lock file the refused append created
    os.replace(tmp_path / "hidden", kit.dir)
    assert log.append_sync(kit.event(6)) == 6
    log.close()


_DISK_FULL = """
import json, os, resource, signal, sys
from pathlib import Path
from deskgate.server.audit.log import AuditLog
from deskgate.server.errors import AuditUnavailable

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
directory = Path(sys.argv[1])
log = AuditLog(directory)
for i in range(3):
    log.append_sync({"kind": "call", "tool": "lookup_order", "status": "ok"})
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
size = (directory / "audit-000001.jsonl").stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))  # room for a third of the next record
try:
    log.append_sync({"kind": "call", "tool": "refund_order", "args": {"pad": "x" * 1000}})
    error = None
except AuditUnavailable as exc:
    error = exc.reason
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
seq = log.append_sync({"kind": "call", "tool": "lookup_order", "status": "ok"})
log.close()
print(json.dumps({"error": error, "seq": seq}))
"""


def test_a_full_disk_mid_record_fails_closed_and_leaves_no_partial_record(kit) -> None:
    """A write cut short by the file-size limit is refused and cut back off; the next append continues."""
    kit.dir.mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", _DISK_FULL, str(kit.dir)], capture_output=True, text=True,
                          timeout=60, check=True)
    result = json.loads(done.stdout)
    assert result == {"error": "the audit log cannot be written: the file size limit is reached", "seq": 4}
    report = kit.check()
    assert (report.ok, report.records, report.torn) == (True, 4, [])
