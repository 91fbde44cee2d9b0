"""Scale-out: calls per second with 1, 2 and 4 server processes on PostgreSQL, against 1 on SQLite.

    DESKGATE_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python -m bench.scale_out \\
        [--seconds 5] [--rounds 2] [--clients 16] [--customers 1000] [--smoke]

The same workload everywhere: `--clients` MCP clients (each its own HTTP connection and its own
session token) call a read/write mix (get_order, get_customer, list_orders, get_ticket twice each
for every add_ticket_note and update_email_preferences: 20% writes, each an audited intent and
outcome) in a loop over Streamable HTTP on loopback. With N processes, client i talks to process
i mod N, as a round-robin load balancer would. SQLite x1 is the embedded default (state, backend
and audit files under one state directory); PostgreSQL runs in a throwaway schema of the given
database, dropped afterwards. The configurations alternate their order round by round (forward,
then backward) so warm-up and drift fall on each equally; every ratio is against SQLite x1 measured
in the same run. Bounded: each window lasts `--seconds`, the whole run at most `--budget` seconds.

Each server is a child (`python -m bench.servers --kind deskgate ... [--database-url URL]`) that runs what
`deskgate serve --transport http` runs, on the deployment's engine, with the bench policy (rate
limits raised so that the run measures calls, not refusals). It listens before it announces its
port on stdout, so the first request waits in the backlog: no polling.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import anyio
import psycopg

from bench._common import (
    SMOKE_HELP,
    Table,
    Workload,
    apply_bench_environment,
    bench_environment,
    machine,
    ratio,
    sample_workload,
    scratch,
    write_bench_policy,
)
from bench.servers import REPO, START_TIMEOUT, announced_url, connected, stop
from bench.throughput import READ_MIX, WRITE_MIX, window
from deskgate.server.durable import private_dir
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from deskgate.tools.backend.seed import seed_demo

MIX = (*READ_MIX, *READ_MIX, *WRITE_MIX)  # 8 reads, 2 writes
CONFIGS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4))
ROLE = "supervisor"
WARMUP_SECONDS = 1.0


@dataclass(frozen=True)
class Deployment:
    """A seeded state directory (and, for PostgreSQL, the schema URL its servers share)."""

    home: Path
    policy: Path
    database_url: str | None
    tokens: list[str]
    workload: Workload



@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A throwaway schema of the database at `url`; yields the URL that selects it."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def prepare(home: Path, database_url: str | None, *, customers: int, sessions: int) -> Deployment:
    """Seed the demo backend and issue one token per client, on the engine the servers will use."""
    private_dir(home)
    policy = write_bench_policy(home / "bench-policy.toml")
    apply_bench_environment()  # the runtime reads DESKGATE_DATABASE_URL from the environment
    if database_url:
        os.environ["DESKGATE_DATABASE_URL"] = database_url
    try:
        runtime = Runtime.open(Paths(home), policy_path=policy)
        try:
            seed_demo(runtime.backend_db, customers=customers, seed=42)
            scopes = runtime.roles.scopes_of(ROLE)
            tokens = [runtime.issuer.issue(f"scale-{i}", scopes, 3600)[0] for i in range(sessions)]
            workload = sample_workload(runtime, customers)
        finally:
            anyio.run(runtime.aclose)
    finally:
        os.environ.pop("DESKGATE_DATABASE_URL", None)
    return Deployment(home, policy, database_url, tokens, workload)


@asynccontextmanager
async def processes(d: Deployment, count: int) -> AsyncIterator[list[str]]:
    """`count` deskgate servers on one state directory (and database); yields their MCP URLs."""
    command = [sys.executable, "-m", "bench.servers", "--kind", "deskgate", "--home", str(d.home),
               "--policy", str(d.policy), *(["--database-url", d.database_url] if d.database_url else [])]
    async with AsyncExitStack() as stack:
        started = [await stack.enter_async_context(await anyio.open_process(
            command, cwd=REPO, env=bench_environment(), stdout=subprocess.PIPE, stderr=None)) for _ in range(count)]
        for process in started:
            stack.push_async_callback(stop, process)
        with anyio.fail_after(START_TIMEOUT):
            urls = [await announced_url(process) for process in started]
        yield urls


async def measure(d: Deployment, count: int, clients: int, seconds: float, offset: int) -> float:
    """Calls per second of `clients` clients spread over `count` processes (after a warm-up window)."""
    async with processes(d, count) as urls, AsyncExitStack() as stack:
        opened = [await stack.enter_async_context(connected(urls[i % count], d.tokens[i])) for i in range(clients)]
        for client in opened:
            await client.list_tools()
        await window(opened, "deskgate", MIX, d.workload, WARMUP_SECONDS, offset)
        return await window(opened, "deskgate", MIX, d.workload, seconds, offset + 50_021)


def orders(configs: Sequence[tuple[str, int]], rounds: int) -> Iterator[Sequence[tuple[str, int]]]:
    """Forward, backward, forward...: each configuration runs early and late equally often."""
    for r in range(rounds):
        yield configs if r % 2 == 0 else configs[::-1]


def scale_out(root: Path, pg_url: str | None, *, configs: Sequence[tuple[str, int]], clients: int, seconds: float,
              rounds: int, customers: int, budget: float) -> Table:
    """Every configuration in `configs`; `pg_url` may be None only when none of them is on PostgreSQL."""
    rates: dict[tuple[str, int], list[float]] = {config: [] for config in configs}

    async def run(deployments: dict[str, Deployment]) -> None:
        with anyio.fail_after(budget):
            for r, order in enumerate(orders(configs, rounds)):
                for engine, count in order:
                    rate = await measure(deployments[engine], count, clients, seconds, r * 100_003)
                    rates[(engine, count)].append(rate)
                    print(f"  round {r + 1}: {engine} x{count}: {rate:,.0f} calls/s", file=sys.stderr, flush=True)

    with pg_schema(pg_url) if pg_url else nullcontext(None) as schema_url:
        deployments = {"sqlite": prepare(root / "sqlite", None, customers=customers, sessions=clients)}
        if schema_url:
            deployments["postgresql"] = prepare(root / "postgresql", schema_url, customers=customers,
                                                sessions=clients)
        anyio.run(run, deployments)
    mean = {config: statistics.fmean(values) for config, values in rates.items()}
    table = Table(
        f"Scale-out: calls/s with {clients} clients, read/write mix (20% writes), higher is better",
        ["engine", "processes", "calls/s", "vs SQLite x1", "vs PostgreSQL x1"],
        note=f"Mean of {rounds} windows of {seconds:g} s per configuration, order alternating per round; "
             f"{customers} customers; {machine()}.",
    )
    for engine, count in configs:
        value = mean[(engine, count)]
        table.add(engine, count, f"{value:,.0f}", ratio(value, mean[("sqlite", 1)]),
                  ratio(value, mean.get(("postgresql", 1), 0.0)))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DESKGATE_TEST_DATABASE_URL"),
                        help="PostgreSQL to run in (a throwaway schema is created and dropped); "
                             "default DESKGATE_TEST_DATABASE_URL")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one measured window")
    parser.add_argument("--rounds", type=int, default=2, help="windows per configuration")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (sessions)")
    parser.add_argument("--customers", type=int, default=1000, help="demo backend size")
    parser.add_argument("--budget", type=float, default=900.0, help="stop the whole run after this many seconds")
    parser.add_argument("--smoke", action="store_true",
                        help=SMOKE_HELP + "; SQLite x1, then PostgreSQL x1 and x2 when a URL is given")
    args = parser.parse_args()
    configs: Sequence[tuple[str, int]] = CONFIGS
    if args.smoke:
        args.seconds, args.rounds, args.clients, args.customers, args.budget = 0.2, 1, 2, 50, 300.0
        configs = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2)) if args.database_url else (("sqlite", 1),)
        if not args.database_url:
            print("scale_out --smoke: no PostgreSQL URL, SQLite x1 only", file=sys.stderr)
    elif not args.database_url:
        parser.error("a PostgreSQL URL is needed: --database-url or DESKGATE_TEST_DATABASE_URL")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        parser.error("--database-url must start with postgresql://")
    if not (args.seconds > 0 and args.rounds >= 1 and 1 <= args.clients <= 256 and args.customers >= 1):
        parser.error("--seconds > 0, --rounds >= 1, --clients in 1..256 and --customers >= 1")

    with scratch(None, "scale-out") as root:
        table = scale_out(root, args.database_url, configs=configs, clients=args.clients, seconds=args.seconds,
                          rounds=args.rounds, customers=args.customers, budget=args.budget)
    table.show()


if __name__ == "__main__":
    main()
