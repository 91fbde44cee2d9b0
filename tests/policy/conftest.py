"""Fixtures for the policy tests: a real state store and a real SQL support backend, seeded.

The write tools are the catalogue's own; their handlers are never run - the policy engine reads only
the specs' metadata and the arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deskgate.scopes.session import Session
from deskgate.server.policy.approvals import Approvals
from deskgate.server.policy.confirmation import Binding, Confirmations
from deskgate.server.policy.engine import PolicyEngine
from deskgate.server.policy.model import Policy, load_policy
from deskgate.server.store.db import Database
from deskgate.server.store.state import StateStore
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.catalogue import build_catalogue
from deskgate.tools.spec import ToolSpec

NOW = 1_900_000_000 - 1_900_000_000 % 86400 + 3 * 3600  # 03:00 on a day boundary: windows start cleanly


def write_specs() -> list[ToolSpec]:
    """The catalogue's real write tools: the engine reads their metadata and arguments, never runs them."""
    return [spec for spec in build_catalogue() if not spec.read_only]


@pytest.fixture
def specs() -> dict[str, ToolSpec]:
    return {s.name: s for s in write_specs()}


@pytest.fixture
def policy(specs: dict[str, ToolSpec]) -> Policy:
    return load_policy(specs.values())


@pytest.fixture
def state(database: Database) -> StateStore:
    store = StateStore(database)
    store.upgrade()
    return store


@pytest.fixture
def approvals(state: StateStore) -> Approvals:
    repo = Approvals(state.db)
    repo.upgrade()
    return repo


# C-1 admin of A-1 (no open invoices), C-2 member of A-1, C-3 a consumer, C-4 admin of A-2 (an open invoice).
_SEED: list[tuple[str, list[tuple[Any, ...]]]] = [
    ("INSERT INTO customers (id, name, email, phone, address_line1, address_line2, city, postcode, country,"
     " date_of_birth, card_brand, card_last4, pref_marketing, pref_product_updates, pref_newsletter, created_at)"
     " VALUES (?, ?, ?, '+442079460018', '1 High St', NULL, 'London', 'N1 1AA', 'GB', '1980-01-01', 'visa',"
     " '4242', 0, 1, 0, 0)",
     [("C-1", "Ada", "ada@example.com"), ("C-2", "Bo", "bo@example.com"), ("C-3", "Cy", "cy@example.com"),
      ("C-4", "Di", "di@example.com")]),
    ("INSERT INTO accounts (id, name, currency, credit_minor, created_at) VALUES (?, ?, 'EUR', 0, 0)",
     [("A-1", "Northwind"), ("A-2", "Contoso")]),
    ("INSERT INTO account_members (account_id, customer_id, role) VALUES (?, ?, ?)",
     [("A-1", "C-1", "admin"), ("A-1", "C-2", "member"), ("A-2", "C-4", "admin")]),
    ("INSERT INTO subscriptions (id, customer_id, account_id, plan, status, price_minor, currency, billing_period,"
     " started_at, renews_at, cancelled_at, cancelled_by, cancel_reason)"
     " VALUES (?, ?, ?, 'Team plan', 'active', 4900, 'EUR', 'month', 0, NULL, NULL, NULL, NULL)",
     [("S-1", "C-1", "A-1"), ("S-2", "C-4", "A-2")]),
    ("INSERT INTO invoices (id, customer_id, account_id, subscription_id, amount_minor, currency, status,"
     " issued_at, due_at, paid_at) VALUES (?, ?, ?, ?, 4900, 'EUR', ?, 0, 0, NULL)",
     [("I-1", "C-4", "A-2", "S-2", "open"), ("I-2", "C-1", "A-1", "S-1", "paid")]),
    ("INSERT INTO orders (id, customer_id, status, summary, total_minor, refunded_minor, currency, ship_line1,"
     " ship_line2, ship_city, ship_postcode, ship_country, placed_at, shipped_at, delivered_at)"
     " VALUES (?, ?, 'delivered', 'Kettle', 200000, 0, 'EUR', '1 High St', NULL, 'London', 'N1 1AA', 'GB',"
     " 0, NULL, NULL)",
     [("O-1", "C-3"), ("O-2", "C-4"), ("O-3", "C-3")]),
]


@pytest.fixture
def backend(database: Database) -> SqlSupportBackend:
    support = SqlSupportBackend(database, clock=lambda: NOW)
    support.upgrade()

    def seed(tx: Any) -> None:
        for sql, rows in _SEED:
            tx.executemany(sql, rows)

    database.write_sync(seed)
    return support


@pytest.fixture
def engine(policy: Policy, specs: dict[str, ToolSpec], state: StateStore) -> PolicyEngine:
    return PolicyEngine(policy, specs.values(), state)


SessionFactory = Callable[..., Session]


@pytest.fixture
def session() -> SessionFactory:
    def make(sid: str = "sid-1", sub: str = "agent-7", *, max_refund: str | None = None,
             scopes: frozenset[str] | None = None) -> Session:
        return Session(sub=sub, sid=sid, jti=f"jti-{sid}", client_id="test", issued_at=NOW - 60,
                       expires_at=NOW + 3600, scopes=scopes if scopes is not None else frozenset({
                           "refunds:write", "credits:write", "subscriptions:cancel", "address:write",
                           "password:reset", "identity:verify", "notes:write"}),
                       max_refund=None if max_refund is None else Decimal(max_refund))

    return make


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def confirmations(signing_key: Ed25519PrivateKey, state: StateStore) -> Confirmations:
    return Confirmations(signing_key=signing_key, kid="k1", verify_keys={"k1": signing_key.public_key()},
                         redemptions=state.redemptions, issuer="deskgate", ttl=120)


@pytest.fixture
def binding() -> Callable[..., Binding]:
    def make(args_digest: str, *, sid: str = "sid-1", sub: str = "agent-7", tool: str = "issue_refund",
             manifest_hash: str = "m" * 64, policy_version: str = "p" * 64) -> Binding:
        return Binding(sid, sub, tool, args_digest, manifest_hash, policy_version)

    return make
