"""The contract every adapter passes: the same behaviours on the demo, on Stripe and on django-helpdesk.

An adapter for another system (see docs/CONNECTORS.md) is done when it passes this file with a
`Subject` of its own. Each test speaks the domain interface (`BillingBackend`, `TicketsBackend`)
directly, with the demo's scenario objects under whatever ids the system gave them, and checks
the system's own state - a refused call changes nothing there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from deskgate.server.errors import DomainError, NotFound
from deskgate.tools.backend.billing import BillingBackend
from deskgate.tools.backend.kinds import Intent
from deskgate.tools.backend.tickets import TicketsBackend
from tests.backends.conftest import Helpdesk, LocalStripe, helpdesk_settings, stripe_settings
from tests.e2e.conftest import deployed

pytestmark = pytest.mark.anyio


@dataclass
class Subject:
    """One adapter under test: the domain backend, the demo's ids as the system names them, and a view of
    the system's own state (to prove a refusal changed nothing)."""

    billing: BillingBackend | None
    tickets: TicketsBackend | None
    ids: dict[str, str]
    state: Callable[[], Any]

    def id(self, demo_id: str) -> str:
        return self.ids.get(demo_id, demo_id)


@asynccontextmanager
async def subject_on(kind: str, request: pytest.FixtureRequest, home: Any,
                     monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Subject]:
    if kind == "demo":
        async with deployed(home, None) as d:
            demo = d.runtime.demo
            yield Subject(demo, demo, {}, lambda: d.rows(
                "SELECT 'r', id, amount_minor FROM refunds WHERE order_id IN ('O-1', 'O-2')"
                " UNION ALL SELECT 's', id, status FROM subscriptions WHERE id IN ('S-1', 'S-2')"
                " UNION ALL SELECT 'n', id, ticket_id FROM ticket_notes UNION ALL SELECT 't', id, status FROM tickets"
                " UNION ALL SELECT 'm', ticket_id || '/' || seq, body FROM ticket_messages"
                " ORDER BY 1, 2"))
    elif kind == "stripe":
        from deskgate.tools.backend.stripe_seed import seed_stripe, stripe_ids

        stripe: LocalStripe = request.getfixturevalue("localstripe")
        monkeypatch.setenv("STRIPE_API_KEY", "sk_test_deskgate_contract")
        async with deployed(home, None, stripe_settings(stripe.url)) as d:
            seed_stripe(stripe.client(), d.runtime.backend_db)
            ids = stripe_ids(d.runtime.backend_db)
            api = stripe.client().v1

            def state() -> Any:
                pi = d.rows("SELECT reference FROM order_payments WHERE order_id = 'O-1'")[0][0]
                refunds = sorted((r.id, r.amount) for r in api.refunds.list(params={"payment_intent": pi}).data)
                return refunds, [api.subscriptions.retrieve(ids[s]).status for s in ("S-1", "S-2")]

            yield Subject(d.runtime.backend.domains.billing, None, ids, state)  # type: ignore[attr-defined]
    else:
        from deskgate.tools.backend.helpdesk_seed import helpdesk_ids, seed_helpdesk

        hd: Helpdesk = request.getfixturevalue("helpdesk")
        monkeypatch.setenv("HELPDESK_TOKEN", hd.token)
        async with deployed(home, None, helpdesk_settings(hd)) as d:
            seed_helpdesk(hd.url, hd.token, hd.queue, d.runtime.backend_db)
            ids = helpdesk_ids(d.runtime.backend_db)

            def state() -> Any:
                with hd.http() as http:
                    raw = [http.get(f"tickets/{ids[t]}/").json() for t in ("T-1", "T-2")]
                return [(r["queue"], r["status"], r["on_hold"], r["title"], len(r["followup_set"])) for r in raw]

            yield Subject(None, d.runtime.backend.domains.tickets, ids, state)  # type: ignore[attr-defined]


@pytest.fixture(params=["demo", "stripe"])
async def billing_subject(request: pytest.FixtureRequest, home: Any, monkeypatch: pytest.MonkeyPatch
                          ) -> AsyncIterator[Subject]:
    """Every billing adapter."""
    async with subject_on(request.param, request, home, monkeypatch) as subject:
        yield subject


@pytest.fixture(params=["demo", "helpdesk"])
async def tickets_subject(request: pytest.FixtureRequest, home: Any, monkeypatch: pytest.MonkeyPatch
                          ) -> AsyncIterator[Subject]:
    """Every tickets adapter."""
    async with subject_on(request.param, request, home, monkeypatch) as subject:
        yield subject


