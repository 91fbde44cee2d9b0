"""Where a `get_order` call's time goes, and what removing a cost would buy.

    python -m bench.hotpath [--calls 2000] [--out bench/results]

1. Stage breakdown: the chain's collaborators (token verifier, policy stage, backend, redactor,
   audit log) are wrapped with timers on this process's instances only, and `get_order` is
   called through `GuardChain.call` in memory. Each stage's mean, and what is left for the chain's
   own glue (argument digest, audit record, ...).
2. pyinstrument profiles: the chain in memory, and the deskgate server process over HTTP
   (written to `--out` as hotpath-memory.txt and hotpath-http.txt).
3. What-if: a change proposed for the hot path is applied to this process's instances only and
   measured A/B against the unchanged chain in the same run. Nothing here changes deskgate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import inspect
import itertools
import statistics
import time
import timeit
import unittest.mock
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from pyinstrument import Profiler

from bench._common import Home, Summary, Table, prepare_home, ratio, scratch
from bench.overhead import timed_reads
from bench.servers import connected, serving
from deskgate.server import chain as chain_module
from deskgate.server.audit import log as audit_log
from deskgate.server.audit import records
from deskgate.server.audit.batching import _Pending
from deskgate.server.runtime import Runtime

TOOL = "get_order"


def _timed(target: Any, name: str, totals: dict[str, float], label: str) -> None:
    """Replace `target.name` (on this instance only) with a version that adds its time to totals[label]."""
    original = getattr(target, name)
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - began

        setattr(target, name, timed_async)
    else:
        @functools.wraps(original)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[label] += time.perf_counter() - began

        setattr(target, name, timed_sync)


async def call_reads(runtime: Runtime, home: Home, calls: int, start: int = 0) -> list[float]:
    seconds = []
    for order in itertools.islice(itertools.cycle(home.workload.orders), start, start + calls):
        began = time.perf_counter()
        outcome = await runtime.chain.call(home.tokens[0], TOOL, {"order_id": order})
        seconds.append(time.perf_counter() - began)
        if outcome.status.value != "ok":
            raise RuntimeError(f"{TOOL} {order} answered {outcome.status.value}: {outcome.reason}")
    return seconds


async def breakdown(home: Home, calls: int) -> Table:
    runtime = home.open_runtime()
    totals: dict[str, float] = defaultdict(float)
    policy_stage = runtime.chain._policy  # the instance the chain calls (not exposed by Runtime)
    stages = [
        ("1 authenticate: token (cached) + revocation lookup", runtime.verifier, "verify"),
        ("4 policy: decide", policy_stage, "decide"),
        ("7 tool context: policy view for the session", policy_stage, "view_for"),
        ("7 execute: backend get_order (SQLite, worker thread)", runtime.backend, "get_order"),
        ("8 redact: result", runtime.redactor, "redact_output"),
        ("8 redact: arguments for the audit record", runtime.redactor, "redact_for_audit"),
        ("9 audit: append (a read's record written; its fsync follows)", runtime.audit, "append"),
    ]
    try:
        await call_reads(runtime, home, 100)  # warm-up, untimed
        for label, target, name in stages:
            _timed(target, name, totals, label)
        chain = await call_reads(runtime, home, calls)
    finally:
        await runtime.aclose()
    total = sum(chain)
    out = Table(f"Where a get_order call's time goes (in memory, {calls} sequential calls through GuardChain.call)",
                ["stage", "mean us", "share"])
    for label, _, _ in stages:
        out.add(label, f"{totals[label] / calls * 1e6:,.0f}", f"{totals[label] / total:.0%}")
    rest = total - sum(totals.values())
    out.add("chain glue (resolve, digests, audit record, outcome)", f"{rest / calls * 1e6:,.0f}", f"{rest / total:.0%}")
    out.add("**whole chain**", f"{total / calls * 1e6:,.0f}", "100%")
    return out


async def profile_memory(home: Home, calls: int, out: Path) -> None:
    runtime = home.open_runtime()
    try:
        await call_reads(runtime, home, 100)
        profiler = Profiler(interval=0.0005, async_mode="enabled")
        with profiler:
            await call_reads(runtime, home, calls)
    finally:
        await runtime.aclose()
    _write(out, profiler.output_text(unicode=False, color=False, show_all=False))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


async def profile_http(home: Home, calls: int, out: Path) -> None:
    """The server process writes its own profile when it stops (see `bench.servers`)."""
    async with serving("deskgate", home.root, home.policy, profile=out) as url, \
            connected(url, home.tokens[0]) as client:
        await client.list_tools()
        await timed_reads(client, "deskgate", home.workload.orders, calls, 0)


# --- what-if ----------------------------------------------------------------------------------
#
# An experiment patches this process's runtimes: `before` (or None: as shipped) against `after`.
# A change already applied is measured by patching the previous way back into `before`: on the
# runtime when it can be (`Patch`), else process-wide around each `before` round only (`Switch`).

Patch = Callable[[Runtime], None] | None
Switch = Callable[[], AbstractContextManager[None]]


@dataclass(frozen=True)
class Experiment:
    before: Patch = None
    after: Patch = None
    before_switch: Switch | None = None


def lazy_policy_view(runtime: Runtime) -> None:
    """Proposed: build the session's policy view only for the tools that read it (get_policy and the
    write tools' undo windows), instead of a deep copy on every call. For get_order that is no
    view at all; here, the view is served from a per-session cache without copying."""
    stage = runtime.chain._policy
    compute = stage.view_for
    cache: dict[Any, dict[str, Any]] = {}

    def view_for(session: Any) -> dict[str, Any]:
        key = (session.scopes, session.max_refund)
        if key not in cache:
            cache[key] = compute(session)
        return cache[key]

    stage.view_for = view_for  # type: ignore[method-assign]


def _databases(runtime: Runtime) -> list[Any]:
    return list({id(d): d for d in (runtime.state_db, runtime.backend_db) if d is not None}.values())


def anyio_thread_handoff(runtime: Runtime) -> None:
    """The previous hand-off: every SQLite transaction through `anyio.to_thread.run_sync` (shared
    pool, capacity limiter, cancel scope) instead of the database's own thread pool."""
    for db in _databases(runtime):
        read_sync, write_sync = db.read_sync, db.write_sync

        async def read(fn: Any, read_sync: Any = read_sync) -> Any:
            return await anyio.to_thread.run_sync(read_sync, fn)

        async def write(fn: Any, write_sync: Any = write_sync) -> Any:
            return await anyio.to_thread.run_sync(write_sync, fn)

        db.read, db.write = read, write  # type: ignore[method-assign]


