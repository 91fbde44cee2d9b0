"""Traces and metrics for operators: off unless asked for, one line wherever something reports.

    start(...)              at process start, before the runtime is built: OpenTelemetry traces as the
                            `OTEL_*` variables say (`tracing.py`), Prometheus metrics on a listener of
                            their own when an address is given (`metrics.py`); neither by default
    watch_breakers(src)     the breaker gauge reads the shared state store at each scrape
    stop()                  flush spans, close the listener, back to off (also at exit)

What the rest of the code calls, each one line where it reports:

    @traced_call            `GuardChain.call`: one SERVER span per tools/call, calls by tool/status/code
    @traced_stage(name)     a chain stage's method: its child span and its latency
    stage(name)             the same as a `with` block, for a stage that is a few lines of a method
    @audit_stage            `GuardChain.audit`: stage 9, and the call's facts (request id, policy tier,
                            audit seq; confirmations and approvals counted)
    observed(backend)       the chain's support backend: a span and latency per call, errors counted
    @audit_commit           the audit writer's group commit: its fsync latency and batch size

Off, each of these costs one global or context-variable read and a function call: no span, no
clock, no lock (`observed` returns the backend itself). Stage and backend spans exist only inside a
tools/call span, so `tools/list` (which authenticates too) makes none.

What a span or a label may carry is fixed here and nowhere else: tool names of the catalogue (any
other name is `unknown`), stage and backend-operation names, status, error code, policy tier, audit
seq and the chain's request id (spans only). Never arguments, results, reasons, tokens, subjects,
customer ids or exception messages (they may quote any of those): a failure is described by its
error code or its exception's class name.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from deskgate.server.errors import ConfigError, DeskgateError, DomainError
from deskgate.server.outcome import Outcome
from deskgate.server.outcome import Status as Answer
from deskgate.server.telemetry.metrics import UNKNOWN_TOOL, Listener, Metrics, bounded_code
from deskgate.server.telemetry.tracing import provider_from_environment

if TYPE_CHECKING:
    from deskgate.scopes.authenticator import Refusal
    from deskgate.scopes.session import Session
    from deskgate.server.chain import Call, GuardChain

Stage = Literal["authenticate", "resolve", "authorize", "policy", "confirm", "idempotency", "execute", "redact",
                "audit"]
F = TypeVar("F", bound=Callable[..., Any])
B = TypeVar("B")


@dataclass(frozen=True, slots=True)
class _On:
    """What is switched on: a tracer, metrics, or both (never neither: then `_on` is None)."""

    tracer: Tracer | None
    provider: TracerProvider | None
    metrics: Metrics | None
    listener: Listener | None


_on: _On | None = None
_OFF: AbstractContextManager[None] = nullcontext()


@dataclass(slots=True)
class _CallScope:
    """The tools/call in flight on this task: its span (when tracing), the tracer its children use
    (None when the call's span is not sampled: its children would not be either, under every standard
    sampler, so they are not even started) and the tool's label."""

    on: _On
    span: Span | None
    tracer: Tracer | None
    tool: str


_CALL: ContextVar[_CallScope | None] = ContextVar("deskgate_telemetry_call", default=None)


# -- switching on and off --------------------------------------------------------------------------


def start(*, metrics_host: str = "127.0.0.1", metrics_port: int | None = None,
          span_exporters: Sequence[SpanExporter] | None = None) -> str | None:
    """Switch on what is asked for, replacing any earlier state; the metrics URL when a listener runs.

    Traces: as the `OTEL_*` variables say, or to `span_exporters` when given (tests). Metrics: only
    with `metrics_port` (0 picks a free port). Call it before `Runtime.open`: the chain decides once,
    when it is built, whether to observe its backend. Raises `ConfigError` for an `OTEL_*` value
    deskgate cannot honour or an address it cannot listen on; then everything stays off.
    """
    global _on
    stop()
    provider = provider_from_environment(span_exporters)
    metrics, listener = None, None
    if metrics_port is not None:
        metrics = Metrics()
        try:
            listener = Listener(metrics, metrics_host, metrics_port)
        except ConfigError:
            if provider is not None:
                provider.shutdown()
            raise
    if provider is None and metrics is None:
        return None
    tracer = provider.get_tracer("deskgate") if provider is not None else None
    _on = _On(tracer, provider, metrics, listener)
    atexit.unregister(stop)
    atexit.register(stop)  # spans still batched are sent when the process ends
    return listener.url if listener is not None else None


def watch_breakers(tripped: Callable[[], Iterable[str]]) -> None:
    """Let the breaker gauge read which breakers are tripped (e.g. from `StateStore.breakers`)."""
    if _on is not None and _on.metrics is not None:
        _on.metrics.breakers.watch(tripped)


def stop() -> None:
    """Flush and shut down the tracer provider, close the metrics listener; everything is off after."""
    global _on
    on, _on = _on, None
    if on is None:
        return
    if on.listener is not None:
        on.listener.close()
    if on.metrics is not None:
        on.metrics.breakers.close()
    if on.provider is not None:
        on.provider.shutdown()


