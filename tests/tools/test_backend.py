"""The demo support backend on both engines: lookups, ownership, domain rules and atomic writes."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from deskgate.server.errors import DomainError, NotFound
from deskgate.server.store.db import SqliteDatabase, Tx
from deskgate.tools.backend.seed import DEMO, EPOCH, seed_demo
from deskgate.tools.backend.sql import SqlSupportBackend, minor_units, money
from deskgate.tools.models import ActionOwner, Address

pytestmark = pytest.mark.anyio
NOW = EPOCH + 3600
T = TypeVar("T")


def test_money_converts_between_decimals_and_minor_units_exactly() -> None:
    """42.10 is 4210 cents and back, with both decimal places kept."""
    assert minor_units(Decimal("42.10")) == 4210
    assert money(4210) == Decimal("42.10")
    assert str(money(5)) == "0.05"


async def test_upgrade_is_idempotent(backend: SqlSupportBackend) -> None:
    """Upgrading an up-to-date backend applies nothing and keeps the id sequences."""
    assert backend.upgrade() == []
    assert (await backend.get_order(DEMO.delivered_order)).order_id == DEMO.delivered_order


async def test_customers_are_found_by_email_phone_and_order(backend: SqlSupportBackend) -> None:
    """Each criterion leads to the scenario customer; an unknown value finds nobody."""
    for by, value in (("email", DEMO.customer_email), ("phone", DEMO.customer_phone),
                      ("order_id", DEMO.pending_order)):
        matches = await backend.find_customers(by, value)  # type: ignore[arg-type]
        assert [m.customer_id for m in matches] == [DEMO.customer_id]
    assert await backend.find_customers("email", "nobody@example.com") == []


async def test_a_customer_profile_lists_memberships_and_hides_verification_secrets(
        backend: SqlSupportBackend) -> None:
    """The admin sees their account and role; the card digits are not part of the record."""
    admin = await backend.get_customer(DEMO.account_admin)
    assert [(m.account_id, m.role) for m in admin.accounts] == [(DEMO.account_id, "admin")]
    assert "card_last4" not in admin.model_dump()
    assert DEMO.card_last4 not in (await backend.get_customer(DEMO.customer_id)).model_dump_json()


async def test_unknown_ids_raise_not_found_naming_the_id(backend: SqlSupportBackend) -> None:
    """Every lookup of a missing object says which id was not found."""
    lookups = [backend.get_customer("C-999999"), backend.get_order("O-999999"), backend.get_ticket("T-999999"),
               backend.get_subscription("S-999999"), backend.get_account("A-999999"),
               backend.list_orders("C-999999"), backend.list_tickets("C-999999"),
               backend.list_invoices(account_id="A-999999"), backend.get_action("ACT-999999"),
               backend.get_handoff("H-999999")]
    for lookup in lookups:
        with pytest.raises(NotFound, match="999999 not found"):
            await lookup


async def test_owners_follow_the_object_to_its_customers(backend: SqlSupportBackend) -> None:
    """A customer owns itself; orders and tickets their customer; accounts and their subscriptions the members."""
    members = frozenset({DEMO.account_admin, DEMO.account_member})
    assert await backend.owners("customer_id", DEMO.customer_id) == {DEMO.customer_id}
    assert await backend.owners("order_id", DEMO.delivered_order) == {DEMO.customer_id}
    assert await backend.owners("ticket_id", DEMO.pii_ticket) == {DEMO.customer_id}
    assert await backend.owners("account_id", DEMO.account_id) == members
    assert await backend.owners("subscription_id", DEMO.subscription_id) == members
    assert await backend.owners("invoice_id", DEMO.open_invoice) == {DEMO.invoice_account_admin}
    assert await backend.owners("order_id", "O-999999") == frozenset()


async def test_customer_and_account_of_an_object_are_resolved(backend: SqlSupportBackend) -> None:
    """The gates' lookups: single customer, B2B account (also via a member), role and open invoices."""
    assert await backend.customer_for("order_id", DEMO.shipped_order) == DEMO.customer_id
    assert await backend.customer_for("subscription_id", DEMO.subscription_id) == DEMO.account_admin
    assert await backend.customer_for("account_id", DEMO.account_id) is None
    assert await backend.account_for("subscription_id", DEMO.subscription_id) == DEMO.account_id
    assert await backend.account_for("customer_id", DEMO.account_member) == DEMO.account_id
    assert await backend.account_for("account_id", DEMO.invoice_account_id) == DEMO.invoice_account_id
    assert await backend.account_for("customer_id", DEMO.customer_id) is None
    assert await backend.account_for("account_id", "A-999999") is None
    assert await backend.member_role(DEMO.account_id, DEMO.account_admin) == "admin"
    assert await backend.member_role(DEMO.account_id, DEMO.account_member) == "member"
    assert await backend.member_role(DEMO.account_id, DEMO.customer_id) is None
    assert await backend.open_invoice_count(DEMO.invoice_account_id) == 1
    assert await backend.open_invoice_count(DEMO.account_id) == 0


