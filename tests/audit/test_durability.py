"""Group commit, one chain across threads and processes, and recovery after kill -9."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from deskgate.server.audit.reader import iter_records
from deskgate.server.errors import AuditUnavailable


@pytest.mark.anyio
async def test_concurrent_appends_are_made_durable_by_one_fsync_per_batch(kit, monkeypatch) -> None:
    """64 appends queued behind one in-flight fsync are all committed by the next single fsync."""
    log = kit.open()
    log.append_sync(kit.event(0))  # the segment exists now: later fsyncs are data fsyncs only
    in_flight, release = threading.Event(), threading.Event()
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        if len(fsyncs) == 1:
            in_flight.set()
            release.wait()  # hold the first batch on disk until every other append is queued
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    seqs: list[int] = []

    async def one(i: int) -> None:
        seqs.append(await log.append(kit.event(i)))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 1)
            await anyio.to_thread.run_sync(in_flight.wait)  # the writer is inside its fsync
            for i in range(2, 66):
                tg.start_soon(one, i)
            await wait_all_tasks_blocked()  # all 64 are queued, waiting for durability
            release.set()
    assert sorted(seqs) == list(range(2, 67))
    assert len(fsyncs) == 2  # the batch that was in flight, then everyone queued behind it
    monkeypatch.undo()
    await log.aclose()
    assert kit.check().records == 66


def test_threads_appending_at_once_keep_one_gapless_chain(kit) -> None:
    """16 threads x 50 appends via append_sync: 800 distinct seqs, a chain that verifies."""
    log = kit.open(checkpoint_every_records=100, rotate_bytes=16384)
    seqs: list[int] = []
    lock = threading.Lock()

    def work(w: int) -> None:
        for i in range(50):
            seq = log.append_sync(kit.event(w * 1000 + i))
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert sorted(seqs) == list(range(1, 801))
    report = kit.check()
    assert (report.ok, report.records) == (True, 800)
    assert report.files > 1


def test_two_processes_and_this_one_appending_to_one_directory_never_fork_the_chain(kit) -> None:
    """Each process's acknowledged seqs are disjoint; together they are 1..N; verify passes."""
    log = kit.open(rotate_bytes=64 * 1024)
    procs = [subprocess.Popen(kit.appender("300", "8", "200"), stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    here = kit.fill(log, 150)
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    log.close()
    theirs = [[int(line) for line in out.split()] for out in outputs]
    everyone = here + theirs[0] + theirs[1]
    assert len(everyone) == 750
    assert sorted(everyone) == list(range(1, 751))
    report = kit.check()
    assert (report.ok, report.records) == (True, 750)


@pytest.mark.anyio
async def test_reads_written_on_the_callers_thread_while_two_processes_append_never_fork_the_chain(kit) -> None:
    """The same with this process writing durable=False records (on its own thread when the lock is
    free, queued when another process holds it) while two processes append with rotation going on."""
    log = kit.open(rotate_bytes=64 * 1024)
    procs = [subprocess.Popen(kit.appender("600", "8", "200"), stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    first = [await anyio.to_thread.run_sync(p.stdout.readline) for p in procs]  # both are appending now
    here = [await log.append(kit.event(i, pad="y" * 200), durable=False) for i in range(600)]
    # The rest through the same buffered reader (communicate() would skip what readline buffered).
    outputs = [line + await anyio.to_thread.run_sync(p.stdout.read) for line, p in zip(first, procs, strict=True)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    await log.aclose()
    everyone = here + [int(line) for out in outputs for line in out.split()]
    assert sorted(everyone) == list(range(1, 1801))
    report = kit.check()
    assert (report.ok, report.records) == (True, 1800)
    assert report.files > 1


def test_a_torn_last_line_is_set_aside_and_recorded_on_open(kit) -> None:
    """Half a record at the end (a write cut by a crash) goes to a .torn file; a system record says so."""
    log = kit.open()
    kit.fill(log, 3)
    log.close()
    torn = b'{"args":{"note":"half a rec'
    with kit.segment().open("ab") as f:
        f.write(torn)
    reopened = kit.open()
    assert reopened.append_sync(kit.event(9)) == 5  # seq 4 is the system record
    reopened.close()
    (aside,) = kit.dir.glob("*.torn")
    assert aside.read_bytes() == torn
    notice = next(r for r in iter_records(kit.dir) if r["seq"] == 4)
    assert (notice["kind"], notice["event"], notice["bytes"]) == ("system", "torn_tail_set_aside", len(torn))
    report = kit.check()
    assert report.ok
    assert report.torn == [aside.name]


def _acknowledged_then_killed(kit, acks_before_kill: int) -> list[int]:
    proc = subprocess.Popen(kit.appender("1000000", "8", "3000"), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked: list[int] = []
    while len(acked) < acks_before_kill:
        line = proc.stdout.readline()
        assert line, "the appender stopped before it was killed"
        acked.append(int(line))
    proc.send_signal(signal.SIGKILL)
    # Whatever it printed before dying was acknowledged too: durable before it was printed.
    acked += [int(line) for line in proc.stdout.read().split()]
    proc.wait()
    proc.stdout.close()
    return acked


@pytest.mark.slow
def test_kill_9_under_concurrent_load_never_loses_an_acknowledged_record(kit) -> None:
    """Twenty SIGKILLs in a row mid-load: after each restart verify passes and every ack is on disk."""
    all_acked: list[int] = []
    for round_ in range(20):
        all_acked += _acknowledged_then_killed(kit, acks_before_kill=20 + 7 * round_)
        kit.open().close()  # the restart: recovery, then a shutdown checkpoint
        report = kit.check()
        assert report.ok, [str(p) for p in report.problems]
        on_disk = {r["seq"]: r for r in iter_records(kit.dir)}
        missing = [s for s in all_acked if s not in on_disk or on_disk[s]["kind"] != "call"]
        assert not missing, f"round {round_}: acknowledged but lost: {missing[:5]}"
    assert len(set(all_acked)) == len(all_acked)


def test_every_record_a_restarted_log_reads_back_is_exactly_what_was_appended(kit) -> None:
    """Durability is of content, not just count: the stored event equals the appended one."""
    log = kit.open()
    events = [kit.event(i, args={"n": i, "s": "é\u202e\n"}) for i in range(20)]
    for ev in events:
        log.append_sync(ev)
    log.close()
    stored = [{k: v for k, v in r.items() if k not in ("seq", "ts", "prev", "hash")} for r in iter_records(kit.dir)]
    assert stored == json.loads(json.dumps(events))


def _held_fsync(monkeypatch) -> tuple[threading.Event, threading.Event, list[int]]:
    """os.fsync that blocks inside the call until released; (in_flight, release, fds fsync'd)."""
    in_flight, release = threading.Event(), threading.Event()
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def held(fd: int) -> None:
        fsyncs.append(fd)
        in_flight.set()
        release.wait()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", held)
    return in_flight, release, fsyncs


@pytest.mark.anyio
async def test_a_written_append_answers_before_its_fsync_ends_and_a_durable_one_only_after(kit, monkeypatch) -> None:
    """durable=False: answered once the record is in the file (readable by anyone), even while an fsync
    is held; durable=True in the same situation waits for the fsync that covers it."""
    log = kit.open()
    log.append_sync(kit.event(0))
    in_flight, release, _ = _held_fsync(monkeypatch)
    durable_seq: list[int] = []

    async def durable() -> None:
        durable_seq.append(await log.append(kit.event(3)))

    try:
        with anyio.fail_after(30):
            await log.append(kit.event(1), durable=False)
            await anyio.to_thread.run_sync(in_flight.wait)  # the writer is fsync'ing it, and stays there
            seq = await log.append(kit.event(2), durable=False)
            assert not release.is_set()
            assert json.loads(kit.lines()[-1])["seq"] == seq == 3  # already in the file
            async with anyio.create_task_group() as tg:
                tg.start_soon(durable)
                await wait_all_tasks_blocked()
                assert durable_seq == []  # still waiting behind the held fsync
                release.set()
    finally:
        release.set()
    assert durable_seq == [4]
    monkeypatch.undo()
    await log.aclose()
    assert kit.check().records == 4


@pytest.mark.anyio
async def test_a_failed_fsync_fails_closed_until_a_restart_and_keeps_the_records(kit, monkeypatch) -> None:
    """EIO from fsync: the durable caller of that batch hears AuditUnavailable; a read written meanwhile
    already has its seq; everything after is refused (a retried fsync would prove nothing: the kernel
    may have dropped the pages); the lines stay, complete, and a restarted log continues the chain."""
    log = kit.open()
    log.append_sync(kit.event(0))
    in_flight, release, _ = _held_fsync(monkeypatch)
    held = os.fsync

    def failing(fd: int) -> None:
        held(fd)
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing)
    outcomes: dict[str, object] = {}

    async def one(name: str, durable: bool) -> None:
        try:
            outcomes[name] = await log.append(kit.event(len(outcomes) + 1), durable=durable)
        except AuditUnavailable as exc:
            outcomes[name] = exc

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(one, "first", True)  # its batch holds the writer inside fsync
                await anyio.to_thread.run_sync(in_flight.wait)
                tg.start_soon(one, "written", False)
                tg.start_soon(one, "durable", True)
                await wait_all_tasks_blocked()  # queued or written behind the held fsync
                release.set()
    finally:
        release.set()
    assert isinstance(outcomes["first"], AuditUnavailable)
    assert "durable" in outcomes["first"].reason
    assert isinstance(outcomes["written"], int)
    assert isinstance(outcomes["durable"], AuditUnavailable)
    assert "restarted" in outcomes["durable"].reason
    monkeypatch.undo()
    for durable in (True, False):
        with pytest.raises(AuditUnavailable, match="restarted"):
            await log.append(kit.event(9), durable=durable)
    await log.aclose()
    restarted = kit.open()
    assert await restarted.append(kit.event(10)) == 4  # after event 0, first and written; nothing cut back
    await restarted.aclose()
    report = kit.check()
    assert report.ok and report.records == 4


def _counted_fsync(monkeypatch) -> list[int]:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return fsyncs


@pytest.mark.anyio
async def test_written_records_share_one_fsync_and_a_durable_append_does_not_wait_for_the_window(
        kit, monkeypatch) -> None:
    """With a 1 s window, 20 reads written back to back wait for one fsync; a durable append arriving
    meanwhile ends the wait at once, and that single fsync covers all 21 records."""
    log = kit.open(fsync_reads_within_ms=1000)
    log.append_sync(kit.event(0))
    fsyncs = _counted_fsync(monkeypatch)
    with anyio.fail_after(30):
        for i in range(1, 21):
            await log.append(kit.event(i), durable=False)
        assert fsyncs == []  # all written, none fsync'd yet: the window is open
        assert await log.append(kit.event(21)) == 22
    assert len(fsyncs) == 1
    monkeypatch.undo()
    await log.aclose()
    assert kit.check().records == 22


@pytest.mark.anyio
async def test_a_written_record_is_fsynced_when_its_window_closes(kit, monkeypatch) -> None:
    """No durable append follows: the writer fsyncs the written record on its own."""
    log = kit.open(fsync_reads_within_ms=20)
    log.append_sync(kit.event(0))
    fsynced = threading.Event()
    real_fsync = os.fsync

    def noting(fd: int) -> None:
        real_fsync(fd)
        fsynced.set()

    monkeypatch.setattr(os, "fsync", noting)
    with anyio.fail_after(30):
        await log.append(kit.event(1), durable=False)
        assert await anyio.to_thread.run_sync(fsynced.wait, 30)
    monkeypatch.undo()
    await log.aclose()


@pytest.mark.anyio
async def test_after_close_a_written_append_is_refused_and_the_shutdown_checkpoint_covers_what_was_written(
        kit) -> None:
    log = kit.open()
    assert await log.append(kit.event(1), durable=False) == 1
    await log.aclose()
    with pytest.raises(AuditUnavailable, match="closed"):
        await log.append(kit.event(2), durable=False)
    report = kit.check()
    assert (report.ok, report.records, report.checkpoints) == (True, 1, 1)
