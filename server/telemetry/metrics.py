"""Prometheus metrics: deskgate's own registry, served on a listener of its own.

Every metric lives in one `CollectorRegistry` made per `Metrics` (never the process-wide default
registry, so nothing another library registers is served, and tests start from zero). Label values
come from fixed sets only - stage names, catalogue tool names (anything else is `unknown`), status
values, error codes of the code base, backend method names, breaker names - never a customer id, a
request id or anything a caller typed, so the number of series is bounded by the code base.

The listener is prometheus-client's own threaded HTTP server (`/metrics`, any number of concurrent
scrapes); every metric is safe to update from any thread (the event loop, the audit writer thread,
the database's workers).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from deskgate.server.errors import ConfigError, DeskgateError
from deskgate.server.policy.engine import MONEY_BREAKER

log = logging.getLogger("deskgate.telemetry")

STAGES = ("authenticate", "resolve", "authorize", "policy", "confirm", "idempotency", "execute", "redact", "audit")
UNKNOWN_TOOL = "unknown"
CONFIRMATION_EVENTS = ("issued", "redeemed", "refused")
APPROVAL_EVENTS = ("requested", "executed")
KNOWN_BREAKERS = (MONEY_BREAKER,)

# Seconds: from a cached token check (tens of microseconds) to a slow backend (seconds).
_LATENCY = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_CODE = re.compile(r"[a-z][a-z0-9_]{0,47}")
_BREAKER_READ_SECONDS = 5.0


def bounded_code(code: str | None) -> str:
    """An error code as a label value: the code base's own codes pass, anything else is `other`."""
    if code is None:
        return ""
    return code if _CODE.fullmatch(code) else "other"


class Metrics:
    """The metrics deskgate serves; `registry` is what the listener exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter("deskgate_tool_calls", "tools/call answers by tool, status and code.",
                             ["tool", "status", "code"], registry=r)
        self.call_seconds = Histogram("deskgate_tool_call_seconds", "Latency of a whole tools/call through the "
                                      "guard chain, by tool.", ["tool"], buckets=_LATENCY, registry=r)
        stage_seconds = Histogram("deskgate_stage_seconds", "Latency of one guard-chain stage (a write tool's "
                                  "intent record counts as an audit stage too).", ["stage"], buckets=_LATENCY,
                                  registry=r)
        self.stage_seconds = {stage: stage_seconds.labels(stage) for stage in STAGES}
        self.backend_seconds = Histogram("deskgate_backend_call_seconds", "Latency of one support-backend call, "
                                         "by operation.", ["operation"], buckets=_LATENCY, registry=r)
        self.backend_errors = Counter("deskgate_backend_errors", "Support-backend calls that failed (a domain "
                                      "refusal such as not_found is an answer, not an error), by operation and "
                                      "code.", ["operation", "code"], registry=r)
        self.audit_fsync_seconds = Histogram("deskgate_audit_fsync_seconds", "Time to make one audit batch "
                                             "durable: its write and fsync (file log) or INSERT and COMMIT "
                                             "(PostgreSQL).", buckets=_LATENCY, registry=r)
        self.audit_batch_records = Histogram("deskgate_audit_batch_records", "Records made durable by one audit "
                                             "group commit (records of reads written on their callers' threads "
                                             "share it but are not counted).", buckets=_BATCH, registry=r)
        confirmations = Counter("deskgate_confirmations", "Confirmations of irreversible actions: issued, "
                                "redeemed (the confirmed call ran) and refused.", ["event"], registry=r)
        self.confirmations = {event: confirmations.labels(event) for event in CONFIRMATION_EVENTS}
        approvals = Counter("deskgate_approvals", "Approvals of assist-tier calls: requested (pending_approval "
                            "answered) and executed (an approved call ran).", ["event"], registry=r)
        self.approvals = {event: approvals.labels(event) for event in APPROVAL_EVENTS}
        self.breakers = BreakerState()
        r.register(self.breakers)


class BreakerState(Collector):
    """`deskgate_breaker_open{breaker}`: read from the shared state store at each scrape, so it is right
    whichever process tripped the breaker or whichever admin reset it.

    The read runs on one thread of its own (the listener starts a thread per scrape, and the SQLite
    engine keeps a connection per thread it is used from)."""

    def __init__(self) -> None:
        self._source: Callable[[], Iterable[str]] | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def watch(self, source: Callable[[], Iterable[str]]) -> None:
        """`source` names the breakers tripped now (it may block on the state store)."""
        with self._lock:
            self._source = source
            if self._reader is None:
                self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskgate-metrics-breakers")

    def close(self) -> None:
        with self._lock:
            reader, self._reader, self._source = self._reader, None, None
        if reader is not None:
            reader.shutdown(wait=True)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            source, reader = self._source, self._reader
        if source is None or reader is None:
            return
        try:
            tripped = set(reader.submit(lambda: list(source())).result(timeout=_BREAKER_READ_SECONDS))
        except (DeskgateError, TimeoutError) as exc:
            # The scrape still answers with everything else; a missing series is the operator's signal.
            log.warning("metrics: breaker state unavailable (%s)", type(exc).__name__)
            return
        family = GaugeMetricFamily("deskgate_breaker_open", "1 while a circuit breaker is tripped (until an admin "
                                   "resets it), else 0.", labels=["breaker"])
        for name in sorted(set(KNOWN_BREAKERS) | tripped):
            family.add_metric([name], 1.0 if name in tripped else 0.0)
        yield family


class Listener:
    """`http://HOST:PORT/metrics` for one registry, on prometheus-client's threaded server."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        try:
            server, thread = start_http_server(port, addr=host, registry=metrics.registry)
        except OSError as exc:
            raise ConfigError(f"metrics: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        self._server: WSGIServer = server
        self._thread = thread
        self.host, self.port = host, int(server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


__all__ = ["STAGES", "UNKNOWN_TOOL", "BreakerState", "Listener", "Metrics", "bounded_code"]
