"""Shared helpers of the performance suite: environment, a prepared state directory, statistics, tables.

Every benchmark runs as `python -m bench.<name>` from the repository root against the installed `deskgate`,
creates what it needs in throwaway directories, and takes `--smoke` (SMOKE_HELP).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import random
import re
import shutil
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from deskgate.config import packaged
from deskgate.server.durable import private_dir
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from deskgate.server.store.db import Tx
from deskgate.tools.backend.seed import DEMO, seed_demo

SMOKE_HELP = "about a second of measuring, the smallest sizes: checks that the benchmark runs (CI does)"
ROLE = "supervisor"  # every tool the mixes call, so no call is refused for its scope
TOKEN_TTL = 3600
_LIMIT_MAX = re.compile(r"\bmax = \d+")


def bench_environment() -> dict[str, str]:
    """The environment every benchmark (and its server processes) runs in.

    The embedded default is what is measured: a PostgreSQL URL in the caller's environment would
    send seeds and audit records to a shared database, so it is dropped. No OS keyring: the signing
    key is a 0600 file in the throwaway state directory.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("DESKGATE_DATABASE_URL", "DESKGATE_SIGNING_KEY")}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    return env


def apply_bench_environment() -> None:
    env = bench_environment()
    # Each throwaway state directory would warn that its key is a file: expected here, and noise.
    logging.getLogger("deskgate.keys").setLevel(logging.ERROR)
    for key in set(os.environ) - set(env):
        del os.environ[key]
    os.environ.update(env)


def write_bench_policy(path: Path) -> Path:
    """The packaged policy with every rate limit raised to the model's maximum.

    Throughput runs make thousands of writes per session; with the packaged limits (20 or 60 an
    hour) they would measure refusals. The limit counters are still consumed on every call, so the
    cost of rate limiting stays in the measurement - only its verdict changes.
    """
    text = packaged("policy.toml").read_text(encoding="utf-8")
    path.write_text(_LIMIT_MAX.sub("max = 1000000", text), encoding="utf-8")
    return path


@dataclass(frozen=True)
class Workload:
    """Existing object ids of a seeded backend, for calls that read or write real rows."""

    orders: tuple[str, ...]
    customers: tuple[str, ...]
    tickets: tuple[str, ...]


@dataclass
class Home:
    """A seeded state directory with its bench policy and session tokens."""

    root: Path
    customers: int
    policy: Path
    tokens: list[str] = field(repr=False)
    workload: Workload

    @property
    def paths(self) -> Paths:
        return Paths(self.root)

    def open_runtime(self) -> Runtime:
        return Runtime.open(self.paths, policy_path=self.policy)


async def prepare_home(root: Path, customers: int, *, sessions: int = 64, seed: int = 42,
                       seeded_backend: Path | None = None) -> Home:
    """Seed a fresh state directory and issue `sessions` supervisor tokens.

    `seeded_backend` is a backend database seeded earlier with the same `customers` and `seed`:
    it is copied in, so a million-customer backend is generated once, not per run.
    """
    apply_bench_environment()
    policy = _stage(root, seeded_backend)
    runtime = Runtime.open(Paths(root), policy_path=policy)
    try:
        seed_demo(runtime.backend_db, customers=customers, seed=seed)
        scopes = runtime.roles.scopes_of(ROLE)
        tokens = [runtime.issuer.issue(f"bench-{i}", scopes, TOKEN_TTL)[0] for i in range(sessions)]
        workload = sample_workload(runtime, customers)
    finally:
        await runtime.aclose()
    _keep(Paths(root).backend_db, seeded_backend)
    return Home(root, customers, policy, tokens, workload)


def _stage(root: Path, seeded_backend: Path | None) -> Path:
    private_dir(root)  # a state directory others could write is refused (server/statedir.py)
    if seeded_backend is not None and seeded_backend.exists():
        shutil.copyfile(seeded_backend, Paths(root).backend_db)
    return write_bench_policy(root / "bench-policy.toml")


def _keep(backend_db: Path, seeded_backend: Path | None) -> None:
    if seeded_backend is not None and not seeded_backend.exists():
        private_dir(seeded_backend.parent)
        shutil.copyfile(backend_db, seeded_backend)


def sample_workload(runtime: Runtime, customers: int, *, size: int = 256, seed: int = 7) -> Workload:
    """Ids spread over the whole backend (so reads do not all hit the same pages), plus the demo ones."""
    rng = random.Random(seed)
    picked = sorted({f"C-{1000 + rng.randrange(customers)}" for _ in range(size)}) if customers else []

    def read(tx: Tx) -> tuple[list[str], list[str]]:
        orders = [r[0] for c in picked for r in tx.query("SELECT id FROM orders WHERE customer_id = ?", (c,))]
        tickets = [r[0] for c in picked for r in tx.query("SELECT id FROM tickets WHERE customer_id = ?", (c,))]
        return orders, tickets

    orders, tickets = runtime.backend_db.read_sync(read)
    return Workload(orders=(DEMO.delivered_order, *orders), customers=(DEMO.customer_id, *picked),
                    tickets=(DEMO.pii_ticket, *tickets))


# --- statistics -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    """Latency of a series of calls, in milliseconds."""

    n: int
    median: float
    p95: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ordered = sorted(seconds)
        if not ordered:
            raise ValueError("no samples")
        return cls(len(ordered), statistics.median(ordered) * 1e3, percentile(ordered, 0.95) * 1e3,
                   statistics.fmean(ordered) * 1e3)


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted samples (no interpolation: a value that was measured)."""
    rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "n/a"


def ab_order(rounds: int) -> Iterator[tuple[str, str]]:
    """A, B then B, A, ...: each variant goes first half the time, so drift and warm-up cancel."""
    for r in range(rounds):
        yield ("bare", "deskgate") if r % 2 == 0 else ("deskgate", "bare")


# --- reporting ------------------------------------------------------------------------------

@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        head = f"| {' | '.join(self.columns)} |\n|{'|'.join('---' for _ in self.columns)}|\n"
        body = "".join(f"| {' | '.join(row)} |\n" for row in self.rows)
        note = f"\n{self.note}\n" if self.note else ""
        return f"### {self.title}\n\n{head}{body}{note}"

    def show(self) -> None:
        print(self.markdown(), flush=True)


def machine() -> str:
    """One line naming the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {sys.version.split()[0]}, mcp {version('mcp')}, uvicorn {version('uvicorn')}")


@contextmanager
def scratch(root: Path | None, name: str) -> Iterator[Path]:
    """A directory removed afterwards (under `root` when given, else the system temp dir)."""
    import tempfile

    if root is not None:
        private_dir(root)
    with tempfile.TemporaryDirectory(prefix=f"deskgate-bench-{name}-", dir=root) as tmp:
        yield Path(tmp)