def billing_of(subject: Subject) -> BillingBackend:
    assert subject.billing is not None
    return subject.billing


def tickets_of(subject: Subject) -> TicketsBackend:
    assert subject.tickets is not None
    return subject.tickets


# --- billing ------------------------------------------------------------------------------------

async def test_a_refund_above_what_is_refundable_is_refused_and_changes_nothing(
        billing_subject: Subject) -> None:
    subject = billing_subject
    billing = billing_of(subject)
    before = subject.state()
    with pytest.raises(DomainError) as error:
        await billing.issue_refund("O-1", Decimal("129.91"), "damaged_item", actor="a", now=1)
    assert error.value.code == "amount_above_refundable"
    assert subject.state() == before


async def test_the_same_intent_refunds_once(
        billing_subject: Subject) -> None:
    subject = billing_subject
    billing = billing_of(subject)
    intent = Intent(key="contract-intent-" + "0" * 48, request_id="req-contract", seq=7)
    first = await billing.issue_refund("O-1", Decimal("20.00"), "damaged_item", actor="a", now=1, intent=intent)
    after_first = subject.state()
    again = await billing.issue_refund("O-1", Decimal("20.00"), "damaged_item", actor="a", now=2, intent=intent)
    assert again.refund_id == first.refund_id and subject.state() == after_first
    assert (first.amount, first.refundable_remaining) == (Decimal("20.00"), Decimal("109.90"))
    eligibility = await billing.refund_eligibility("O-1")
    assert (eligibility.refunded, eligibility.refundable_remaining) == (Decimal("20.00"), Decimal("109.90"))


async def test_unknown_billing_objects_are_not_found_and_owned_by_nobody(
        billing_subject: Subject) -> None:
    subject = billing_subject
    billing = billing_of(subject)
    for missing in ("S-999999", "sub_doesnotexist00"):
        with pytest.raises(NotFound):
            await billing.get_subscription(missing)
        assert await billing.owners("subscription_id", missing) == frozenset()
        assert await billing.customer_for("subscription_id", missing) is None


async def test_a_subscription_is_owned_by_its_customer_and_its_accounts_members(
        billing_subject: Subject) -> None:
    subject = billing_subject
    billing = billing_of(subject)
    sub = subject.id("S-1")
    assert await billing.owners("subscription_id", sub) == frozenset({"C-2", "C-3"})
    assert await billing.customer_for("subscription_id", sub) == "C-2"
    assert await billing.account_for("subscription_id", sub) == "A-1"
    assert (await billing.open_invoice_count("A-1"), await billing.open_invoice_count("A-2")) == (0, 1)


async def test_a_cancellation_by_a_stranger_or_a_second_one_is_refused_and_changes_nothing(
        billing_subject: Subject) -> None:
    subject = billing_subject
    billing = billing_of(subject)
    sub = subject.id("S-1")
    before = subject.state()
    with pytest.raises(DomainError) as error:
        await billing.cancel_subscription(sub, "C-1", "not_using", actor="a", now=1)
    assert error.value.code == "requester_not_related" and subject.state() == before
    cancelled = await billing.cancel_subscription(sub, "C-3", "not_using", actor="a", now=1)
    assert cancelled.status == "cancelled"
    after = subject.state()
    with pytest.raises(DomainError) as again:
        await billing.cancel_subscription(sub, "C-2", "not_using", actor="a", now=2)
    assert again.value.code == "not_active" and subject.state() == after


# --- tickets ------------------------------------------------------------------------------------

async def test_a_ticket_is_owned_by_its_customer_and_an_unknown_one_by_nobody(
        tickets_subject: Subject) -> None:
    subject = tickets_subject
    tickets = tickets_of(subject)
    assert await tickets.owners("ticket_id", subject.id("T-1")) == frozenset({"C-1"})
    assert await tickets.customer_for("ticket_id", subject.id("T-2")) == "C-3"
    assert await tickets.owners("ticket_id", "999999") == frozenset()
    with pytest.raises(NotFound):
        await tickets.get_ticket("999999")


async def test_a_note_on_an_unknown_ticket_or_a_mismatched_hand_off_is_refused_and_changes_nothing(
        tickets_subject: Subject) -> None:
    subject = tickets_subject
    tickets = tickets_of(subject)
    before = subject.state()
    with pytest.raises(NotFound):
        await tickets.add_ticket_note("999999", "hello", actor="a", now=1)
    with pytest.raises(DomainError) as error:
        await tickets.create_handoff(customer_id="C-1", ticket_id=subject.id("T-2"), summary="s", tried="t",
                                     proposed_action="p", priority="normal", source="agent", actor="a", now=1)
    assert error.value.code == "ticket_mismatch"
    assert subject.state() == before


