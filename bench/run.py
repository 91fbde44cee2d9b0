"""The whole suite, one command: every table, written to bench/results/chain.md.

    python -m bench.run                   full run (about 10 minutes on 2 cores; seeds 10^5 customers)
    python -m bench.run --quick           about a minute: fewer calls, shorter windows, 10^3 and 10^4 customers
    python -m bench.run --sizes 1e3,1e5,1e6 --data ~/.cache/deskgate-bench
                                          add the million-customer read (seeded once, kept in --data)

    python -m bench.run --smoke           a few seconds of measuring: checks that the suite runs (CI does)

Everything runs on loopback, in throwaway state directories, and stops by itself: every loop is
bounded in calls and in time. Run on their own: `python -m bench.scale_out` (needs PostgreSQL) and
`python -m bench.redaction` (needs the `bench` extra).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from bench import audit, components, hotpath, overhead, throughput
from bench._common import SMOKE_HELP, Table, machine, prepare_home, scratch

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Plan:
    rounds: int            # A/B rounds of the latency comparison
    calls: int             # sequential calls per server per round
    warmup: int
    seconds: float         # one throughput window
    windows: int           # A/B windows per throughput cell
    clients: tuple[int, ...]
    sizes: tuple[int, ...]
    size_calls: int        # reads per backend size
    component_seconds: float
    profile_calls: int
    audit_seconds: float
    verify_records: int
    customers: int = 1000


FULL = Plan(rounds=10, calls=200, warmup=50, seconds=4.0, windows=2, clients=(1, 16, 64), sizes=(1000, 100_000),
            size_calls=1000, component_seconds=2.0, profile_calls=2000, audit_seconds=3.0, verify_records=100_000)
SMOKE = Plan(rounds=2, calls=10, warmup=5, seconds=0.2, windows=1, clients=(1, 4), sizes=(100, 300), size_calls=20,
             component_seconds=0.1, profile_calls=20, audit_seconds=0.2, verify_records=2000, customers=100)
QUICK = Plan(rounds=4, calls=100, warmup=20, seconds=1.0, windows=1, clients=(1, 16, 64), sizes=(1000, 10_000),
             size_calls=300, component_seconds=0.5, profile_calls=400, audit_seconds=1.0, verify_records=20_000)


async def suite(root: Path, plan: Plan, data: Path | None, out: Path) -> list[Table]:
    home = await prepare_home(root / "main", plan.customers, sessions=max(plan.clients))
    tables = [await overhead.run(home, rounds=plan.rounds, calls=plan.calls, warmup=plan.warmup)]
    tables[-1].show()
    tables.append(await throughput.concurrency(home, clients=plan.clients, seconds=plan.seconds,
                                               rounds=plan.windows))
    tables[-1].show()
    tables.append(await throughput.scaling(root, plan.sizes, calls=plan.size_calls, data=data))
    tables[-1].show()
    tables.append(await components.run(home, seconds=plan.component_seconds))
    tables[-1].show()
    for table in await hotpath.run(home, calls=plan.profile_calls, out=out):
        table.show()
        tables.append(table)
    tables.append(await audit.run(root / "audit", seconds=plan.audit_seconds, verify_records=plan.verify_records))
    tables[-1].show()
    return tables


def report(tables: list[Table], command: str, seconds: float, out: Path) -> Path:
    path = out / "chain.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"## Guard chain performance\n\n"
              f"Command: `{command}`  \n"
              f"Machine: {machine()}  \n"
              f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s. Every ratio is against "
              f"a baseline measured in the same run. Profiles: `hotpath-memory.txt`, `hotpath-http.txt`.\n\n")
    path.write_text(header + "\n".join(t.markdown() for t in tables), encoding="utf-8")
    return path


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(float(part)) for part in text.split(",") if part)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute, smaller samples")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP + "; results in the throwaway directory")
    parser.add_argument("--sizes", type=_sizes, default=None, help="scaling-read sizes, e.g. 1e3,1e5,1e6")
    parser.add_argument("--data", type=Path, default=None, help="keep seeded backends here between runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where chain.md and the profiles go")
    parser.add_argument("--dir", type=Path, default=None, help="where the throwaway state directories go")
    args = parser.parse_args()
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.sizes:
        plan = Plan(**{**plan.__dict__, "sizes": args.sizes})
    command = "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    started = time.perf_counter()
    with scratch(args.dir, "run") as root:
        out = root / "results" if args.smoke else args.out
        tables = anyio.run(suite, root, plan, args.data, out)
        path = report(tables, command.strip(), time.perf_counter() - started, out)
        print(f"results: {path}")


if __name__ == "__main__":
    main()
