"""Tamper evidence: every way of editing the log is caught by `verify`, which names the first bad place."""

from __future__ import annotations

import json
import os

import pytest

from deskgate.server.audit.checkpoints import FileAnchor
from deskgate.server.audit.log import AuditLog
from deskgate.server.audit.records import canonical, digest
from deskgate.server.settings import AuditSection


def _ten_records(kit, **settings) -> list[bytes]:
    log = kit.open(**settings)
    kit.fill(log, 10)
    log.close()
    assert kit.check().ok
    return kit.lines()


def _reseal(lines: list[bytes], start: int, change) -> list[bytes]:
    """What an attacker without the key can do: edit record `start` and recompute every hash after it."""
    records = [json.loads(line) for line in lines]
    change(records[start])
    for i in range(start, len(records)):
        if i:
            records[i]["prev"] = records[i - 1]["hash"]
        records[i]["hash"] = digest(records[i])
    return [canonical(r) + b"\n" for r in records]


def test_an_untouched_log_verifies(kit) -> None:
    """The baseline: ten records, a shutdown checkpoint, nothing unsigned."""
    _ten_records(kit)
    report = kit.check()
    assert (report.ok, report.records, report.checkpoints, report.unsigned) == (True, 10, 1, 0)


@pytest.mark.parametrize(("find", "replace", "what"), [
    (b"lookup_order", b"lookup_ordes", "does not match its hash"),   # a value
    (b'"seq":5', b'"seq":6', "does not match its hash"),             # the seq itself
    (b'"kind":"call"', b'"kind":"cal"}', "not valid JSON"),          # the syntax
    (b'"status":"ok"', b'"status" :"ok"', "not in canonical form"),  # harmless-looking whitespace
])
def test_one_flipped_byte_is_caught_at_its_line(kit, find, replace, what) -> None:
    """Flip one byte of record 5: verify fails at line 5 and says how."""
    lines = _ten_records(kit)
    lines[4] = lines[4].replace(find, replace, 1)
    kit.rewrite(lines)
    report = kit.check()
    assert not report.ok
    assert report.problems[0].where.startswith("audit-000001.jsonl:5")
    assert what in report.problems[0].what
    assert report.records == 4


def test_a_deleted_record_is_caught_where_the_gap_is(kit) -> None:
    """Remove record 5: line 5 now holds seq 6, and verify names the missing seq."""
    lines = _ten_records(kit)
    del lines[4]
    kit.rewrite(lines)
    problem = kit.check().problems[0]
    assert problem.where == "audit-000001.jsonl:5 (seq 6)"
    assert "5..5 deleted" in problem.what


def test_two_reordered_records_are_caught(kit) -> None:
    """Swap records 4 and 5: verify stops at line 4."""
    lines = _ten_records(kit)
    lines[3], lines[4] = lines[4], lines[3]
    kit.rewrite(lines)
    problem = kit.check().problems[0]
    assert problem.where == "audit-000001.jsonl:4 (seq 5)"


def test_a_duplicated_record_is_caught(kit) -> None:
    """Record 5 written twice: the copy at line 6 is named as a duplicate."""
    lines = _ten_records(kit)
    lines.insert(5, lines[4])
    kit.rewrite(lines)
    problem = kit.check().problems[0]
    assert problem.where == "audit-000001.jsonl:6 (seq 5)"
    assert "duplicate" in problem.what


def test_a_record_replaced_by_another_with_a_valid_own_hash_is_caught_by_the_link(kit) -> None:
    """A self-consistent forged record 5 (own hash fine) does not link to record 4."""
    lines = _ten_records(kit)
    forged = json.loads(lines[4])
    forged["prev"] = "f" * 64
    forged["hash"] = digest(forged)
    lines[4] = canonical(forged) + b"\n"
    kit.rewrite(lines)
    problem = kit.check().problems[0]
    assert problem.where == "audit-000001.jsonl:5 (seq 5)"
    assert "does not link" in problem.what


def test_a_truncated_tail_is_caught_against_the_signed_checkpoint(kit) -> None:
    """Cut the last three records cleanly: the chain is consistent, the checkpoint is not."""
    lines = _ten_records(kit)
    kit.rewrite(lines[:7])
    report = kit.check()
    assert not report.ok
    assert "signed head at seq 10 but the log ends at seq 7: truncated" in report.problems[0].what
    assert report.problems[0].where == "checkpoints.jsonl:1"


def test_a_tail_cut_mid_line_is_reported_as_torn(kit) -> None:
    """Half a line at the end (a crash not yet recovered, or a cut) is not a pass."""
    lines = _ten_records(kit)
    kit.rewrite([*lines[:9], lines[9][:40]])
    problem = kit.check().problems[0]
    assert problem.where == "audit-000001.jsonl:10"
    assert "torn" in problem.what


