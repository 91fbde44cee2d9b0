"""Audit log throughput: durable appends/s for 1, 8 and 64 concurrent writers, against the raw fsync
rate of the same disk measured in the same run, and `verify` speed in records/s.

    python -m bench.audit [--dir PATH] [--seconds 3] [--verify-records 100000] [--smoke]

The baseline is one small write + fsync per iteration on a file in the same directory: what an
audit log without group commit could do at best. Each writer is an asyncio task appending in a
loop (as concurrent tool calls do); a ratio above 1 is group commit at work.

"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

import anyio
import anyio.to_thread

from bench._common import SMOKE_HELP, Table, scratch
from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.log import AuditLog
from deskgate.server.audit.verify import verify
from deskgate.server.durable import private_dir
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


async def run(root: Path, *, seconds: float, verify_records: int) -> Table:
    """Every measurement, in directories under `root` (on the disk measured)."""
    private_dir(root)
    raw = raw_fsync_rate(root, seconds)
    table = Table("Audit log: durable appends and verify", ["measure", "rate /s", "records", "x raw fsync"],
                  note="Baseline: one small write + fsync per iteration on a file in the same directory. Each "
                       "writer appends in a loop, as concurrent tool calls do: above 1x is group commit at work.")
    table.add("raw write+fsync (baseline)", f"{raw:,.0f}", "", "1.00")
    for writers in (1, 8, 64):
        rate, count = await append_rate(root / f"w{writers}", writers, seconds)
        table.add(f"durable appends, {writers} writers", f"{rate:,.0f}", f"{count:,}", f"{rate / raw:.2f}")
    await fill(root / "verify", verify_records)
    rate = await anyio.to_thread.run_sync(verify_rate, root / "verify")
    table.add("verify", f"{rate:,.0f}", f"{verify_records:,}", "")
    return table


async def fill(directory: Path, records: int) -> None:
    """`records` records, appended 1000 at a time so that they share a few fsyncs."""
    log = AuditLog(directory, AuditSection())
    try:
        for done in range(0, records, 1000):
            await asyncio.gather(*(log.append(EVENT, durable=False) for _ in range(min(1000, records - done))))
    finally:
        await log.aclose()


def verify_rate(directory: Path) -> float:
    """Records verified per second (signatures, chain, checkpoints) of the log in `directory`."""
    public = load_public_key(directory)
    start = time.perf_counter()
    report = verify(directory, public)
    elapsed = time.perf_counter() - start
    if not report.ok:
        raise RuntimeError(f"the log just written does not verify: {report.problems}")
    return report.records / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="a directory on the disk to measure")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--verify-records", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.verify_records = 0.2, 2000
    with scratch(args.dir, "audit") as root:
        anyio.run(_show, root, args)


async def _show(root: Path, args: argparse.Namespace) -> None:
    (await run(root, seconds=args.seconds, verify_records=args.verify_records)).show()


if __name__ == "__main__":
    main()
