"""The API the rest of the code calls: free when off, and what it records when on.

Spans of real calls through the chain are in tests/e2e/test_observability.py; here the pieces that
report outside a call: the support backend's errors, the audit writer's batches, switching on and off.
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from deskgate.server import telemetry
from deskgate.server.audit.log import AuditLog
from deskgate.server.errors import NotFound, StoreUnavailable
from deskgate.server.settings import AuditSection
from deskgate.server.store.db import Database
from deskgate.tools.backend.seed import DEMO, seed_demo
from deskgate.tools.backend.sql import SqlSupportBackend

pytestmark = pytest.mark.anyio


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a loopback URL this test made
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def listening(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_when_off_every_hook_is_a_pass_through() -> None:
    """No OTEL_* variable and no metrics port: `start` switches nothing on, `stage` is one shared
    no-op, `observed` hands back the very object, decorated stages answer as undecorated ones."""
    assert telemetry.start() is None
    assert telemetry.stage("execute") is telemetry.stage("authorize")
    backend = object()
    assert telemetry.observed(backend) is backend

    @telemetry.traced_stage("resolve")
    def resolve(x: int) -> int:
        return x + 1

    assert resolve(1) == 2


async def test_backend_failures_are_counted_by_operation_and_code_and_domain_answers_are_not(
        database: Database) -> None:
    """A real demo backend: a found order and an unknown one (NotFound is the backend's answer) are timed
    and not errors; with the database closed, the failure is counted as store_unavailable."""
    url = telemetry.start(metrics_port=0)
    assert url is not None
    seed_demo(database, customers=5, seed=1)
    backend = telemetry.observed(SqlSupportBackend(database))
    assert (await backend.get_order(DEMO.delivered_order)).order_id == DEMO.delivered_order
    with pytest.raises(NotFound):
        await backend.get_order("O-999999")
    database.close()
    with pytest.raises(StoreUnavailable):
        await backend.get_order(DEMO.delivered_order)
    page = scrape(url)
    assert page[("deskgate_backend_call_seconds_count", (("operation", "get_order"),))] == 3
    errors = {labels: v for (name, labels), v in page.items() if name == "deskgate_backend_errors_total"}
    assert errors == {(("code", "store_unavailable"), ("operation", "get_order")): 1}


def test_audit_batches_report_their_durability_latency_and_size(tmp_path: Path) -> None:
    """A real file audit log: every group commit is timed from the writer thread, and the batch sizes
    add up to the durable appends."""
    url = telemetry.start(metrics_port=0)
    assert url is not None
    log = AuditLog(tmp_path / "audit", AuditSection())
    try:
        for i in range(5):
            log.append_sync({"kind": "call", "request_id": f"r-{i}", "tool": "get_order", "status": "ok"})
    finally:
        log.close()
    page = scrape(url)
    assert page[("deskgate_audit_batch_records_sum", ())] == 5
    assert page[("deskgate_audit_fsync_seconds_count", ())] >= page[("deskgate_audit_batch_records_count", ())] >= 1
    assert page[("deskgate_audit_fsync_seconds_sum", ())] > 0


def test_starting_again_replaces_the_listener_and_stop_closes_it() -> None:
    first = telemetry.start(metrics_port=0)
    second = telemetry.start(metrics_port=0)
    assert first is not None and second is not None and first != second
    assert not listening(first) and listening(second)
    telemetry.stop()
    telemetry.stop()  # idempotent
    assert not listening(second)
    assert telemetry.stage("audit") is telemetry.stage("policy")  # off again
