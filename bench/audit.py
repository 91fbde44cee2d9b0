"""Audit log throughput: durable appends/s for 1, 8 and 64 concurrent writers, against the raw fsync
rate of the same disk measured in the same run, and `verify` speed in records/s.

    python bench/audit.py [--dir PATH] [--seconds 3] [--verify-records 100000] [--ab-rounds 6]

The baseline is one small write + fsync per iteration on a file in the same directory: what an
audit log without group commit could do at best. Each writer is an asyncio task appending in a
loop (as concurrent tool calls do); a ratio above 1 is group commit at work.

A/B: the latency of one sequential append (what a lone tool call waits for) with the lock file's
descriptor kept open between batches (as shipped) against opening it per batch (as before), two
logs in two directories, rounds alternating which goes first.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from deskgate.server.audit.batching import _Pending
from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.log import AuditLog
from deskgate.server.audit.records import checked_event
from deskgate.server.audit.segments import LOCK_NAME
from deskgate.server.audit.verify import verify
from deskgate.server.settings import AuditSection

EVENT = {
    "kind": "call", "request_id": "req-0000", "sub": "agent-1", "sid": "s-1", "jti": "j-1",
    "tool": "lookup_order", "decision": "allow", "status": "ok", "policy_version": "p-1",
    "manifest_hash": "m" * 64, "args_digest": "a" * 64, "args": {"order_id": "O-5531"},
    "result_digest": "r" * 64, "latency_ms": 3.2,
}


def raw_fsync_rate(directory: Path, seconds: float) -> float:
    path = directory / "raw-fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    line = b"x" * 400 + b"\n"
    count, deadline = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    try:
        while time.perf_counter() < deadline:
            os.write(fd, line)
            os.fsync(fd)
            count += 1
    finally:
        os.close(fd)
        path.unlink()
    return count / (time.perf_counter() - start)


async def append_rate(directory: Path, writers: int, seconds: float) -> tuple[float, int]:
    log = AuditLog(directory, AuditSection())
    count = 0
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await log.append(EVENT)
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed = time.perf_counter() - start
    await log.aclose()
    return count / elapsed, count


def verify_rate(directory: Path, records: int) -> float:
    log = AuditLog(directory, AuditSection())
    batch = 1000
    for _ in range(records // batch):
        queued = [_Pending(checked_event(EVENT), Future(), True) for _ in range(batch)]
        for pending in queued:  # bulk fill: 1000 records share a few fsyncs, no round trip per record
            log._submit(pending)
        for pending in queued:
            pending.answer.result()
    log.close()
    public = load_public_key(directory)
    start = time.perf_counter()
    report = verify(directory, public)
    elapsed = time.perf_counter() - start
    assert report.ok, report.problems
    return report.records / elapsed


class LockPerBatch(AuditLog):
    """The previous locking: open `audit.lock`, flock it, close it, for every batch."""

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


async def sequential_ab(directory: Path, rounds: int, appends: int) -> dict[str, float]:
    """Median microseconds of one awaited append, per variant, A/B interleaved."""
    logs = {"lock per batch (before)": LockPerBatch(directory / "a", AuditSection()),
            "lock kept open (after)": AuditLog(directory / "b", AuditSection())}
    samples: dict[str, list[float]] = {name: [] for name in logs}
    try:
        for r in range(rounds):
            for name in list(logs) if r % 2 == 0 else list(reversed(logs)):
                for _ in range(appends):
                    began = time.perf_counter()
                    await logs[name].append(EVENT)
                    samples[name].append(time.perf_counter() - began)
    finally:
        for log in logs.values():
            await log.aclose()
    return {name: statistics.median(s) * 1e6 for name, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="a directory on the disk to measure")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--verify-records", type=int, default=100_000)
    parser.add_argument("--ab-rounds", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        raw = raw_fsync_rate(root, args.seconds)
        table = Table(title=f"deskgate audit log ({root})")
        table.add_column("measure")
        table.add_column("rate /s", justify="right")
        table.add_column("records", justify="right")
        table.add_column("x raw fsync", justify="right")
        table.add_row("raw write+fsync (baseline)", f"{raw:,.0f}", "", "1.00")
        for writers in (1, 8, 64):
            rate, count = asyncio.run(append_rate(root / f"w{writers}", writers, args.seconds))
            table.add_row(f"durable appends, {writers} writers", f"{rate:,.0f}", f"{count:,}", f"{rate / raw:.2f}")
        rate = verify_rate(root / "verify", args.verify_records)
        table.add_row("verify", f"{rate:,.0f}", f"{args.verify_records:,}", "")
        Console().print(table)
        ab = asyncio.run(sequential_ab(root / "ab", args.ab_rounds, 500))
        base = next(iter(ab.values()))
        table = Table(title="one sequential append, A/B (median us)")
        for column in ("variant", "median us", "vs before"):
            table.add_column(column)
        for name, median in ab.items():
            table.add_row(name, f"{median:,.1f}", f"{median / base:.2f}x")
        Console().print(table)


if __name__ == "__main__":
    main()