# -- one tools/call ----------------------------------------------------------------------------------

Credential: TypeAlias = "Session | Refusal"  # as `GuardChain.call` takes it
CallFn: TypeAlias = Callable[["GuardChain", Credential, str, "dict[str, Any] | None"], Awaitable[Outcome]]
AuditFn: TypeAlias = Callable[["GuardChain", "Call", Outcome], Awaitable[Outcome]]


def traced_call(fn: CallFn) -> CallFn:
    """`GuardChain.call`: the call's SERVER span (stage spans are its children) and its metrics."""

    @functools.wraps(fn)
    async def call(chain: GuardChain, credential: Credential, tool: str, arguments: dict[str, Any] | None) -> Outcome:
        on = _on
        if on is None:
            return await fn(chain, credential, tool, arguments)
        known = chain.catalogue.get(tool) is not None
        label = tool if known else UNKNOWN_TOOL
        span = None
        if on.tracer is not None:
            attributes: dict[str, str] = {"mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool"}
            if known:
                attributes["gen_ai.tool.name"] = tool
            span = on.tracer.start_span(f"tools/call {tool}" if known else "tools/call", kind=SpanKind.SERVER,
                                        attributes=attributes)
        scope = _CallScope(on, span, on.tracer if span is not None and span.is_recording() else None, label)
        scoped, entered = _CALL.set(scope), _enter(span)
        started = time.perf_counter()
        try:
            outcome = await fn(chain, credential, tool, arguments)
        except BaseException as exc:  # the chain answers every DeskgateError: this is a cancellation or a bug
            _leave(span, entered, None if span is None else _describe(span, exc))
            raise
        finally:
            _CALL.reset(scoped)
        _leave(span, entered, None if span is None else _answered(span, outcome))
        _count_call(scope, outcome, time.perf_counter() - started)
        return outcome

    return call


def _answered(span: Span, outcome: Outcome) -> str | None:
    """Put the call's answer on its span; the span's error description when the call failed (a refusal,
    a pending approval or an escalation is an answer the chain gives on purpose, not a failure)."""
    answer: dict[str, str | int] = {"deskgate.status": outcome.status.value}
    if outcome.code:
        answer["deskgate.code"] = bounded_code(outcome.code)
    if outcome.audit_seq is not None:
        answer["deskgate.audit.seq"] = outcome.audit_seq
    span.set_attributes(answer)
    return (bounded_code(outcome.code) or "error") if outcome.status == Answer.ERROR else None


def _count_call(scope: _CallScope, outcome: Outcome, seconds: float) -> None:
    metrics = scope.on.metrics
    if metrics is None:
        return
    metrics.calls.labels(scope.tool, outcome.status.value, bounded_code(outcome.code)).inc()
    metrics.call_seconds.labels(scope.tool).observe(seconds)


def audit_stage(fn: AuditFn) -> AuditFn:
    """`GuardChain.audit`: stage 9's span, then the facts of the whole call, from the record's sources."""

    @functools.wraps(fn)
    async def audit(chain: GuardChain, call: Call, outcome: Outcome) -> Outcome:
        scope = _CALL.get()
        if scope is None:
            return await fn(chain, call, outcome)
        with _Stage("audit", scope):
            answer = await fn(chain, call, outcome)
        _call_facts(scope, call, answer)
        return answer

    return audit


def _call_facts(scope: _CallScope, call: Call, outcome: Outcome) -> None:
    """The request id and policy tier on the call span; confirmations and approvals counted."""
    verdict = call.verdict
    if scope.span is not None:
        scope.span.set_attribute("deskgate.request_id", call.request_id)
        if verdict is not None:
            scope.span.set_attribute("deskgate.policy.tier", verdict.decision.tier)
    metrics = scope.on.metrics
    if metrics is None:
        return
    executed = call.executed
    if outcome.status == Answer.CONFIRMATION_REQUIRED:
        metrics.confirmations["issued"].inc()
    elif outcome.status == Answer.DENIED and (outcome.code or "").startswith("confirmation_"):
        metrics.confirmations["refused"].inc()
    elif executed and verdict is not None and verdict.needs_confirmation:
        metrics.confirmations["redeemed"].inc()
    if outcome.status == Answer.PENDING_APPROVAL:
        metrics.approvals["requested"].inc()
    elif executed and verdict is not None and verdict.approval is not None:
        metrics.approvals["executed"].inc()


# -- stages ------------------------------------------------------------------------------------------


def stage(name: Stage) -> AbstractContextManager[None]:
    """`with telemetry.stage("execute"):` - a child span of the call and the stage's latency."""
    scope = _CALL.get()
    return _OFF if scope is None else _Stage(name, scope)