def test_a_whole_chain_rewritten_without_the_key_is_caught_at_the_next_signed_head(kit) -> None:
    """Edit record 5 and recompute every hash after it: checkpoint 6 no longer matches."""
    lines = _ten_records(kit, checkpoint_every_records=2)
    kit.rewrite(_reseal(lines, 4, lambda r: r.update(status="denied")))
    report = kit.check()
    assert not report.ok
    problem = report.problems[0]
    assert problem.where == "audit-000001.jsonl:6 (seq 6)"
    assert "records after seq 4 up to 6 were rewritten" in problem.what


def test_a_forged_or_edited_checkpoint_fails_its_signature(kit) -> None:
    """Moving a checkpoint's seq (or head) without the key breaks its signature."""
    _ten_records(kit)
    path = kit.dir / "checkpoints.jsonl"
    cp = json.loads(path.read_bytes())
    cp["seq"] = 7
    path.write_bytes(canonical(cp) + b"\n")
    problem = kit.check().problems[0]
    assert (problem.where, problem.what) == ("checkpoints.jsonl:1", "bad signature")


def test_deleting_the_checkpoints_file_is_caught(kit) -> None:
    """Without checkpoints nothing would be signed: their absence is itself a failure."""
    _ten_records(kit)
    (kit.dir / "checkpoints.jsonl").unlink()
    assert kit.check().problems[0].where == "checkpoints.jsonl"


def test_a_rewrite_with_a_substituted_key_is_caught_by_the_external_anchor(kit, tmp_path) -> None:
    """The attacker rewrites the chain, makes a new key and re-signs; the anchor's kid gives it away."""
    anchor = tmp_path / "anchor.jsonl"
    log = AuditLog(kit.dir, AuditSection(), anchor=FileAnchor(anchor))
    kit.fill(log, 10)
    log.close()
    assert kit.check(anchor=anchor).ok
    kit.rewrite(_reseal(kit.lines(), 2, lambda r: r.update(tool="refund_order")))
    for name in ("audit.key", "audit.pub", "checkpoints.jsonl"):
        (kit.dir / name).unlink()
    kit.open().close()  # a fresh audit.key, and the rewritten head signed with it
    assert kit.check().ok  # locally consistent: only an outside copy can tell
    report = kit.check(anchor=anchor)
    assert not report.ok
    assert any("signed by another key" in p.what and p.where.startswith("anchor") for p in report.problems)


def test_a_truncation_hidden_by_emptying_the_checkpoints_is_caught_by_the_anchor(kit, tmp_path) -> None:
    """Cut the tail and empty checkpoints.jsonl: the anchored checkpoint still covers seq 10."""
    anchor = tmp_path / "anchor.jsonl"
    log = AuditLog(kit.dir, AuditSection(), anchor=FileAnchor(anchor))
    kit.fill(log, 10)
    log.close()
    kit.rewrite(kit.lines()[:6])
    (kit.dir / "checkpoints.jsonl").write_bytes(b"")
    report = kit.check(anchor=anchor)
    assert report.problems[0].where == "anchor anchor.jsonl:1"
    assert "truncated" in report.problems[0].what


def _rotated(kit) -> int:
    log = kit.open(rotate_bytes=4096)
    kit.fill(log, 100)
    log.close()
    files = len(list(kit.dir.glob("audit-*.jsonl")))
    assert files >= 4
    return files


def test_rotation_continues_one_chain_across_files(kit) -> None:
    """The first record of each segment links to the last record of the one before."""
    files = _rotated(kit)
    report = kit.check()
    assert (report.ok, report.files, report.records) == (True, files, 100)
    last_of_first = json.loads(kit.lines(1)[-1])
    first_of_second = json.loads(kit.lines(2)[0])
    assert first_of_second["prev"] == last_of_first["hash"]
    assert first_of_second["seq"] == last_of_first["seq"] + 1


@pytest.mark.parametrize("deleted", [1, 2])
def test_a_deleted_rotated_file_is_caught_and_named(kit, deleted) -> None:
    """Delete segment 1 or 2: verify names the missing file."""
    _rotated(kit)
    kit.segment(deleted).unlink()
    problem = kit.check().problems[0]
    assert problem.where == f"audit-{deleted:06d}.jsonl"
    assert "missing" in problem.what


def test_a_renumbered_segment_set_hiding_a_deletion_is_caught_by_the_chain(kit) -> None:
    """Delete segment 2 and rename 3 to 2 to close the gap: seq and links expose it."""
    _rotated(kit)
    kit.segment(2).unlink()
    os.replace(kit.segment(3), kit.segment(2))
    problem = kit.check().problems[0]
    assert problem.where.startswith("audit-000002.jsonl:1 ")
    assert "deleted" in problem.what


def test_rotation_by_age_starts_a_new_file(kit) -> None:
    """A segment older than rotate_seconds is closed even if small (clock injected, no waiting)."""
    now = [1_000_000.0]
    log = AuditLog(kit.dir, AuditSection(), rotate_seconds=3600, clock=lambda: now[0])
    kit.fill(log, 2)
    now[0] += 3600
    kit.fill(log, 1)
    log.close()
    assert [len(kit.lines(i)) for i in (1, 2)] == [2, 1]
    assert kit.check().ok

