"""`[backends]` in deskgate.toml: one system per domain, secrets only by name, errors that name file and line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from deskgate.server.errors import ConfigError, DomainError
from deskgate.server.settings import BackendSection, Paths, load_settings
from deskgate.tools.backend.build import build_backend, read_secret
from deskgate.tools.backend.kinds import Intent
from deskgate.tools.backend.ledger import IntentLedger
from deskgate.tools.backend.seed import DEMO
from deskgate.tools.backend.sql import SqlSupportBackend

pytestmark = pytest.mark.anyio


def _settings_with(tmp_path: Path, text: str) -> Paths:
    paths = Paths(tmp_path)
    paths.overrides.write_text(text, encoding="utf-8")
    return paths


def test_without_a_backends_section_every_domain_is_the_embedded_demo(tmp_path: Path, backend) -> None:
    """No [backends]: identity, commerce, billing, tickets and the journal all act on the demo database."""
    composed = build_backend(load_settings(Paths(tmp_path)).backends, backend, IntentLedger(backend.db))
    d = composed.domains
    assert d.identity is d.commerce is d.billing is d.tickets is d.journal is backend


def test_a_literal_api_key_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    paths = _settings_with(tmp_path, '[server]\nname = "x"\n\n[backends.billing]\nkind = "stripe"\n'
                                     'api_key = "sk_test_literal"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(paths)
    assert f"{paths.overrides}:6:" in error.value.reason
    assert "api_key" in error.value.reason and "environment variable" in error.value.reason
    assert "sk_test_literal" not in error.value.reason


def test_a_literal_token_is_refused_too(tmp_path: Path) -> None:
    paths = _settings_with(tmp_path, '[backends.tickets]\nkind = "helpdesk"\ntoken = "abc123"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(paths)
    assert f"{paths.overrides}:3:" in error.value.reason and "abc123" not in error.value.reason


def test_a_system_that_cannot_serve_a_domain_is_refused_at_start_up(tmp_path: Path) -> None:
    paths = _settings_with(tmp_path, '[backends.billing]\nkind = "helpdesk"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(paths)
    assert str(paths.overrides) in error.value.reason and "sql or stripe" in error.value.reason


def test_an_unknown_key_in_a_backend_section_is_refused(tmp_path: Path) -> None:
    paths = _settings_with(tmp_path, '[backends.billing]\nkind = "stripe"\napi_kye_env = "X"\n')
    with pytest.raises(ConfigError) as error:
        load_settings(paths)
    assert f"{paths.overrides}:3:" in error.value.reason


def test_a_secret_is_read_from_the_named_environment_variable_only() -> None:
    section = BackendSection(kind="stripe", api_key_env="DG_TEST_STRIPE_KEY")
    assert read_secret(section, "billing", env={"DG_TEST_STRIPE_KEY": "sk_test_1"}.get) == "sk_test_1"
    with pytest.raises(ConfigError) as error:
        read_secret(section, "billing", env={}.get)
    assert "DG_TEST_STRIPE_KEY is not set" in error.value.reason


def test_a_backend_that_names_no_secret_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        read_secret(BackendSection(kind="stripe"), "billing", env={}.get)
    assert "api_key_env" in error.value.reason


async def test_ownership_lookups_go_to_the_domain_that_owns_the_kind(tmp_path: Path, backend) -> None:
    composed = build_backend(load_settings(Paths(tmp_path)).backends, backend, IntentLedger(backend.db))
    for kind, object_id in (("order_id", DEMO.delivered_order), ("subscription_id", DEMO.subscription_id),
                            ("ticket_id", DEMO.pii_ticket), ("account_id", DEMO.account_id)):
        assert await composed.owners(kind, object_id) == await backend.owners(kind, object_id)


async def test_the_demo_carries_out_an_intent_once(backend: SqlSupportBackend, scalar) -> None:
    """The same audit intent twice: one refund, and the second answer is the first one."""
    intent = Intent(key="k" * 64, request_id="req-9", seq=12)
    first = await backend.issue_refund(DEMO.delivered_order, Decimal("20.00"), "damaged_item", actor="a", now=1,
                                       intent=intent)
    again = await backend.issue_refund(DEMO.delivered_order, Decimal("20.00"), "damaged_item", actor="a", now=2,
                                       intent=intent)
    assert again == first
    assert scalar("SELECT COUNT(*) FROM refunds WHERE order_id = ?", DEMO.delivered_order) == 1
    assert scalar("SELECT refunded_minor FROM orders WHERE id = ?", DEMO.delivered_order) == 2000


async def test_an_intent_is_never_reused_for_another_object(backend: SqlSupportBackend, snapshot) -> None:
    intent = Intent(key="q" * 64, request_id="req-10", seq=13)
    await backend.issue_refund(DEMO.delivered_order, Decimal("1.00"), "damaged_item", actor="a", now=1,
                               intent=intent)
    before = snapshot()
    with pytest.raises(DomainError) as error:
        await backend.issue_refund(DEMO.pending_order, Decimal("1.00"), "damaged_item", actor="a", now=2,
                                   intent=intent)
    assert error.value.code == "intent_conflict"
    assert snapshot() == before


def test_connecting_writes_the_backends_section_with_secret_names_only(tmp_path: Path) -> None:
    """`init --stripe/--helpdesk` writes what deskgate.toml needs: the systems and their secrets' names."""
    from deskgate.tools.backend.connect import HelpdeskTarget, backends_section

    paths = _settings_with(tmp_path, '[server]\nname = "x"\n\n' + backends_section(
        "http://127.0.0.1:8420", HelpdeskTarget("http://127.0.0.1:8000", 1, 2)))
    backends = load_settings(paths).backends
    assert (backends.billing.kind, backends.billing.api_base, backends.billing.api_key_env) == (
        "stripe", "http://127.0.0.1:8420", "STRIPE_API_KEY")
    assert (backends.tickets.kind, backends.tickets.queue, backends.tickets.human_queue) == ("helpdesk", 1, 2)
    assert (backends.commerce.kind, backends.identity.kind) == ("sql", "sql")


def test_connecting_refuses_to_overwrite_another_backends_section(tmp_path: Path, backend) -> None:
    from deskgate.tools.backend.connect import connect_demo

    paths = _settings_with(tmp_path, '[backends.billing]\nkind = "sql"\ntimeout_seconds = 3\n')
    before = paths.overrides.read_text()
    with pytest.raises(ConfigError) as error:
        connect_demo(paths, backend.db, stripe_url="http://127.0.0.1:9", helpdesk=None)
    assert "already has a [backends] section" in error.value.reason
    assert paths.overrides.read_text() == before
