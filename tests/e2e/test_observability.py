"""What an operator sees: OpenTelemetry spans of real MCP calls, and the Prometheus endpoint of a real server.

Spans are read from the SDK's own `InMemorySpanExporter`, handed to `telemetry.start` (the entry point
`deskgate serve` uses), after calls made by a real MCP client through the whole guard chain. Metrics
are scraped from `deskgate serve --metrics-port` in its own process and parsed with prometheus-client's
parser. With nothing configured there is no listener and no span.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from deskgate.server import telemetry
from tests.e2e.conftest import Deployment, call, deployed
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio

STAGES = ["authenticate", "resolve", "authorize", "policy", "confirm", "execute", "redact", "audit"]
OTEL_VARIABLES = ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
                  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")


@pytest.fixture
def no_otel(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No OTEL_* variable from the machine running the tests; telemetry off again afterwards."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    telemetry.stop()


@pytest.fixture
async def traced(home: Path, engine: str | None, no_otel: None,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Deployment, InMemorySpanExporter]]:
    """A deployment built after tracing was switched on (as `deskgate serve` does), spans kept in memory."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "deskgate-under-test")
    exporter = InMemorySpanExporter()
    telemetry.start(span_exporters=[exporter])
    async with deployed(home, engine) as deployment:
        yield deployment, exporter


def calls_of(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if s.name.startswith("tools/call")]


def children_of(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return sorted((s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id),
                  key=lambda s: s.start_time or 0)


def every_attribute(spans: tuple[ReadableSpan, ...]) -> str:
    """Every span's name, attributes, status, events and resource, as one text to search for PII. Trace
    and span ids and timestamps are left out: random hex and digits would match short values by chance."""
    return json.dumps([{"name": s.name, "attributes": dict(s.attributes or {}),
                        "status": s.status.description, "resource": dict(s.resource.attributes),
                        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in s.events]}
                       for s in spans], default=str)


async def test_a_tool_call_is_one_server_span_with_a_child_span_per_stage_in_chain_order(
        traced: tuple[Deployment, InMemorySpanExporter]) -> None:
    """get_order through a real client: one `tools/call get_order` SERVER span with the answer's status,
    the policy tier, the audit seq and the request id; its children are the stages in chain order, and
    the backend's calls are children of the stage that made them."""
    deployment, exporter = traced
    async with deployment.client(deployment.token("tier1-agent")) as client:
        result = await call(client, "get_order", order_id=deployment.demo.delivered_order)
    assert result["status"] == "ok"
    spans = exporter.get_finished_spans()
    (root,) = calls_of(spans)
    assert root.name == "tools/call get_order" and root.kind == SpanKind.SERVER and root.parent is None
    attributes = dict(root.attributes or {})
    assert attributes["gen_ai.tool.name"] == "get_order" and attributes["mcp.method.name"] == "tools/call"
    assert attributes["deskgate.status"] == "ok" and attributes["deskgate.policy.tier"] == "automate"
    assert attributes["deskgate.audit.seq"] == result["audit_seq"]
    audited = [r for r in deployment.audit_records() if r.get("seq") == result["audit_seq"]]
    assert attributes["deskgate.request_id"] == audited[0]["request_id"]
    assert root.status.status_code == StatusCode.UNSET
    stages = children_of(spans, root)
    assert [s.name for s in stages] == STAGES
    assert all(s.attributes and s.attributes["deskgate.stage"] == s.name for s in stages)
    execute = next(s for s in stages if s.name == "execute")
    backend = children_of(spans, execute)
    assert [s.name for s in backend] == ["backend get_order"] and backend[0].kind == SpanKind.CLIENT
    assert root.resource.attributes["service.name"] == "deskgate-under-test"


