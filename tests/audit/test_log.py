"""The append contract: sequence numbers, the hash chain, validation, injection-proof lines."""

from __future__ import annotations

import json
import os
import stat

import anyio
import pytest

from deskgate.server.audit.records import GENESIS, digest
from deskgate.server.errors import AuditUnavailable


@pytest.mark.anyio
async def test_each_append_returns_the_next_seq_and_links_to_the_previous_record(kit) -> None:
    """seq 1, 2, 3 ... and each record's prev is the hash of the one before (GENESIS first)."""
    log = kit.open()
    assert [await log.append(kit.event(i)) for i in range(3)] == [1, 2, 3]
    await log.aclose()
    records = [json.loads(line) for line in kit.lines()]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev"] == GENESIS
    assert [r["prev"] for r in records[1:]] == [r["hash"] for r in records[:-1]]
    assert all(r["hash"] == digest(r) for r in records)
    assert kit.check().ok


@pytest.mark.anyio
async def test_concurrent_async_appends_get_distinct_gapless_seqs(kit) -> None:
    """200 concurrent tasks: every seq from 1 to 200 exactly once, and the chain verifies."""
    log = kit.open()
    seqs: list[int] = []

    async def one(i: int) -> None:
        seqs.append(await log.append(kit.event(i)))

    async with anyio.create_task_group() as tg:
        for i in range(200):
            tg.start_soon(one, i)
    await log.aclose()
    assert sorted(seqs) == list(range(1, 201))
    assert kit.check().records == 200


def test_a_newline_ansi_escape_or_forged_json_in_arguments_stays_inside_one_record(kit) -> None:
    """Log injection: the hostile argument is one escaped string inside one line, byte for byte."""
    hostile = 'x"}\n{"kind":"admin","seq":2,"forged":true}\r\x1b[2J\x1b]0;pwned\x07\u202eevil\x00'
    log = kit.open()
    log.append_sync(kit.event(1, args={"note": hostile, "k\ney": 1}))
    log.close()
    raw = kit.segment().read_bytes()
    assert raw.count(b"\n") == 1
    assert all(32 <= b < 127 for b in raw[:-1])  # pure printable ASCII on disk
    (record,) = [json.loads(line) for line in kit.lines()]
    assert record["args"] == {"note": hostile, "k\ney": 1}
    assert kit.check().ok


@pytest.mark.parametrize("bad", [
    {"tool": "x"},                                   # no kind
    {"kind": "party"},                               # unknown kind
    {"kind": "call", "seq": 7},                      # the log sets seq, ts, prev, hash itself
    {"kind": "call", "hash": "0" * 64},
    {"kind": "call", "amount": float("nan")},
    {"kind": "call", "blob": b"bytes"},
    {"kind": "call", "big": "x" * (1024 * 1024)},
    ["kind", "call"],
])
@pytest.mark.parametrize("path", ["queued", "written now"])
@pytest.mark.anyio
async def test_an_invalid_event_is_refused_with_a_clear_error_and_nothing_is_written(kit, bad, path) -> None:
    """Bad input raises AuditUnavailable(code=audit_event_invalid) and the chain is unchanged, whether
    it was queued for the writer (durable) or sealed at once on the caller's thread (durable=False)."""
    log = kit.open()
    log.append_sync(kit.event(0))
    with pytest.raises(AuditUnavailable) as caught:
        await log.append(bad, durable=path == "queued")
    assert caught.value.code == "audit_event_invalid"
    assert await log.append(kit.event(1), durable=False) == 2
    await log.aclose()
    assert kit.check().records == 2


def test_a_caller_mutating_its_event_after_append_does_not_change_the_record(kit) -> None:
    """The log seals a private copy, taken when append is called."""
    log = kit.open()
    ev = kit.event(1, args={"order_id": "O-1"})
    log.append_sync(ev)
    ev["args"]["order_id"] = "O-2"
    log.close()
    assert json.loads(kit.lines()[0])["args"] == {"order_id": "O-1"}


def test_reopening_continues_the_same_chain(kit) -> None:
    """A restarted server appends after the last record on disk, not from 1."""
    first = kit.open()
    kit.fill(first, 5)
    first.close()
    second = kit.open()
    assert second.append_sync(kit.event(9)) == 6
    second.close()
    assert kit.check().records == 6


def test_append_after_close_is_refused(kit) -> None:
    """A closed log fails closed instead of silently dropping the record."""
    log = kit.open()
    log.close()
    with pytest.raises(AuditUnavailable):
        log.append_sync(kit.event(1))


def test_audit_files_and_key_are_private_to_the_owner(kit) -> None:
    """Segments, checkpoints and the key are created 0600, the directory 0700."""
    log = kit.open()
    kit.fill(log, 1)
    log.close()
    assert stat.S_IMODE(os.stat(kit.dir).st_mode) == 0o700
    for name in ("audit-000001.jsonl", "checkpoints.jsonl", "audit.key", "audit.lock"):
        assert stat.S_IMODE(os.stat(kit.dir / name).st_mode) == 0o600, name


def test_an_audit_key_readable_by_others_is_refused(kit) -> None:
    """A leaked-permission key could have been copied: the log will not sign with it."""
    kit.open().close()
    os.chmod(kit.dir / "audit.key", 0o644)
    with pytest.raises(AuditUnavailable, match="chmod 600"):
        kit.open()


def test_a_symlink_planted_as_the_active_segment_makes_the_log_fail_closed(kit, tmp_path) -> None:
    """O_NOFOLLOW: the log never writes through a link to somewhere else."""
    log = kit.open()
    kit.fill(log, 1)
    log.close()
    elsewhere = tmp_path / "elsewhere.jsonl"
    os.replace(kit.segment(), elsewhere)
    kit.segment().symlink_to(elsewhere)
    with pytest.raises(AuditUnavailable, match="symlink"):
        kit.open()
