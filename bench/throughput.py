"""Throughput under concurrency, and how a read scales with the size of the backend.

    python -m bench.throughput [--seconds 4] [--rounds 2] [--clients 1,16,64] [--sizes 1000,100000]

1. Calls per second with 1, 16 and 64 concurrent clients (each its own `mcp.Client`, its own HTTP
   connection and, on deskgate, its own session token), over Streamable HTTP on loopback against
   servers in their own processes: a read-only mix (get_order, get_customer, list_orders,
   get_ticket) and a write mix (add_ticket_note, update_email_preferences - on deskgate each one
   an audited intent and outcome, both fsync'd). The bare server runs the same backend calls.
   Windows alternate between the two servers (A/B, B/A).
2. A read against backends of 10^3, 10^5 (and, with --sizes, 10^6) customers: median latency of
   the backend query alone and of `get_order` through the whole chain (in memory), with SQLite's
   query plan for it. O(log n) shows as a flat line and a SEARCH ... USING INDEX plan.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from bench._common import SMOKE_HELP, Home, Summary, Table, Workload, ab_order, prepare_home, ratio, scratch
from bench.servers import call_ok, connected, serving_all
from deskgate.tools.backend.sql import _ORDER

READ_MIX = ("get_order", "get_customer", "list_orders", "get_ticket")
WRITE_MIX = ("add_ticket_note", "update_email_preferences")
NOTE = "Called the customer back; they confirmed the replacement arrived."


def arguments(tool: str, workload: Workload, n: int) -> dict[str, Any]:
    """The n-th call's arguments for `tool`: real objects, spread over the backend."""
    if tool == "get_order":
        return {"order_id": workload.orders[n % len(workload.orders)]}
    if tool in ("get_customer", "list_orders"):
        return {"customer_id": workload.customers[n % len(workload.customers)]}
    if tool == "get_ticket":
        return {"ticket_id": workload.tickets[n % len(workload.tickets)]}
    if tool == "add_ticket_note":
        return {"ticket_id": workload.tickets[n % len(workload.tickets)], "body": NOTE}
    if tool == "update_email_preferences":
        return {"customer_id": workload.customers[n % len(workload.customers)], "newsletter": n % 2 == 0}
    raise KeyError(tool)