async def test_a_hand_off_escalates_the_ticket_and_is_queued(
        tickets_subject: Subject) -> None:
    subject = tickets_subject
    tickets = tickets_of(subject)
    ticket = subject.id("T-2")
    handoff_id = await tickets.create_handoff(customer_id=None, ticket_id=ticket, summary="Wants a cancellation",
                                              tried="Explained the rule", proposed_action="Call the admin",
                                              priority="high", source="agent", actor="a", now=1)
    handoff = await tickets.get_handoff(handoff_id)
    assert (handoff.ticket_id, handoff.customer_id, handoff.status, handoff.priority) == (ticket, "C-3", "queued",
                                                                                         "high")
    assert (await tickets.get_ticket(ticket)).status == "escalated"
    note = await tickets.add_ticket_note(ticket, "Called; no answer.", actor="agent-9", now=2)
    [written] = [n for n in (await tickets.get_ticket(ticket)).notes if n.note_id == note.note_id]
    assert written.author == "agent-9" and "Called; no answer." in written.body


async def test_a_reply_is_a_message_the_customer_reads_and_an_unknown_ticket_takes_none(
        tickets_subject: Subject) -> None:
    subject = tickets_subject
    tickets = tickets_of(subject)
    ticket = subject.id("T-1")
    before = subject.state()
    with pytest.raises(NotFound):
        await tickets.reply_to_customer("999999", "Hello", actor="a", now=1)
    assert subject.state() == before
    posted = await tickets.reply_to_customer(ticket, "Your refund is on its way.", actor="agent-9", now=2)
    assert (posted.ticket_id, posted.customer_id, posted.body) == (ticket, "C-1", "Your refund is on its way.")
    read = await tickets.get_ticket(ticket)
    assert (read.messages[-1].author, read.messages[-1].body) == ("agent", "Your refund is on its way.")
    assert not any("Your refund is on its way." in n.body for n in read.notes)  # a reply is not a note
    assert read.subject == "Headphones broken - refund please"  # a follow-up never renames the ticket


async def test_a_ticket_goes_pending_then_solved_and_then_takes_no_reply_or_pending(
        tickets_subject: Subject) -> None:
    subject = tickets_subject
    tickets = tickets_of(subject)
    ticket = subject.id("T-1")
    pending = await tickets.set_ticket_status(ticket, "pending", actor="a", now=1)
    assert (pending.previous_status, pending.status) == ("open", "pending")
    assert (await tickets.get_ticket(ticket)).status == "pending"
    unchanged = subject.state()
    again = await tickets.set_ticket_status(ticket, "pending", actor="a", now=2)
    assert (again.previous_status, again.status) == ("pending", "pending") and subject.state() == unchanged
    solved = await tickets.set_ticket_status(ticket, "solved", actor="a", now=3)
    assert (solved.previous_status, solved.status, solved.customer_id) == ("pending", "closed", "C-1")
    assert (await tickets.get_ticket(ticket)).status == "closed"
    closed = subject.state()
    with pytest.raises(DomainError) as reopen:
        await tickets.set_ticket_status(ticket, "pending", actor="a", now=4)
    with pytest.raises(DomainError) as reply:
        await tickets.reply_to_customer(ticket, "One more thing", actor="a", now=4)
    assert (reopen.value.code, reply.value.code) == ("ticket_closed", "ticket_closed")
    assert subject.state() == closed


async def test_a_ticket_handed_to_a_human_keeps_its_status_and_an_unknown_one_has_none(
        tickets_subject: Subject) -> None:
    subject = tickets_subject
    tickets = tickets_of(subject)
    ticket = subject.id("T-2")
    await tickets.create_handoff(customer_id=None, ticket_id=ticket, summary="s", tried="t", proposed_action="p",
                                 priority="normal", source="agent", actor="a", now=1)
    handed = subject.state()
    with pytest.raises(DomainError) as error:
        await tickets.set_ticket_status(ticket, "solved", actor="a", now=2)
    with pytest.raises(NotFound):
        await tickets.set_ticket_status("999999", "solved", actor="a", now=2)
    assert error.value.code == "ticket_escalated" and subject.state() == handed
