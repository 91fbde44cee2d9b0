"""What each backend adapter adds to a call, against the embedded demo backend, measured in one run.

    python -m bench.backends [--calls 200] [--smoke]

Two deployments are opened side by side in this process: one on the demo alone, one with billing on
Stripe (localstripe, started here) and tickets on django-helpdesk (started here, on SQLite). The same
read tools are called through the whole guard chain (`GuardChain.call`, in memory) on both, call for
call in alternation, and the table gives each tool's median on the demo, on the adapter, and the
difference: the adapter's own cost (its HTTP round trips to the system and the system's answer time).
`--smoke` (about a second plus localstripe's start-up) measures the Stripe adapter with a few calls and
leaves out the helpdesk, whose migration alone takes half a minute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from bench._common import ROLE, apply_bench_environment
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from deskgate.tools.backend.helpdesk_seed import helpdesk_ids, seed_helpdesk
from deskgate.tools.backend.seed import seed_demo
from deskgate.tools.backend.stripe_seed import seed_stripe, stripe_ids
from tests.backends.systems import STRIPE_KEY, helpdesk_settings, start_helpdesk, start_localstripe, stripe_settings


@dataclass
class Side:
    runtime: Runtime
    token: str
    ids: dict[str, str]


@contextmanager
def _side(home: Path, settings: str) -> Iterator[Side]:
    home.mkdir(parents=True)
    if settings:
        (home / "deskgate.toml").write_text(settings)
    runtime = Runtime.open(Paths(home))
    try:
        seed_demo(runtime.backend_db, customers=50, seed=42)
        token, _ = runtime.issuer.issue("bench-backends", set(runtime.roles.scopes_of(ROLE)), 3600)
        yield Side(runtime, token, {})
    finally:
        anyio.run(runtime.aclose)


def _calls(adapter: Side, with_helpdesk: bool) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(tool, arguments on the demo, arguments on the adapter deployment)."""
    ids = adapter.ids
    calls = [
        ("get_subscription", {"subscription_id": "S-1"}, {"subscription_id": ids["S-1"]}),
        ("check_refund_eligibility", {"order_id": "O-1"}, {"order_id": "O-1"}),
        ("list_invoices", {"account_id": "A-2"}, {"account_id": "A-2"}),
    ]
    if with_helpdesk:
        calls.append(("get_ticket", {"ticket_id": "T-1"}, {"ticket_id": ids["T-1"]}))
    return calls


async def _measure(demo: Side, adapter: Side, calls: list[tuple[str, dict[str, Any], dict[str, Any]]],
                   rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    times: dict[str, tuple[list[float], list[float]]] = {tool: ([], []) for tool, _, _ in calls}
    for _ in range(rounds):
        for tool, on_demo, on_adapter in calls:
            for side, arguments, into in ((demo, on_demo, times[tool][0]), (adapter, on_adapter, times[tool][1])):
                began = time.perf_counter()
                session = await side.runtime.authenticator.admit(side.token, "memory")
                outcome = await side.runtime.chain.call(session, tool, arguments)
                into.append((time.perf_counter() - began) * 1000)
                if outcome.status.value != "ok":
                    raise SystemExit(f"{tool} answered {outcome.status.value} ({outcome.code}) during the benchmark")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per tool and side")
    parser.add_argument("--smoke", action="store_true", help="a few calls, Stripe only (about a second)")
    args = parser.parse_args()
    apply_bench_environment()
    rounds = 10 if args.smoke else args.calls
    with tempfile.TemporaryDirectory(prefix="deskgate-bench-backends-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        stripe_app = stack.enter_context(start_localstripe(root))
        os.environ["STRIPE_API_KEY"] = STRIPE_KEY
        settings = stripe_settings(stripe_app.url)
        helpdesk = None
        if not args.smoke:
            helpdesk = stack.enter_context(start_helpdesk(root))
            os.environ["HELPDESK_TOKEN"] = helpdesk.token
            settings += helpdesk_settings(helpdesk)
        demo = stack.enter_context(_side(root / "demo", ""))
        adapter = stack.enter_context(_side(root / "adapters", settings))
        seed_stripe(stripe_app.client(), adapter.runtime.backend_db)
        adapter.ids.update(stripe_ids(adapter.runtime.backend_db))
        if helpdesk is not None:
            seed_helpdesk(helpdesk.url, helpdesk.token, helpdesk.queue, adapter.runtime.backend_db)
            adapter.ids.update(helpdesk_ids(adapter.runtime.backend_db))
        calls = _calls(adapter, helpdesk is not None)
        anyio.run(_measure, demo, adapter, calls, 2)  # warm-up: connections, caches
        times = anyio.run(_measure, demo, adapter, calls, rounds)
    print(f"backends: {rounds} calls per tool and side, in memory through the whole chain (median ms)")
    print(f"{'tool':28} {'system':9} {'demo':>8} {'adapter':>8} {'added':>8} {'ratio':>7}")
    for tool, (on_demo, on_adapter) in times.items():
        system = "helpdesk" if tool == "get_ticket" else "stripe"
        d, a = statistics.median(on_demo), statistics.median(on_adapter)
        print(f"{tool:28} {system:9} {d:8.2f} {a:8.2f} {a - d:8.2f} {a / d:6.1f}x")


if __name__ == "__main__":
    main()
