"""Every benchmark runs: `python -m bench.<name> --smoke` exits 0 (about a second of measuring each).

Benchmarks are measurements, never assertions; this only keeps them from rotting. The list is every
module of `bench/` except the helpers, so a new benchmark is smoke-tested without being listed here.
"""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import bench

REPO = Path(__file__).resolve().parents[2]
HELPERS = {"_common", "bare", "servers"}  # the baseline server, the servers under test, shared helpers
# Packages (bench/corpus/: the redaction corpora and their generators) are data, not benchmarks.
BENCHMARKS = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if not m.ispkg and m.name not in HELPERS)


def test_the_smoke_list_holds_every_benchmark() -> None:
    assert {"audit", "backends", "components", "hotpath", "overhead", "redaction", "run", "scale_out", "telemetry",
            "throughput"} <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_benchmark_runs_briefly_and_exits_0(name: str) -> None:
    """From the repository root against the installed package, in directories it creates itself
    (scale_out adds its PostgreSQL configurations when DESKGATE_TEST_DATABASE_URL is set)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DESKGATE_HOME", "DESKGATE_DATABASE_URL")}
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--smoke"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), "a benchmark prints its table"
