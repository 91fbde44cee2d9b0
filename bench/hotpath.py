"""Where a `get_order` call's time goes: pyinstrument profiles of the chain, in memory and over HTTP.

    python -m bench.hotpath [--calls 2000] [--out bench/results] [--dir DIR] [--smoke]

The chain in memory (`GuardChain.call`, as every transport calls it) and the deskgate server process
over Streamable HTTP, each profiled over `--calls` sequential calls after a warm-up; the profiles are
written to `--out` as hotpath-memory.txt and hotpath-http.txt, and the table gives the latency of the
profiled calls. Nothing is patched: what is profiled is deskgate as shipped.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import anyio
from pyinstrument import Profiler

from bench._common import SMOKE_HELP, Home, Summary, Table, prepare_home, scratch
from bench.overhead import timed_reads
from bench.servers import connected, serving
from deskgate.server.runtime import Runtime

TOOL = "get_order"


async def call_reads(runtime: Runtime, home: Home, calls: int, start: int = 0) -> list[float]:
    seconds, admit = [], runtime.authenticator.admit
    for order in itertools.islice(itertools.cycle(home.workload.orders), start, start + calls):
        began = time.perf_counter()
        outcome = await runtime.chain.call(await admit(home.tokens[0], "memory"), TOOL, {"order_id": order})
        seconds.append(time.perf_counter() - began)
        if outcome.status.value != "ok":
            raise RuntimeError(f"{TOOL} {order} answered {outcome.status.value}: {outcome.reason}")
    return seconds


async def profile_memory(home: Home, calls: int, out: Path) -> Summary:
    runtime = home.open_runtime()
    try:
        await call_reads(runtime, home, min(100, calls))
        profiler = Profiler(interval=0.0005, async_mode="enabled")
        with profiler:
            seconds = await call_reads(runtime, home, calls)
    finally:
        await runtime.aclose()
    _write(out, profiler.output_text(unicode=False, color=False, show_all=False))
    return Summary.of(seconds)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def profile_http(home: Home, calls: int, out: Path) -> Summary:
    """The server process writes its own profile when it stops (see `bench.servers`)."""
    async with serving("deskgate", home.root, home.policy, profile=out) as url, \
            connected(url, home.tokens[0]) as client:
        await client.list_tools()
        warmup = min(100, calls)
        await timed_reads(client, "deskgate", home.workload.orders, warmup, 0)
        return Summary.of(await timed_reads(client, "deskgate", home.workload.orders, calls, warmup))


async def run(home: Home, *, calls: int, out: Path) -> list[Table]:
    table = Table(f"Profiled get_order calls ({calls} sequential, after a warm-up)",
                  ["where", "median ms", "p95 ms", "profile"])
    for where, profile, name in (("in memory (GuardChain.call)", profile_memory, "hotpath-memory.txt"),
                                 ("Streamable HTTP (server process)", profile_http, "hotpath-http.txt")):
        summary = await profile(home, calls, out / name)
        table.add(where, f"{summary.median:.3f}", f"{summary.p95:.3f}", out / name)
    return [table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.calls = 20
    with scratch(args.dir, "hotpath") as root:
        if args.smoke:
            args.out = root / "results"
        anyio.run(_show, root, args)


async def _show(root: Path, args: argparse.Namespace) -> None:
    home = await prepare_home(root, 100 if args.smoke else 1000, sessions=1)
    for table in await run(home, calls=args.calls, out=args.out):
        table.show()


if __name__ == "__main__":
    main()
