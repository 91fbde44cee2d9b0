"""Fixtures for the backend and the tools: a seeded demo backend and a real state store, per engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from deskgate.scopes.catalogue import SCOPES
from deskgate.scopes.session import Session
from deskgate.server.redaction.redactor import redact_text
from deskgate.server.store.db import Database
from deskgate.server.store.state import StateStore
from deskgate.tools.backend.seed import EPOCH, seed_demo
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.context import ToolContext

NOW = EPOCH + 3600
BULK_CUSTOMERS = 40


@pytest.fixture
def backend(database: Database) -> SqlSupportBackend:
    """The demo backend with its scenario objects and a small random bulk."""
    seed_demo(database, customers=BULK_CUSTOMERS, seed=7)
    return SqlSupportBackend(database)


@pytest.fixture
def state(database: Database) -> StateStore:
    store = StateStore(database)
    store.upgrade()
    return store


CtxFactory = Callable[..., ToolContext]


@pytest.fixture
def make_ctx(backend: SqlSupportBackend, state: StateStore) -> CtxFactory:
    """A tool context as the guard chain would build it: one session, one clock reading."""

    def make(*, now: int = NOW, sid: str = "sid-1", policy_view: dict[str, Any] | None = None,
             undo_windows: dict[str, int] | None = None) -> ToolContext:
        session = Session(sub="agent-7", sid=sid, jti=f"jti-{sid}", client_id="tests", scopes=frozenset(SCOPES),
                          expires_at=now + 1800, issued_at=now)
        return ToolContext(backend=backend, session=session, state=state, request_id="req-1", now=now,
                           policy_view=lambda: policy_view if policy_view is not None else {},
                           mask_text=redact_text,
                           undo_windows=undo_windows or {},
                           may_see=lambda sid, sub: sid == session.sid)  # the default policy: its own only

    return make


@pytest.fixture
def scalar(database: Database) -> Callable[..., Any]:
    """One value read straight from the database, to check a side effect independently of the backend."""

    def read(sql: str, *params: Any) -> Any:
        row = database.read_sync(lambda tx: tx.one(sql, params))
        return None if row is None else row[0]

    return read


_TABLES = ("customers", "accounts", "account_members", "subscriptions", "invoices", "orders", "refunds",
           "account_credits", "tickets", "ticket_messages", "ticket_notes", "outbox", "handoffs", "actions",
           "id_sequences", "backend_meta")


def _dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Sorted in Python, not SQL: the two engines may collate text differently."""
    return {t: sorted(db.read_sync(lambda tx, t=t: tx.query(f"SELECT * FROM {t}")), key=repr) for t in _TABLES}


@pytest.fixture
def dump() -> Callable[[Database], dict[str, list[tuple[Any, ...]]]]:
    """Every row of every backend table of a database."""
    return _dump


@pytest.fixture
def snapshot(database: Database) -> Callable[[], dict[str, list[tuple[Any, ...]]]]:
    """Every row of every backend table of `database`, e.g. to prove a refused call changed nothing."""
    return lambda: _dump(database)
