"""Guard overhead: latency of `get_order` through deskgate's full chain vs a bare MCP server.

    python -m bench.overhead [--rounds 10] [--calls 200] [--customers 1000]

One client, one call at a time (latency, not throughput). deskgate runs the whole chain: JWT
verification with the revocation check, scope, policy, redaction and a durable (fsync'd) audit
record before the answer. The bare server (`bench.bare`) runs the same backend read and nothing
else. Both are measured over Streamable HTTP on loopback (each server in its own process, as
`deskgate serve` runs it) and in memory (`mcp.Client(server)`, no HTTP at all). Over HTTP a third
server, `bare-auth`, is the bare one with the SDK's bearer auth and a PyJWT check (`bench.bare`): it
separates the SDK's HTTP auth cost from deskgate's own. Rounds rotate which server goes first, so
drift and warm-up hit all alike.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
from mcp import Client

from bench._common import SMOKE_HELP, Home, Summary, Table, prepare_home, ratio, scratch
from bench.bare import build_bare_server
from bench.servers import call_ok, connected, serving_all
from deskgate.server.mcp_app import build_mcp_server, fixed_credential
from deskgate.server.store.db import open_database
from deskgate.tools.backend.sql import SqlSupportBackend

TOOL = "get_order"


async def timed_reads(client: Client, kind: str, orders: Sequence[str], calls: int, start: int) -> list[float]:
    """`calls` sequential `get_order` calls; the seconds each took."""
    seconds = []
    for order in itertools.islice(itertools.cycle(orders), start, start + calls):
        began = time.perf_counter()
        await call_ok(client, kind, TOOL, {"order_id": order})
        seconds.append(time.perf_counter() - began)
    return seconds


def fsync_latencies(directory: Path, count: int) -> list[float]:
    """`count` appends of one audit-record-sized line, each made durable with fsync: the floor under
    any server that answers only once a record is on disk."""
    path = directory / "fsync-probe.bin"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    seconds = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            os.write(fd, b"x" * 700 + b"\n")
            os.fsync(fd)
            seconds.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink()
    return seconds


@dataclass(frozen=True)
class Compared:
    """Each server's latency over all rounds, and each round's median as a ratio to bare's in that round."""

    summaries: dict[str, Summary]
    round_ratios: dict[str, list[float]]

    def paired(self, kind: str) -> float:
        """The median of the per-round ratios: drift between rounds (the machine is shared) cancels out."""
        return statistics.median(self.round_ratios[kind])


async def compare(clients: dict[str, Client], orders: Sequence[str], *, rounds: int, calls: int,
                  warmup: int, disk: Path) -> Compared:
    samples: dict[str, list[float]] = {kind: [] for kind in (*clients, "fsync")}
    round_ratios: dict[str, list[float]] = {kind: [] for kind in clients}
    for kind, client in clients.items():
        await client.list_tools()  # both clients know the tool (and its output schema) before timing
        await timed_reads(client, kind, orders, warmup, 0)
    kinds = list(clients)
    for r in range(rounds):
        medians = {}
        for kind in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:  # each server leads in turn
            seconds = await timed_reads(clients[kind], kind, orders, calls, r * calls)
            samples[kind] += seconds
            medians[kind] = statistics.median(seconds)
        for kind in kinds:
            round_ratios[kind].append(medians[kind] / medians["bare"])
        samples["fsync"] += fsync_latencies(disk, calls // 4)  # the disk, sampled in step with the servers
    return Compared({kind: Summary.of(s) for kind, s in samples.items()}, round_ratios)


async def over_http(home: Home, *, rounds: int, calls: int, warmup: int) -> Compared:
    async with serving_all(["bare", "bare-auth", "deskgate"], home.root, home.policy) as urls:
        bare_url, bare_auth_url, deskgate_url = urls
        async with connected(bare_url) as bare, connected(bare_auth_url, home.tokens[0]) as bare_auth, \
                connected(deskgate_url, home.tokens[0]) as deskgate:
            return await compare({"bare": bare, "bare-auth": bare_auth, "deskgate": deskgate}, home.workload.orders,
                                 rounds=rounds, calls=calls, warmup=warmup, disk=home.root)


async def in_memory(home: Home, *, rounds: int, calls: int, warmup: int) -> Compared:
    runtime = home.open_runtime()
    backend_db = open_database(None, home.paths.backend_db)
    try:
        deskgate_server = build_mcp_server(runtime.chain, fixed_credential(runtime.authenticator, home.tokens[0]))
        bare_server = build_bare_server(SqlSupportBackend(backend_db))
        async with connected(bare_server) as bare, connected(deskgate_server) as deskgate:
            return await compare({"bare": bare, "deskgate": deskgate}, home.workload.orders,
                                 rounds=rounds, calls=calls, warmup=warmup, disk=home.root)
    finally:
        backend_db.close()
        await runtime.aclose()


def table(results: dict[str, Compared]) -> Table:
    out = Table("Guard overhead: get_order, one client, sequential calls",
                ["transport", "server", "calls", "median ms", "p95 ms", "median vs bare", "p95 vs bare",
                 "paired median vs bare"],
                note="Target: deskgate's median over HTTP at most 1.3x the bare server's. `bare-auth` is the "
                     "bare server with the SDK's bearer auth and an uncached PyJWT EdDSA check. `fsync` is one "
                     "write + fsync of a 700-byte line on the same disk, sampled between the rounds: the floor "
                     "of answering only after a durable audit record. Paired: each round's median over bare's "
                     "median in the same round, then the median of those ratios (robust to drift between rounds).")
    for transport, compared in results.items():
        summaries = compared.summaries
        bare = summaries["bare"]
        for kind in ("bare", "bare-auth", "deskgate", "fsync"):
            if kind not in summaries:
                continue
            s = summaries[kind]
            paired = f"{compared.paired(kind):.2f}x" if kind in compared.round_ratios else "-"
            out.add(transport, kind, s.n, f"{s.median:.3f}", f"{s.p95:.3f}", ratio(s.median, bare.median),
                    ratio(s.p95, bare.p95), paired)
    return out


async def run(home: Home, *, rounds: int, calls: int, warmup: int) -> Table:
    return table({
        "Streamable HTTP": await over_http(home, rounds=rounds, calls=calls, warmup=warmup),
        "in memory": await in_memory(home, rounds=rounds, calls=calls, warmup=warmup),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200, help="calls per server per round")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--dir", type=Path, default=None, help="where the throwaway state directory goes")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.calls, args.warmup, args.customers = 2, 10, 5, 100
    with scratch(args.dir, "overhead") as root:
        anyio.run(_show, root, args)


async def _show(root: Path, args: argparse.Namespace) -> None:
    home = await prepare_home(root, args.customers, sessions=1)
    (await run(home, rounds=args.rounds, calls=args.calls, warmup=args.warmup)).show()


if __name__ == "__main__":
    main()
