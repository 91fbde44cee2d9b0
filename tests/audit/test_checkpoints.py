"""Signed checkpoints every N records and at shutdown, shipped to an external anchor."""

from __future__ import annotations

import json
import shlex
import time

from deskgate.server.audit.checkpoints import CommandAnchor, FileAnchor, checkpoint_problem
from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.log import AuditLog
from deskgate.server.settings import AuditSection


def _checkpoints(kit) -> list[dict]:
    return [json.loads(line) for line in (kit.dir / "checkpoints.jsonl").read_bytes().splitlines()]


def test_the_head_is_signed_every_n_records_and_at_shutdown(kit) -> None:
    """N=10, 25 records: checkpoints at seq 10, 20, and 25 (shutdown), each with a valid signature."""
    log = kit.open(checkpoint_every_records=10)
    kit.fill(log, 25)
    log.close()
    cps = _checkpoints(kit)
    assert [(c["seq"], c["why"]) for c in cps] == [(10, "records"), (20, "records"), (25, "shutdown")]
    public = load_public_key(kit.dir)
    assert all(checkpoint_problem(public, c) is None for c in cps)
    assert kit.check().checkpoints == 3


def test_unsigned_records_are_signed_once_t_seconds_pass_without_more(kit) -> None:
    """T=1 s, N far away: a lone record is signed by the writer on its own ("time"), and only once -
    a head already signed is not signed again while nothing is appended. Waits on the file, bounded."""
    log = kit.open(checkpoint_every_records=1000, checkpoint_every_seconds=1)
    kit.fill(log, 3)
    path = kit.dir / "checkpoints.jsonl"
    deadline = time.monotonic() + 30
    while not path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # more than T: a second "time" checkpoint would have been written by now
    cps = _checkpoints(kit)
    assert [(c["seq"], c["why"]) for c in cps] == [(3, "time")]
    assert checkpoint_problem(load_public_key(kit.dir), cps[0]) is None
    log.close()
    assert [(c["seq"], c["why"]) for c in _checkpoints(kit)] == [(3, "time")]  # shutdown: already signed


def test_a_file_anchor_receives_a_durable_copy_of_every_checkpoint(kit, tmp_path) -> None:
    """The anchor file ends up byte-identical to the local checkpoints file."""
    anchor = tmp_path / "anchor" / "checkpoints.jsonl"
    anchor.parent.mkdir()
    log = AuditLog(kit.dir, AuditSection(checkpoint_every_records=5), anchor=FileAnchor(anchor))
    kit.fill(log, 12)
    log.close()
    assert anchor.read_bytes() == (kit.dir / "checkpoints.jsonl").read_bytes()
    assert kit.check(anchor=anchor).ok


def test_a_command_anchor_gets_each_checkpoint_on_stdin(kit, tmp_path) -> None:
    """Any program (a syslog forwarder, an uploader) can be the anchor; here `sh` appends to a file."""
    received = tmp_path / "received.jsonl"
    command = CommandAnchor(["sh", "-c", f"cat >> {shlex.quote(str(received))}"])
    log = AuditLog(kit.dir, AuditSection(checkpoint_every_records=4), anchor=command)
    kit.fill(log, 8)
    log.close()
    assert [c["seq"] for c in map(json.loads, received.read_bytes().splitlines())] == [4, 8]


def test_a_failing_anchor_is_logged_and_never_fails_an_append(kit, caplog) -> None:
    """The local checkpoint is durable already; an unreachable anchor is a warning, not an outage."""
    log = AuditLog(kit.dir, AuditSection(checkpoint_every_records=2), anchor=CommandAnchor(["false"]))
    assert kit.fill(log, 4) == [1, 2, 3, 4]
    log.close()
    assert log.anchor_failures == 2
    assert "not anchored" in caplog.text
    assert kit.check().ok