async def test_an_unknown_object_kind_is_a_domain_error(backend: SqlSupportBackend) -> None:
    """The lookups refuse a kind outside the vocabulary instead of guessing."""
    with pytest.raises(DomainError) as refused:
        await backend.owners("refund_id", "R-1")  # type: ignore[arg-type]
    assert refused.value.code == "unknown_object_kind"


async def test_identity_checks_compare_the_secret_on_file(backend: SqlSupportBackend) -> None:
    """Right card digits or postcode (any spacing or case) pass; anything else fails."""
    assert await backend.check_identity(DEMO.customer_id, "card_last4", DEMO.card_last4)
    assert await backend.check_identity(DEMO.invoice_account_admin, "postcode", "sw1a1aa")
    assert not await backend.check_identity(DEMO.customer_id, "card_last4", "4243")
    assert not await backend.check_identity(DEMO.customer_id, "postcode", "10116")


async def test_ids_are_handed_out_in_sequence_above_the_seed(backend: SqlSupportBackend, scalar) -> None:
    """New objects get fresh prefixed ids; seeded ids are never reused."""
    first = await backend.send_customer_email(DEMO.customer_id, "confirmation_code", "Your code", "Code 123456",
                                              now=NOW)
    second = await backend.send_customer_email(DEMO.customer_id, "confirmation_code", "Your code", "Code 654321",
                                               now=NOW)
    assert (first, second) == ("M-1", "M-2")
    refund = await backend.issue_refund(DEMO.delivered_order, Decimal("1.00"), "damaged_item", actor="a", now=NOW)
    assert int(refund.refund_id.removeprefix("R-")) >= 1000
    assert scalar("SELECT to_address FROM outbox WHERE id = ?", "M-2") == DEMO.customer_email


async def test_customer_emails_are_validated_before_anything_is_queued(backend: SqlSupportBackend, snapshot) -> None:
    """A malformed kind or an empty body is refused and the outbox stays as it was."""
    before = snapshot()
    for kind, subject, body in (("Bad Kind!", "s", "b"), ("confirmation_code", "", "b"),
                                ("confirmation_code", "s", "")):
        with pytest.raises(DomainError):
            await backend.send_customer_email(DEMO.customer_id, kind, subject, body, now=NOW)
    with pytest.raises(NotFound):
        await backend.send_customer_email("C-999999", "confirmation_code", "s", "b", now=NOW)
    assert snapshot() == before


async def test_concurrent_refunds_never_pay_out_more_than_the_order_total(backend: SqlSupportBackend, scalar) -> None:
    """Ten simultaneous 50.00 refunds on a 129.90 order: exactly two succeed, the rest are refused."""
    outcomes: list[str] = []

    async def refund() -> None:
        try:
            await backend.issue_refund(DEMO.delivered_order, Decimal("50.00"), "damaged_item", actor="a", now=NOW)
            outcomes.append("ok")
        except DomainError as refused:
            outcomes.append(refused.code)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(refund)
    assert outcomes.count("ok") == 2
    assert set(outcomes) == {"ok", "amount_above_refundable"}
    assert scalar("SELECT refunded_minor FROM orders WHERE id = ?", DEMO.delivered_order) == 10000
    assert scalar("SELECT COUNT(*) FROM refunds WHERE order_id = ?", DEMO.delivered_order) == 2


async def test_a_handoff_on_a_ticket_marks_it_escalated(backend: SqlSupportBackend, scalar) -> None:
    """The policy engine's escalation: a queued hand-off, a system message, the ticket escalated."""
    handoff_id = await backend.create_handoff(customer_id=None, ticket_id=DEMO.cancel_ticket, summary="Wants to cancel",
                                              tried="Nothing", proposed_action="Call the account admin",
                                              priority="high", source="policy", actor="policy", now=NOW)
    handoff = await backend.get_handoff(handoff_id)
    assert (handoff.customer_id, handoff.status, handoff.source) == (DEMO.account_member, "queued", "policy")
    ticket = await backend.get_ticket(DEMO.cancel_ticket)
    assert ticket.status == "escalated"
    assert ticket.messages[-1].author == "system" and handoff_id in ticket.messages[-1].body


async def test_policy_can_hand_off_an_account_level_call_without_a_customer(backend: SqlSupportBackend) -> None:
    """A credit escalated by policy names no customer or ticket; the hand-off is still queued."""
    handoff_id = await backend.create_handoff(customer_id=None, ticket_id=None, summary="Credit 900 EUR on A-1",
                                              tried="apply_account_credit", proposed_action="Review the credit",
                                              priority="high", source="policy", actor="policy", now=NOW)
    handoff = await backend.get_handoff(handoff_id)
    assert (handoff.customer_id, handoff.ticket_id, handoff.status) == (None, None, "queued")


