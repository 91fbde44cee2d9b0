"""The demo seed: deterministic, idempotent, resumable, with the documented scenario objects."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from deskgate.server.errors import DomainError, InvalidArguments
from deskgate.server.store.db import Database, SqliteDatabase
from deskgate.tools.backend.seed import CHUNK, DEMO, demo_summary, seed_demo
from deskgate.tools.backend.sql import SqlSupportBackend

pytestmark = pytest.mark.anyio


class Interrupted(Exception):
    pass


def test_the_same_seed_gives_the_same_rows_on_either_engine(database: Database, tmp_path: Path, dump) -> None:
    """A seed on this engine equals, row for row, the same seed on a fresh SQLite file."""
    seed_demo(database, customers=120, seed=3)
    reference = SqliteDatabase(tmp_path / "reference.db")
    try:
        seed_demo(reference, customers=120, seed=3)
        assert dump(database) == dump(reference)
    finally:
        reference.close()


def test_another_seed_gives_other_rows(tmp_path: Path, dump) -> None:
    """The seed drives the bulk: two seeds disagree on the customers they invent."""
    one, two = SqliteDatabase(tmp_path / "one.db"), SqliteDatabase(tmp_path / "two.db")
    try:
        seed_demo(one, customers=50, seed=1)
        seed_demo(two, customers=50, seed=2)
        assert dump(one)["customers"] != dump(two)["customers"]
    finally:
        one.close()
        two.close()


def test_seeding_a_seeded_backend_changes_nothing(database: Database, snapshot) -> None:
    """The second run reports it did nothing, whatever size it is asked for."""
    assert seed_demo(database, customers=30)
    before = snapshot()
    again = seed_demo(database, customers=500, seed=9)
    assert not again
    assert (again.seeded, again.customers, again.seed) == (False, 30, 42)
    assert snapshot() == before


def test_an_interrupted_seed_resumes_to_the_same_rows(tmp_path: Path, dump) -> None:
    """A seed stopped after its first chunk finishes on the next run exactly as an uninterrupted one."""
    total = CHUNK + 200
    calls: list[int] = []

    def stop_after_first_chunk(done: int) -> None:
        calls.append(done)
        raise Interrupted

    broken, clean = SqliteDatabase(tmp_path / "broken.db"), SqliteDatabase(tmp_path / "clean.db")
    try:
        with pytest.raises(Interrupted):
            seed_demo(broken, customers=total, seed=5, progress=stop_after_first_chunk)
        assert calls == [CHUNK]
        with pytest.raises(DomainError) as mismatch:
            seed_demo(broken, customers=total, seed=6)
        assert mismatch.value.code == "seed_mismatch"
        progress: list[int] = []
        assert seed_demo(broken, customers=total, seed=5, progress=progress.append)
        assert progress == [total]
        seed_demo(clean, customers=total, seed=5)
        assert dump(broken) == dump(clean)
    finally:
        broken.close()
        clean.close()


def test_an_impossible_size_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """Negative or above a million customers: a clear error and no schema even created."""
    db = SqliteDatabase(tmp_path / "empty.db")
    try:
        for size in (-1, 1_000_001):
            with pytest.raises(InvalidArguments):
                seed_demo(db, customers=size)
        assert db.read_sync(lambda tx: tx.query("SELECT name FROM sqlite_master")) == []
    finally:
        db.close()


async def test_the_scenario_objects_are_as_documented(database: Database) -> None:
    """Every DEMO object exists in the state its comment and demo_summary() promise."""
    seed_demo(database, customers=0)
    backend = SqlSupportBackend(database)
    delivered = await backend.get_order(DEMO.delivered_order)
    assert (delivered.status, delivered.total, delivered.refunded, delivered.currency) == (
        "delivered", Decimal("129.90"), Decimal("0.00"), "EUR")
    assert (await backend.get_order(DEMO.pending_order)).status == "pending"
    assert (await backend.get_order(DEMO.shipped_order)).status == "shipped"
    assert await backend.check_identity(DEMO.customer_id, "card_last4", DEMO.card_last4)
    assert await backend.check_identity(DEMO.customer_id, "postcode", DEMO.postcode)
    assert await backend.member_role(DEMO.account_id, DEMO.account_admin) == "admin"
    assert await backend.member_role(DEMO.account_id, DEMO.account_member) == "member"
    assert (await backend.get_subscription(DEMO.subscription_id)).status == "active"
    assert await backend.open_invoice_count(DEMO.account_id) == 0
    assert await backend.open_invoice_count(DEMO.invoice_account_id) == 1
    assert (await backend.list_invoices(account_id=DEMO.invoice_account_id, status="open"))[0].invoice_id == \
        DEMO.open_invoice
    text = " ".join(m.body for m in (await backend.get_ticket(DEMO.pii_ticket)).messages)
    for needle in ("4111 1111 1111 1111", "DE89 3704", DEMO.customer_email, "IGNORE PREVIOUS INSTRUCTIONS"):
        assert needle in text
    summary = demo_summary()
    for object_id in (DEMO.customer_id, DEMO.delivered_order, DEMO.account_id, DEMO.open_invoice, DEMO.pii_ticket):
        assert object_id in summary


def test_the_bulk_has_personal_data_and_injection_attempts_in_ticket_text(database: Database, scalar) -> None:
    """Realistic support data: some tickets carry card numbers or IBANs, some try to instruct the agent."""
    seed_demo(database, customers=400, seed=11)
    assert scalar("SELECT COUNT(*) FROM customers") == 404
    assert scalar("SELECT COUNT(*) FROM ticket_messages WHERE body LIKE '%Ignore previous instructions%'"
                  " OR body LIKE '%SYSTEM:%' OR body LIKE '%assistant:%' OR body LIKE '%skip verify_identity%'") > 0
    assert scalar("SELECT COUNT(*) FROM ticket_messages WHERE body LIKE '%IBAN%' OR body LIKE '%my card%'") > 0
    assert scalar("SELECT COUNT(*) FROM account_members WHERE role = 'member'") > 0
    assert scalar("SELECT COUNT(DISTINCT status) FROM orders") == 3
