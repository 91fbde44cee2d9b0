"""Audit log throughput: durable appends/s for 1, 8 and 64 concurrent writers, against the raw fsync
rate of the same disk measured in the same run, and `verify` speed in records/s.

    python bench/audit.py [--dir PATH] [--seconds 3] [--verify-records 100000]

The baseline is one small write + fsync per iteration on a file in the same directory: what an
audit log without group commit could do at best. Each writer is an asyncio task appending in a
loop (as concurrent tool calls do); a ratio above 1 is group commit at work.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.log import AuditLog
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
        futures = [log._submit(EVENT) for _ in range(batch)]  # bulk fill without one await per record
        for f in futures:
            f.result()
    log.close()
    public = load_public_key(directory)
    start = time.perf_counter()
    report = verify(directory, public)
    elapsed = time.perf_counter() - start
    assert report.ok, report.problems
    return report.records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="a directory on the disk to measure")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--verify-records", type=int, default=100_000)
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


if __name__ == "__main__":
    main()