async def _wrapped(future: Future[Any]) -> Any:
    """The previous answer path: a `concurrent.futures.Future`, wrapped and shielded."""
    waiter = asyncio.wrap_future(future)
    try:
        return await asyncio.shield(waiter)
    except asyncio.CancelledError:
        while not waiter.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([waiter])
        raise


def wrapped_future_handoff(runtime: Runtime) -> None:
    """The previous hand-off back to the loop, for SQLite work and audit appends: the worker answers a
    `concurrent.futures.Future`, which `asyncio.wrap_future` copies to an asyncio future, shielded."""
    for db in _databases(runtime):
        async def read(fn: Any, db: Any = db) -> Any:
            return await _wrapped(db._workers.submit(db.read_sync, fn))

        async def write(fn: Any, db: Any = db) -> Any:
            return await _wrapped(db._workers.submit(db.write_sync, fn))

        db.read, db.write = read, write  # type: ignore[method-assign]
    audit = runtime.audit

    async def append(event: dict[str, Any], *, durable: bool = True) -> int:
        future: Future[int] = Future()
        audit._submit(_Pending(records.checked_event(event), future, durable))
        return await asyncio.shield(asyncio.wrap_future(future))

    audit.append = append  # type: ignore[method-assign]


def _seal_twice(event: dict[str, Any], seq: int, prev: str, now: float) -> tuple[dict[str, Any], bytes]:
    """The previous `records.seal`: the record encoded for its hash, then again with it."""
    record = {**event, "seq": seq, "ts": records.timestamp(now), "prev": prev}
    record["hash"] = records.digest(record)
    return record, records.canonical(record) + b"\n"


@contextlib.contextmanager
def two_encoding_seal() -> Iterator[None]:
    with unittest.mock.patch.object(audit_log, "seal", _seal_twice):
        yield


@contextlib.contextmanager
def getattr_field_reads() -> Iterator[None]:
    """The previous field reads: `getattr(args, name, None)`, through pydantic's `__getattr__` when the
    tool has no such field (amount, confirmation_token, idempotency_key on a read)."""
    with unittest.mock.patch.object(chain_module, "_field", lambda args, name: getattr(args, name, None)):
        yield


@contextlib.contextmanager
def round_two_undone() -> Iterator[None]:
    with two_encoding_seal(), getattr_field_reads():
        yield