def traced_stage(name: Stage) -> Callable[[F], F]:
    """`@telemetry.traced_stage("authorize")` on a stage's method (sync or async): `stage(name)` around it."""

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                scope = _CALL.get()
                if scope is None:
                    return await fn(*args, **kwargs)
                with _Stage(name, scope):
                    return await fn(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            scope = _CALL.get()
            if scope is None:
                return fn(*args, **kwargs)
            with _Stage(name, scope):
                return fn(*args, **kwargs)

        return cast(F, run)

    return decorate


class _Stage:
    """One stage of a call in flight: a child span when tracing, an observation when measuring."""

    __slots__ = ("_entered", "_name", "_scope", "_span", "_started")

    def __init__(self, name: Stage, scope: _CallScope) -> None:
        self._name, self._scope = name, scope
        self._span: Span | None = None
        self._entered: Token[otel_context.Context] | None = None
        self._started = 0.0

    def __enter__(self) -> None:
        tracer = self._scope.tracer
        if tracer is not None:
            self._span = tracer.start_span(self._name, attributes={"deskgate.stage": self._name})
            self._entered = _enter(self._span)
        self._started = time.perf_counter()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        seconds = time.perf_counter() - self._started
        failed = None
        if exc is not None and self._span is not None:
            failed = _describe(self._span, exc)
        _leave(self._span, self._entered, failed)
        metrics = self._scope.on.metrics
        if metrics is not None:
            metrics.stage_seconds[self._name].observe(seconds)


def _describe(span: Span, exc: BaseException) -> str | None:
    """What a span may say about the exception that ended it: the error's status and code, or the
    exception's class; never its message. The span's error description, or None for a refusal or
    another answer the chain gives on purpose (denied, pending approval, ...)."""
    if isinstance(exc, DeskgateError):
        span.set_attributes({"deskgate.status": exc.status.value, "deskgate.code": bounded_code(exc.code)})
        return bounded_code(exc.code) if exc.status == Answer.ERROR and not isinstance(exc, DomainError) else None
    span.set_attribute("error.type", type(exc).__qualname__)
    return type(exc).__qualname__


def _enter(span: Span | None) -> Token[otel_context.Context] | None:
    return None if span is None else otel_context.attach(trace.set_span_in_context(span))


def _leave(span: Span | None, entered: Token[otel_context.Context] | None, failed: str | None) -> None:
    if span is None:
        return
    if entered is not None:
        otel_context.detach(entered)
    if failed is not None:
        span.set_status(Status(StatusCode.ERROR, failed))
    span.end()


# -- the support backend -----------------------------------------------------------------------------


def observed(backend: B) -> B:
    """`backend` with a span and a latency per call, and its failures counted; itself when all is off."""
    on = _on
    return backend if on is None else cast(B, _ObservedBackend(backend, on))


class _ObservedBackend:
    """Wraps each public coroutine method of the backend it holds; everything else passes through."""

    def __init__(self, backend: Any, on: _On) -> None:
        self._backend = backend
        self._on = on

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._backend, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(value):
            return value
        wrapped = _observed_method(name, value, self._on)
        setattr(self, name, wrapped)  # built once per method
        return wrapped


def _observed_method(operation: str, method: Callable[..., Awaitable[Any]], on: _On) -> Callable[..., Any]:
    span_name = f"backend {operation}"

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        span = None
        scope = _CALL.get()
        if scope is not None and scope.tracer is not None:
            span = scope.tracer.start_span(span_name, kind=SpanKind.CLIENT,
                                        attributes={"deskgate.backend.operation": operation})
        entered = _enter(span)
        started = time.perf_counter()
        failed = None
        try:
            return await method(*args, **kwargs)
        except BaseException as exc:
            if span is not None:
                failed = _describe(span, exc)
            if on.metrics is not None and not isinstance(exc, DomainError):
                code = bounded_code(exc.code) if isinstance(exc, DeskgateError) else "internal"
                on.metrics.backend_errors.labels(operation, code).inc()
            raise
        finally:
            _leave(span, entered, failed)
            if on.metrics is not None:
                on.metrics.backend_seconds.labels(operation).observe(time.perf_counter() - started)

    return call


# -- the audit writer --------------------------------------------------------------------------------

CommitFn = TypeVar("CommitFn", bound=Callable[[Any, list[Any]], None])


def audit_commit(fn: CommitFn) -> CommitFn:
    """`GroupCommit._commit(batch)`, in the writer thread: the time to make a batch durable, its size."""

    @functools.wraps(fn)
    def commit(log: Any, batch: list[Any]) -> None:
        on = _on
        if on is None or on.metrics is None:
            return fn(log, batch)
        size, started = len(batch), time.perf_counter()
        fn(log, batch)
        on.metrics.audit_fsync_seconds.observe(time.perf_counter() - started)
        if size:
            on.metrics.audit_batch_records.observe(size)

    return cast(CommitFn, commit)


__all__ = ["Stage", "audit_commit", "audit_stage", "observed", "stage", "start", "stop", "traced_call",
           "traced_stage", "watch_breakers"]