async def test_a_confirmed_idempotent_refund_traces_confirmation_idempotency_and_the_intent_record(
        traced: tuple[Deployment, InMemorySpanExporter]) -> None:
    """The first call stops at stage 5 (confirm is its last stage before audit); the confirmed repeat
    claims its idempotency key, writes its intent record, executes and redacts."""
    deployment, exporter = traced
    refund = {"order_id": deployment.demo.delivered_order, "amount": "10.00", "reason_code": "damaged_item",
              "idempotency_key": "refund-1"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        first = await call(client, "issue_refund", **refund)
        done = await call(client, "issue_refund", **refund, confirmation_token=first["confirmation_token"])
    assert (first["status"], done["status"]) == ("confirmation_required", "ok")
    spans = exporter.get_finished_spans()
    asked, redeemed = calls_of(spans)
    assert (asked.attributes or {})["deskgate.status"] == "confirmation_required"
    assert [s.name for s in children_of(spans, asked)] == ["authenticate", "resolve", "authorize", "policy",
                                                            "confirm", "audit"]
    confirm = next(s for s in children_of(spans, asked) if s.name == "confirm")
    assert (confirm.attributes or {})["deskgate.code"] == "confirmation_required"
    assert confirm.status.status_code == StatusCode.UNSET  # an answer on purpose, not a failure
    assert [s.name for s in children_of(spans, redeemed)] == [
        "authenticate", "resolve", "authorize", "policy", "confirm", "idempotency", "audit", "execute", "redact",
        "audit"]
    assert (redeemed.attributes or {})["deskgate.audit.seq"] == done["audit_seq"]


async def test_no_span_carries_arguments_tokens_names_emails_or_customer_ids(
        traced: tuple[Deployment, InMemorySpanExporter]) -> None:
    """Reads of the PII-heavy customer and ticket, a refused call and an unknown tool named after the
    customer's email: no span name, attribute, status or event carries any of the values involved."""
    deployment, exporter = traced
    demo = deployment.demo
    token = deployment.token("supervisor")
    async with deployment.client(token) as client:
        assert (await call(client, "get_customer", customer_id=demo.customer_id))["status"] == "ok"
        assert (await call(client, "get_ticket", ticket_id=demo.pii_ticket))["status"] == "ok"
        found = await call(client, "find_customer", email=demo.customer_email)
        assert found["status"] == "ok"
        refused = await call(client, "get_order", order_id=f"O-{demo.customer_email}")
        unknown = await client.call_tool(demo.customer_email, {"customer_id": demo.customer_id})
    assert refused["status"] == "error" and unknown.is_error
    spans = exporter.get_finished_spans()
    assert len(calls_of(spans)) == 5
    text = every_attribute(spans)
    secrets = [demo.customer_email, "Maria", "Schneider", demo.customer_phone, demo.card_last4, demo.postcode,
               token, token.split(".")[2], f'"{demo.customer_id}"', f'"{demo.pii_ticket}"', demo.delivered_order]
    assert [value for value in secrets if _appears(value, text)] == []
    (stray,) = [s for s in calls_of(spans) if s.name == "tools/call"]
    assert "gen_ai.tool.name" not in (stray.attributes or {})
    assert (stray.attributes or {})["deskgate.code"] == "unknown_tool"


def _appears(value: str, text: str) -> bool:
    """A short number counts only as a whole number (a request id's hex may hold its digits by chance)."""
    if value.isdigit():
        return re.search(rf"(?<![0-9a-f]){value}(?![0-9a-f])", text) is not None
    return value in text


async def test_tracing_and_metrics_are_off_unless_configured(home: Path, engine: str | None, no_otel: None) -> None:
    """`start()` with no OTEL_* variable and no metrics port switches nothing on: no exporter is named,
    the chain keeps its backend as it is (no cost per backend call) and every stage hook is the shared
    no-op; calls are answered as ever. (Nothing listens: `test_without_metrics_port_nothing_listens`.)"""
    assert telemetry.start() is None
    assert telemetry.tracing.exporter_names() == []
    async with deployed(home, engine) as deployment:
        assert deployment.runtime.chain._backend is deployment.runtime.backend
        async with deployment.client(deployment.token("tier1-agent")) as client:
            assert (await call(client, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
    assert telemetry.stage("execute") is telemetry.stage("audit")


async def test_concurrent_calls_keep_their_own_stage_spans(traced: tuple[Deployment, InMemorySpanExporter]) -> None:
    """Twenty calls in flight at once on one event loop: each call span has exactly its own stages, and
    every backend span sits under a stage of the same trace."""
    deployment, exporter = traced
    async with deployment.client(deployment.token("tier1-agent")) as client, anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(functools.partial(call, client, "get_order", order_id=deployment.demo.delivered_order))
    spans = exporter.get_finished_spans()
    roots = calls_of(spans)
    assert len(roots) == 20 and len({r.context.trace_id for r in roots if r.context}) == 20
    for root in roots:
        assert [s.name for s in children_of(spans, root)] == STAGES
    by_id = {s.context.span_id: s for s in spans if s.context}
    for backend in (s for s in spans if s.name.startswith("backend ")):
        assert backend.parent is not None and by_id[backend.parent.span_id].name in STAGES
        assert backend.context is not None and backend.context.trace_id == backend.parent.trace_id


async def test_listing_tools_makes_no_span(traced: tuple[Deployment, InMemorySpanExporter]) -> None:
    """tools/list authenticates too, but only tools/call is traced: no stray authenticate span."""
    deployment, exporter = traced
    async with deployment.client(deployment.token("tier1-agent")) as client:
        assert (await client.list_tools()).tools
    assert exporter.get_finished_spans() == ()


async def test_a_failing_backend_marks_its_span_and_the_call_as_errors_by_code_only(
        home: Path, no_otel: None) -> None:
    """With the demo backend's database closed under it, the backend span and the call span end in
    ERROR described by the error code; the exception's text is on no span (no recorded exception)."""
    exporter = InMemorySpanExporter()
    telemetry.start(span_exporters=[exporter])
    async with deployed(home, None) as deployment:  # SQLite: the backend has a database of its own
        token = deployment.token("tier1-agent")
        deployment.runtime.backend_db.close()
        async with deployment.client(token) as client:
            result = await call(client, "get_order", order_id=deployment.demo.delivered_order)
    assert result["status"] == "error"
    spans = exporter.get_finished_spans()
    (root,) = calls_of(spans)
    (backend,) = [s for s in spans if s.name == "backend get_order"]
    assert backend.status.status_code == StatusCode.ERROR and backend.status.description == "store_unavailable"
    assert root.status.status_code == StatusCode.ERROR
    assert (root.attributes or {})["deskgate.code"] == result["code"]
    assert all(not s.events for s in spans)  # no exception event, no message
    assert "closed" not in every_attribute(spans)


async def test_spans_reach_an_otlp_collector_named_only_by_otel_variables(
        home: Path, no_otel: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and OTEL_SERVICE_NAME alone send the spans
    of a real call, as OTLP/HTTP protobuf, to a collector on loopback (flushed by `telemetry.stop`)."""
    with Collector() as collector:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k-123")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "deskgate-eu-1")
        assert telemetry.start() is None  # tracing only: no metrics listener
        async with deployed(home, None) as deployment:
            async with deployment.client(deployment.token("tier1-agent")) as client:
                assert (await call(client, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
            telemetry.stop()
    assert collector.paths == {"/v1/traces"} and collector.keys == {"k-123"}
    names = {span.name for request in collector.requests for rs in request.resource_spans
             for ss in rs.scope_spans for span in ss.spans}
    assert {"tools/call get_order", *STAGES, "backend get_order"} <= names
    services = {a.value.string_value for request in collector.requests for rs in request.resource_spans
                for a in rs.resource.attributes if a.key == "service.name"}
    assert services == {"deskgate-eu-1"}


async def test_an_unsampled_call_makes_no_span_at_all(home: Path, no_otel: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_SAMPLER is the SDK's: with `always_off` the call is answered and nothing is recorded
    (its stage and backend spans are not even started)."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    exporter = InMemorySpanExporter()
    telemetry.start(span_exporters=[exporter])
    async with deployed(home, None) as deployment, deployment.client(deployment.token("tier1-agent")) as client:
        assert (await call(client, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
    assert exporter.get_finished_spans() == ()


class Collector:
    """A minimal OTLP/HTTP trace receiver on loopback: keeps each decoded export request."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: set[str] = set()
        self.keys: set[str] = set()
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                received.paths.add(self.path)
                received.keys.add(self.headers.get("x-collector-key", ""))
                received.requests.append(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


# -- metrics from a real server process ------------------------------------------------------------


@pytest.fixture
def metrics_server(deployment: Deployment, no_otel: None) -> Iterator[tuple[str, str]]:
    """`deskgate serve --transport http --metrics-port P` in its own process: (MCP base URL, metrics URL)."""
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev",
                             "--metrics-port", str(metrics_port)],
                            env=server_env(deployment), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base, metrics = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        with anyio.from_thread.start_blocking_portal() as portal:
            portal.call(_wait_until_up, base, proc)  # the metrics listener started before the MCP one
        yield base, metrics
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(page: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_the_metrics_listener_counts_calls_stages_audit_confirmations_and_breakers(
        deployment: Deployment, metrics_server: tuple[str, str]) -> None:
    """After real calls over HTTP (a read, a refused read, a confirmation asked and redeemed, an approval
    requested), the separate listener serves them by tool, status and code, the stage and audit histograms,
    the confirmation and approval counters and the breaker gauge; no label carries an id."""
    base, metrics_url = metrics_server
    demo = deployment.demo
    refund = {"order_id": demo.delivered_order, "reason_code": "damaged_item"}
    async with http_client(base, deployment.token("billing-agent"), "auto") as client:
        assert (await call(client, "get_order", order_id=demo.delivered_order))["status"] == "ok"
        assert (await call(client, "get_order", order_id="O-999999"))["status"] == "error"
        first = await call(client, "issue_refund", **refund, amount="10.00")
        token = first["confirmation_token"]
        done = await call(client, "issue_refund", **refund, amount="10.00", confirmation_token=token)
        assert done["status"] == "ok"
        assert (await call(client, "issue_refund", **refund, amount="60.00"))["status"] == "pending_approval"
        await client.call_tool("no_such_tool", {})
    async with httpx2.AsyncClient() as http:
        response = await http.get(metrics_url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    page = samples(response.text)
    assert value(page, "deskgate_tool_calls_total", tool="get_order", status="ok", code="") == 1
    assert value(page, "deskgate_tool_calls_total", tool="get_order", status="error", code="not_found") == 1
    assert value(page, "deskgate_tool_calls_total", tool="issue_refund", status="confirmation_required",
                 code="confirmation_required") == 1
    assert value(page, "deskgate_tool_calls_total", tool="unknown", status="denied", code="unknown_tool") == 1
    assert value(page, "deskgate_confirmations_total", event="issued") == 1
    assert value(page, "deskgate_confirmations_total", event="redeemed") == 1
    assert value(page, "deskgate_approvals_total", event="requested") == 1
    assert value(page, "deskgate_stage_seconds_count", stage="execute") == 3  # the not_found one ran too
    assert value(page, "deskgate_stage_seconds_count", stage="authenticate") == 6
    assert value(page, "deskgate_tool_call_seconds_count", tool="get_order") == 2
    # the two executions, plus the lookups stage 3 makes of the objects the refunds name
    assert value(page, "deskgate_backend_call_seconds_count", operation="get_order") >= 2
    assert value(page, "deskgate_audit_fsync_seconds_count") >= 1
    assert value(page, "deskgate_audit_batch_records_count") >= 1
    assert value(page, "deskgate_breaker_open", breaker="money") == 0
    labels = {v for (_, pairs) in page for (_, v) in pairs}
    assert not [v for v in labels if v.startswith(("C-", "O-", "T-", "A-", "AP-")) or "@" in v]


async def test_a_stdio_server_serves_metrics_too(deployment: Deployment, no_otel: None) -> None:
    """Over stdio (as Claude Desktop launches it) the metrics listener works the same way."""
    port = free_port()
    params = StdioServerParameters(command=CLI[0], args=[*CLI[1:], "serve", "--transport", "stdio", "--dev",
                                                         "--metrics-port", str(port)],
                                   env=server_env(deployment, DESKGATE_TOKEN=deployment.token("tier1-agent")))
    async with Client(params) as client:
        assert (await call(client, "get_ticket", ticket_id=deployment.demo.pii_ticket))["status"] == "ok"
        async with httpx2.AsyncClient() as http:
            page = samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
    assert value(page, "deskgate_tool_calls_total", tool="get_ticket", status="ok", code="") == 1


async def test_the_breaker_gauge_follows_the_shared_state_store(deployment: Deployment,
                                                                 metrics_server: tuple[str, str]) -> None:
    """A breaker tripped or reset by anyone (here straight in the state store) shows at the next scrape."""
    _, metrics_url = metrics_server
    breakers = deployment.runtime.state.breakers
    async with httpx2.AsyncClient() as http:
        assert value(samples((await http.get(metrics_url)).text), "deskgate_breaker_open", breaker="money") == 0
        assert await breakers.trip("money", "test", 0)
        assert value(samples((await http.get(metrics_url)).text), "deskgate_breaker_open", breaker="money") == 1
        assert breakers.reset_sync("money", by="anna", now=1)
        assert value(samples((await http.get(metrics_url)).text), "deskgate_breaker_open", breaker="money") == 0


async def test_without_metrics_port_nothing_listens(deployment: Deployment, no_otel: None) -> None:
    """`deskgate serve` without --metrics-port serves MCP and opens no other port."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev", "-v"],
                            env=server_env(deployment), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await _wait_until_up(f"http://127.0.0.1:{port}", proc)
        listening = _listening_ports(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert listening == {port}


def _listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN state owned by `pid` (from /proc: the socket inodes of its descriptors)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = str(fd.readlink()) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields: list[Any] = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.parametrize(("variable", "value"), [("OTEL_TRACES_EXPORTER", "zipkin"),
                                                 ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])
async def test_serve_refuses_to_start_on_an_otel_setting_it_cannot_honour(deployment: Deployment, no_otel: None,
                                                                           variable: str, value: str) -> None:
    """`deskgate serve` exits with one line naming the variable before it listens, rather than serve untraced."""
    env = server_env(deployment, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", **{variable: value})
    done = await anyio.run_process([*CLI, "serve", "--transport", "http", "--port", str(free_port()), "--dev"],
                                   env=env, check=False)
    assert done.returncode == 2
    assert variable.encode() in done.stderr and b"Traceback" not in done.stderr


async def test_serve_refuses_a_metrics_port_it_cannot_listen_on(deployment: Deployment, no_otel: None) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = await anyio.run_process([*CLI, "serve", "--transport", "http", "--port", str(free_port()), "--dev",
                                        "--metrics-port", str(port)], env=server_env(deployment), check=False)
    assert done.returncode == 2
    assert f"127.0.0.1:{port}".encode() in done.stderr and b"Traceback" not in done.stderr