EXPERIMENTS: dict[str, Experiment] = {
    "A/A: the same chain on both sides (the noise floor of this table)": Experiment(),
    "policy view built lazily, not deep-copied": Experiment(after=lazy_policy_view),
    "SQLite on the database's own threads (before: anyio.to_thread)": Experiment(before=anyio_thread_handoff),
    "answers posted straight to the loop (before: wrap_future + shield)": Experiment(before=wrapped_future_handoff),
    "audit record sealed with one JSON encoding (before: two)": Experiment(before_switch=two_encoding_seal),
    "input fields read from the model's __dict__ (before: getattr)": Experiment(before_switch=getattr_field_reads),
    "all three above together (round 2 of the hot-path work)":
        Experiment(before=wrapped_future_handoff, before_switch=round_two_undone),
}


async def what_if(home: Home, *, rounds: int, calls: int) -> Table:
    out = Table("What-if: hot-path changes, measured A/B in memory (get_order through GuardChain.call)",
                ["change", "median us before", "median us after", "after / before"])
    for name, experiment in EXPERIMENTS.items():
        before, after = home.open_runtime(), home.open_runtime()
        for runtime, patch in ((before, experiment.before), (after, experiment.after)):
            if patch is not None:
                patch(runtime)
        samples: dict[str, list[float]] = {"before": [], "after": []}
        try:
            for runtime in (before, after):
                await call_reads(runtime, home, 100)
            for r in range(rounds):
                for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                    switch = experiment.before_switch if label == "before" else None
                    with switch() if switch is not None else contextlib.nullcontext():
                        runtime = before if label == "before" else after
                        samples[label] += await call_reads(runtime, home, calls, r * calls)
        finally:
            await before.aclose()
            await after.aclose()
        b, a = Summary.of(samples["before"]), Summary.of(samples["after"])
        out.add(name, f"{b.median * 1e3:,.0f}", f"{a.median * 1e3:,.0f}", ratio(a.median, b.median))
    return out


async def unit_costs(home: Home) -> Table:
    """The two mechanical changes measured on their own, free of the fsync's noise: sealing a real
    get_order audit event, and one SQLite read's round trip to a worker thread and back."""
    runtime = home.open_runtime()
    events: list[dict[str, Any]] = []
    append = runtime.audit.append

    async def capture(event: dict[str, Any], *, durable: bool = True) -> int:
        events.append(event)
        return await append(event, durable=durable)

    runtime.audit.append = capture  # type: ignore[method-assign]
    out = Table("Unit costs of round 2, A/B in the same run", ["operation", "us before", "us after", "after / before"])
    try:
        await call_reads(runtime, home, 1)
        event = records.checked_event(events[-1])
        sealed = {name: min(timeit.repeat(lambda f=f: f(event, 7, "0" * 64, 1.5), number=2000, repeat=7)) / 2000
                  for name, f in (("before", _seal_twice), ("after", records.seal))}
        out.add("seal one get_order audit record (two JSON encodings -> one)", f"{sealed['before'] * 1e6:.1f}",
                f"{sealed['after'] * 1e6:.1f}", ratio(sealed["after"], sealed["before"]))
        db = runtime.state_db

        def nothing(tx: Any) -> None:
            return None

        async def wrapped() -> None:
            await _wrapped(db._workers.submit(db.read_sync, nothing))

        async def posted() -> None:
            await db.read(nothing)

        rounds: dict[str, list[float]] = {"before": [], "after": []}
        for r in range(12):
            for label in ("before", "after") if r % 2 == 0 else ("after", "before"):
                hop = wrapped if label == "before" else posted
                began = time.perf_counter()
                for _ in range(300):
                    await hop()
                rounds[label].append((time.perf_counter() - began) / 300)
        b, a = statistics.median(rounds["before"]), statistics.median(rounds["after"])
        out.add("SQLite read hand-off to a worker and back (wrap_future + shield -> posted to the loop)",
                f"{b * 1e6:.1f}", f"{a * 1e6:.1f}", ratio(a, b))
    finally:
        await runtime.aclose()
    return out


async def run(home: Home, *, calls: int, out: Path) -> list[Table]:
    tables = [await breakdown(home, calls), await unit_costs(home),
              await what_if(home, rounds=6, calls=max(100, calls // 6))]
    await profile_memory(home, calls, out / "hotpath-memory.txt")
    await profile_http(home, calls, out / "hotpath-http.txt")
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with scratch(args.dir, "hotpath") as root:
        anyio.run(_show, root, args)


async def _show(root: Path, args: argparse.Namespace) -> None:
    home = await prepare_home(root, 1000, sessions=1)
    for table in await run(home, calls=args.calls, out=args.out):
        table.show()


if __name__ == "__main__":
    main()