async def test_a_handoff_needs_a_consistent_customer_and_ticket(backend: SqlSupportBackend, snapshot) -> None:
    """An unknown customer, or a ticket of another customer, is refused without a trace."""
    before = snapshot()
    with pytest.raises(NotFound):
        await backend.create_handoff(customer_id="C-999999", ticket_id=None, summary="s", tried="t",
                                     proposed_action="p", priority="low", source="agent", actor="a", now=NOW)
    with pytest.raises(DomainError) as mismatch:
        await backend.create_handoff(customer_id=DEMO.account_admin, ticket_id=DEMO.pii_ticket, summary="s",
                                     tried="t", proposed_action="p", priority="low", source="agent", actor="a",
                                     now=NOW)
    assert mismatch.value.code == "ticket_mismatch"
    assert snapshot() == before


async def test_an_action_cannot_be_undone_by_naming_another_owner(backend: SqlSupportBackend, snapshot) -> None:
    """Someone else's action looks exactly like a missing one, and nothing is reversed."""
    address = Address(line1="Torstrasse 1", city="Berlin", postcode="10119", country="DE")
    changed = await backend.change_shipping_address(DEMO.pending_order, address, actor="a", now=NOW,
                                                    reversible_until=NOW + 60)
    before = snapshot()
    with pytest.raises(NotFound, match=f"action {changed.action_id} not found"):
        await backend.undo_action(changed.action_id, ActionOwner(customer_id=DEMO.account_admin), actor="a", now=NOW)
    assert snapshot() == before


class _Recorder:
    """A transaction that notes every statement it runs, with its parameters."""

    def __init__(self, tx: Tx, log: list[tuple[str, tuple[Any, ...]]]) -> None:
        self._tx, self._log = tx, log

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._tx, name)

        def call(sql: str, params: Any = ()) -> Any:
            if name != "executemany":
                self._log.append((sql, tuple(params)))
            return method(sql, params)

        return call


class _RecordingSqlite(SqliteDatabase):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.log: list[tuple[str, tuple[Any, ...]]] = []

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        return super().read_sync(lambda tx: fn(_Recorder(tx, self.log)))  # type: ignore[arg-type]


async def test_every_lookup_the_tools_and_the_chain_make_uses_an_index(tmp_path: Path) -> None:
    """No read statement scans a table: each stays O(log n) from a thousand customers to a million."""
    db = _RecordingSqlite(tmp_path / "plans.db")
    try:
        seed_demo(db, customers=200)
        backend = SqlSupportBackend(db)
        handoff = await backend.create_handoff(customer_id=DEMO.customer_id, ticket_id=None, summary="s", tried="t",
                                               proposed_action="p", priority="low", source="agent", actor="a",
                                               now=NOW)
        changed = await backend.update_email_preferences(DEMO.customer_id, {"marketing": True}, actor="a", now=NOW,
                                                         reversible_until=NOW + 60)
        db.log.clear()
        for by, value in (("email", DEMO.customer_email), ("phone", DEMO.customer_phone),
                          ("order_id", DEMO.pending_order)):
            await backend.find_customers(by, value)  # type: ignore[arg-type]
        await backend.get_customer(DEMO.account_admin)
        await backend.get_account(DEMO.account_id)
        await backend.list_orders(DEMO.customer_id)
        await backend.list_orders(DEMO.customer_id, status="pending")
        await backend.get_subscription(DEMO.subscription_id)
        await backend.list_invoices(customer_id=DEMO.account_admin)
        await backend.list_invoices(account_id=DEMO.invoice_account_id, status="open")
        await backend.get_ticket(DEMO.pii_ticket)
        await backend.list_tickets(DEMO.customer_id, status="open")
        await backend.refund_eligibility(DEMO.delivered_order)
        await backend.refund_destination(DEMO.delivered_order)
        await backend.get_action(changed.action_id)
        await backend.get_handoff(handoff)
        await backend.check_identity(DEMO.customer_id, "postcode", DEMO.postcode)
        for kind, object_id in (("customer_id", DEMO.account_member), ("account_id", DEMO.account_id),
                                ("order_id", DEMO.delivered_order), ("ticket_id", DEMO.pii_ticket),
                                ("subscription_id", DEMO.subscription_id), ("invoice_id", DEMO.open_invoice)):
            await backend.owners(kind, object_id)  # type: ignore[arg-type]
            await backend.customer_for(kind, object_id)  # type: ignore[arg-type]
            await backend.account_for(kind, object_id)  # type: ignore[arg-type]
        await backend.member_role(DEMO.account_id, DEMO.account_admin)
        await backend.open_invoice_count(DEMO.invoice_account_id)
        recorded = list(db.log)
        assert len(recorded) > 30
        for sql, params in recorded:
            plan = db.read_sync(lambda tx, sql=sql, params=params: tx.query("EXPLAIN QUERY PLAN " + sql, params))
            scans = [row[-1] for row in plan if str(row[-1]).startswith("SCAN")]
            assert scans == [], f"{sql} -> {scans}"
    finally:
        db.close()
