"""deskgate's own registry and listener: bounded labels, nothing global, the breaker gauge read at scrape."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from deskgate.server.errors import ConfigError
from deskgate.server.store.db import Database
from deskgate.server.store.state import StateStore
from deskgate.server.telemetry.metrics import Listener, Metrics, bounded_code


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a loopback URL this test made
        assert response.status == 200
        text = response.read().decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def test_the_registry_is_deskgates_own_and_serves_nothing_else() -> None:
    """No process or GC collector and nothing any library put in the default registry; and ours stays
    out of the default registry."""
    metrics = Metrics()
    names = {m.name for m in metrics.registry.collect()}
    assert names and all(name.startswith("deskgate_") for name in names)
    assert not [m.name for m in REGISTRY.collect() if m.name.startswith("deskgate_")]


def test_stage_confirmation_and_approval_series_exist_from_the_start_at_zero() -> None:
    """Dashboards and alerts see every stage and event before the first call (no absent series)."""
    metrics = Metrics()
    samples = {(s.name, tuple(s.labels.values())): s.value for m in metrics.registry.collect() for s in m.samples}
    assert samples[("deskgate_stage_seconds_count", ("idempotency",))] == 0
    assert samples[("deskgate_confirmations_total", ("refused",))] == 0
    assert samples[("deskgate_approvals_total", ("executed",))] == 0


@pytest.mark.parametrize(("code", "label"), [(None, ""), ("not_found", "not_found"), ("gate_open_invoices",
                                             "gate_open_invoices"), ("maria@example.com", "other"),
                                             ("C-1042", "other"), ("x" * 49, "other"), ("", "other")])
def test_only_the_code_bases_own_error_codes_become_label_values(code: str | None, label: str) -> None:
    assert bounded_code(code) == label


def test_the_listener_serves_metrics_at_its_own_address_and_closes() -> None:
    metrics = Metrics()
    metrics.calls.labels("get_order", "ok", "").inc()
    listener = Listener(metrics, "127.0.0.1", 0)
    try:
        assert listener.url.startswith("http://127.0.0.1:") and listener.url.endswith("/metrics")
        page = scrape(listener.url)
        assert page["deskgate_tool_calls"] == [({"tool": "get_order", "status": "ok", "code": ""}, 1.0)]
    finally:
        listener.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", listener.port)) != 0  # nothing listens any more


def test_a_port_in_use_stops_start_up_with_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as refused:
            Listener(Metrics(), "127.0.0.1", port)
    assert f"127.0.0.1:{port}" in refused.value.reason


def test_the_breaker_gauge_reads_the_state_store_at_each_scrape(database: Database) -> None:
    """Tripped and reset straight in a real state store: the next scrape says so; before anything
    is watched, and while the store is unreadable, the family is absent but the scrape still answers."""
    state = StateStore(database)
    state.upgrade()
    metrics = Metrics()
    listener = Listener(metrics, "127.0.0.1", 0)
    try:
        assert "deskgate_breaker_open" not in scrape(listener.url)
        metrics.breakers.watch(lambda: [row[0] for row in state.breakers.list_sync()])
        assert scrape(listener.url)["deskgate_breaker_open"] == [({"breaker": "money"}, 0.0)]
        database.write_sync(lambda tx: tx.execute(
            "INSERT INTO breakers (name, tripped_at, reason) VALUES ('money', 1, 'test')"))
        assert scrape(listener.url)["deskgate_breaker_open"] == [({"breaker": "money"}, 1.0)]
        assert state.breakers.reset_sync("money", by="anna", now=2)
        assert scrape(listener.url)["deskgate_breaker_open"] == [({"breaker": "money"}, 0.0)]
        database.close()
        page = scrape(listener.url)
        assert "deskgate_breaker_open" not in page and "deskgate_tool_calls" in page
    finally:
        listener.close()
        metrics.breakers.close()
