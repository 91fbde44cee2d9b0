"""What tracing and metrics cost a `get_order` call through the guard chain, and what they cost when off.

    python -m bench.telemetry [--calls 400] [--rounds 6]

1. The chain in memory (`GuardChain.call`, no transport), in five modes measured in the same run,
   in rotating order: everything off, metrics on (a listener that nobody scrapes), tracing on (every
   span sampled, exported to the SDK's in-memory exporter as each ends, so span creation and export
   are priced, not a network), tracing with 1 call in 10 sampled (`OTEL_TRACES_SAMPLER`), and both.
   Each mode re-wires the chain, as `deskgate serve` builds it after `telemetry.start`.
2. The off path of each hook, per call of it: a `telemetry.stage` block and a `traced_stage`-decorated
   coroutine against the same code without the hook.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench._common import SMOKE_HELP, Table, prepare_home, ratio, scratch
from deskgate.server import telemetry
from deskgate.server.runtime import Runtime

TOOL = "get_order"
MODES = ("off", "metrics", "tracing", "tracing 10%", "both")
SAMPLED = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def _start(mode: str, exporter: InMemorySpanExporter) -> None:
    """Switch `mode` on; `tracing 10%` as an operator would, by OTEL_TRACES_SAMPLER (read by the SDK)."""
    for name in SAMPLED:
        os.environ.pop(name, None)
    if mode == "tracing 10%":
        os.environ.update(SAMPLED)
    telemetry.start(metrics_port=0 if mode in ("metrics", "both") else None,
                    span_exporters=[exporter] if mode.startswith("tracing") or mode == "both" else None)


async def _calls(runtime: Runtime, token: str, orders: list[str], calls: int) -> tuple[list[float], float]:
    """`calls` sequential calls: the seconds each took, and the process's CPU seconds per call (every thread:
    the audit writer and the database workers too)."""
    seconds, admit = [], runtime.authenticator.admit
    cpu = time.process_time()
    for order in itertools.islice(itertools.cycle(orders), calls):
        began = time.perf_counter()
        outcome = await runtime.chain.call(await admit(token, "memory"), TOOL, {"order_id": order})
        seconds.append(time.perf_counter() - began)
        if outcome.status != "ok":
            raise RuntimeError(f"{TOOL} answered {outcome.status}: {outcome.code}")
    return seconds, (time.process_time() - cpu) / calls


async def chain_modes(runtime: Runtime, token: str, orders: list[str], *, calls: int, rounds: int,
                      policy: Path) -> Table:
    """Each round runs every mode once, in rotating order; a mode's ratio is the median over rounds of
    its round median against the same round's `off` (drift of the shared machine cancels out)."""
    samples: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode in MODES}
    paired: dict[str, list[float]] = {mode: [] for mode in MODES}
    spans = 0
    for r in range(rounds):
        medians = {}
        for mode in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
            exporter = InMemorySpanExporter()  # one per start: `stop` shuts it down
            _start(mode, exporter)
            runtime.wire(policy_path=policy)
            await _calls(runtime, token, orders, 10)  # warm-up after re-wiring
            exporter.clear()
            seconds, per_call = await _calls(runtime, token, orders, calls)
            samples[mode] += seconds
            cpu[mode].append(per_call)
            medians[mode] = statistics.median(seconds)
            if mode == "tracing":
                spans = len(exporter.get_finished_spans()) // calls
            telemetry.stop()
        for mode in MODES:
            paired[mode].append(medians[mode] / medians["off"])
    off_cpu = statistics.median(cpu["off"])
    out = Table(f"Telemetry cost, {TOOL} through GuardChain.call in memory ({rounds} rounds x {calls} calls per mode)",
                ["mode", "median (us)", "p95 (us)", "paired median vs off", "CPU per call (us)", "CPU vs off"])
    for mode in MODES:
        ordered = sorted(samples[mode])
        mode_cpu = statistics.median(cpu[mode])
        out.add(mode, f"{statistics.median(ordered) * 1e6:.0f}", f"{ordered[int(len(ordered) * 0.95)] * 1e6:.0f}",
                f"{statistics.median(paired[mode]):.2f}x", f"{mode_cpu * 1e6:.0f}", ratio(mode_cpu, off_cpu))
    out.note = (f"Tracing on: {spans} spans per call (call, 8 stages, backend), every one sampled and exported "
                "in memory as it ends; the `metrics` listener is not scraped meanwhile.")
    return out


async def off_hooks() -> Table:
    """The per-hook price of telemetry when off, in nanoseconds."""
    telemetry.stop()

    async def plain() -> int:
        return 1

    decorated = telemetry.traced_stage("authorize")(plain)

    def block() -> None:
        with telemetry.stage("execute"):
            pass

    def bare() -> None:
        pass

    async def drive(coroutine_function: Callable[[], Awaitable[int]]) -> float:
        began = time.perf_counter()
        for _ in range(100_000):
            await coroutine_function()
        return (time.perf_counter() - began) / 100_000

    n = 500_000
    with_block = min(timeit.repeat(block, number=n, repeat=5)) / n
    without = min(timeit.repeat(bare, number=n, repeat=5)) / n
    stage_decorated = min([await drive(decorated) for _ in range(5)])
    stage_plain = min([await drive(plain) for _ in range(5)])
    out = Table("Telemetry off: what each hook adds (best of 5)", ["hook", "added per use (ns)"])
    out.add("`with telemetry.stage(...)` block", f"{(with_block - without) * 1e9:.0f}")
    out.add("`@traced_stage` on a coroutine method", f"{(stage_decorated - stage_plain) * 1e9:.0f}")
    out.note = ("A tools/call passes 12 hooks at most (the call, 8 stages, the intent record of a write, "
                "idempotency); `observed` is the backend itself when off, so backend calls pay nothing.")
    return out


async def _run(root: Path | None, calls: int, rounds: int) -> None:
    with scratch(root, "telemetry") as where:
        home = await prepare_home(where, customers=1000, sessions=1)
        runtime = home.open_runtime()
        try:
            orders = list(home.workload.orders[:64])
            chain_modes_table = await chain_modes(runtime, home.tokens[0], orders, calls=calls, rounds=rounds,
                                                  policy=home.policy)
        finally:
            telemetry.stop()
            await runtime.aclose()
    chain_modes_table.show()
    (await off_hooks()).show()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--root", type=Path, default=None, help="where to build the scratch state directory")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.calls, args.rounds = 20, 2
    asyncio.run(_run(args.root, args.calls, args.rounds))


if __name__ == "__main__":
    main()