async def window(clients: Sequence[Client], kind: str, mix: Sequence[str], workload: Workload,
                 seconds: float, offset: int) -> float:
    """Every client calls the mix in a loop until the window closes; calls per second."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(client: Client, index: int) -> None:
        nonlocal done
        for n in itertools.count(offset + index * 1009):
            if time.perf_counter() >= deadline:
                return
            tool = mix[n % len(mix)]
            await call_ok(client, kind, tool, arguments(tool, workload, n))
            done += 1

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for index, client in enumerate(clients):
            tg.start_soon(worker, client, index)
    return done / (time.perf_counter() - started)


async def _open(stack: AsyncExitStack, url: str, tokens: Sequence[str | None]) -> list[Client]:
    return [await stack.enter_async_context(connected(url, token)) for token in tokens]


async def concurrency(home: Home, *, clients: Sequence[int], seconds: float, rounds: int) -> Table:
    out = Table("Throughput over Streamable HTTP (calls/s, higher is better)",
                ["mix", "clients", "bare calls/s", "deskgate calls/s", "deskgate / bare"],
                note="Each client has its own connection and (on deskgate) its own session. Writes on deskgate "
                     "write two durable audit records each (intent, outcome).")
    async with serving_all(["bare", "deskgate"], home.root, home.policy) as (bare_url, deskgate_url):
        for count in clients:
            async with AsyncExitStack() as stack:
                opened = {"bare": await _open(stack, bare_url, [None] * count),
                          "deskgate": await _open(stack, deskgate_url, home.tokens[:count])}
                for group in opened.values():  # warm-up: every connection made, every tool listed
                    for client in group:
                        await client.list_tools()
                for mix_name, mix in (("read", READ_MIX), ("write", WRITE_MIX)):
                    rates: dict[str, list[float]] = {"bare": [], "deskgate": []}
                    for r, order in enumerate(ab_order(rounds)):
                        for kind in order:
                            rates[kind].append(await window(opened[kind], kind, mix, home.workload, seconds,
                                                            r * 100_003))
                    bare, deskgate = statistics.fmean(rates["bare"]), statistics.fmean(rates["deskgate"])
                    out.add(mix_name, count, f"{bare:,.0f}", f"{deskgate:,.0f}", ratio(deskgate, bare))
    return out


# --- reads vs backend size ------------------------------------------------------------------

ORDER_QUERY = _ORDER + " WHERE id = ?"  # the statement SqlSupportBackend.get_order runs


@dataclass(frozen=True)
class SizedRead:
    orders: int        # rows in the orders table
    backend: Summary   # the backend query alone
    chain: Summary     # get_order through the whole chain
    plan: str          # SQLite's plan for the lookup


async def read_latency(home: Home, calls: int) -> SizedRead:
    runtime = home.open_runtime()
    try:
        orders, token, admit = home.workload.orders, home.tokens[0], runtime.authenticator.admit
        plan = runtime.backend_db.read_sync(lambda tx: tx.query("EXPLAIN QUERY PLAN " + ORDER_QUERY, ("O-1",)))
        count = runtime.backend_db.read_sync(lambda tx: tx.one("SELECT count(*) FROM orders"))
        for order in orders[:20]:  # warm-up
            await runtime.chain.call(await admit(token, "memory"), "get_order", {"order_id": order})
        backend, chain = [], []
        for n in range(calls):
            order = orders[n % len(orders)]
            began = time.perf_counter()
            await runtime.backend.get_order(order)
            backend.append(time.perf_counter() - began)
            began = time.perf_counter()
            outcome = await runtime.chain.call(await admit(token, "memory"), "get_order", {"order_id": order})
            chain.append(time.perf_counter() - began)
            if outcome.status.value != "ok":
                raise RuntimeError(f"get_order {order} answered {outcome.status.value}: {outcome.reason}")
        return SizedRead(int(count[0]) if count else 0, Summary.of(backend), Summary.of(chain),
                         "; ".join(str(row[-1]) for row in plan))
    finally:
        await runtime.aclose()


async def scaling(root: Path, sizes: Sequence[int], *, calls: int, data: Path | None) -> Table:
    out = Table("A read vs backend size (get_order, in memory, sequential)",
                ["customers", "orders", "backend query median ms", "query vs smallest", "full chain median ms",
                 "chain vs smallest", "SQLite plan"],
                note="O(log n): the lookup is a primary-key index search, so the query's latency stays flat as "
                     "rows grow. The full chain adds the audit fsync, which varies with the disk, not with n.")
    first: SizedRead | None = None
    for size in sizes:
        cached = data / f"backend-{size}-seed42.db" if data else None
        home = await prepare_home(root / f"size-{size}", size, sessions=1, seeded_backend=cached)
        read = await read_latency(home, calls)
        first = first or read
        out.add(f"{size:,}", f"{read.orders:,}", f"{read.backend.median:.3f}",
                ratio(read.backend.median, first.backend.median), f"{read.chain.median:.3f}",
                ratio(read.chain.median, first.chain.median), read.plan)
    return out


def _ints(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of one measuring window")
    parser.add_argument("--rounds", type=int, default=2, help="A/B windows per server, mix and client count")
    parser.add_argument("--clients", type=_ints, default=[1, 16, 64])
    parser.add_argument("--sizes", type=_ints, default=[1000, 100_000], help="e.g. 1e3,1e5,1e6")
    parser.add_argument("--calls", type=int, default=1000, help="reads per backend size")
    parser.add_argument("--data", type=Path, default=None, help="keep seeded backends here between runs")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.rounds, args.clients, args.sizes, args.calls = 0.2, 1, [1, 4], [100, 300], 20
    with scratch(args.dir, "throughput") as root:
        anyio.run(_show, root, args)


async def _show(root: Path, args: argparse.Namespace) -> None:
    home = await prepare_home(root / "mix", 100 if args.smoke else 1000, sessions=max(args.clients))
    (await concurrency(home, clients=args.clients, seconds=args.seconds, rounds=args.rounds)).show()
    (await scaling(root, args.sizes, calls=args.calls, data=args.data)).show()


if __name__ == "__main__":
    main()
