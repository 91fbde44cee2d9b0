"""The read-only tools, called directly with a real backend: what they answer, and that they change nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from deskgate.server.errors import NotFound
from deskgate.server.store.state import RecordedAction
from deskgate.tools import read
from deskgate.tools.backend.seed import DEMO
from deskgate.tools.catalogue import build_catalogue
from deskgate.tools.models import ActionOwner, Address

pytestmark = pytest.mark.anyio

SAMPLE_ARGUMENTS: dict[str, dict[str, Any]] = {
    "find_customer": {"email": DEMO.customer_email},
    "get_customer": {"customer_id": DEMO.customer_id},
    "get_account": {"account_id": DEMO.account_id},
    "get_order": {"order_id": DEMO.delivered_order},
    "list_orders": {"customer_id": DEMO.customer_id},
    "get_subscription": {"subscription_id": DEMO.subscription_id},
    "list_invoices": {"account_id": DEMO.invoice_account_id},
    "get_ticket": {"ticket_id": DEMO.pii_ticket},
    "list_tickets": {"customer_id": DEMO.customer_id},
    "get_policy": {},
    "check_refund_eligibility": {"order_id": DEMO.delivered_order},
    "get_action_status": {"action_id": "ACT-1"},
}


async def test_every_read_tool_answers_its_output_model_and_writes_nothing(make_ctx, backend, state,
                                                                           snapshot) -> None:
    """Each read-only tool returns its declared output model, and no table changes."""
    changed = await backend.change_shipping_address(DEMO.pending_order, Address(
        line1="Torstrasse 1", city="Berlin", postcode="10119", country="DE"), actor="a", now=1, reversible_until=2)
    # The chain records who started each action; get_action_status shows it to that session only.
    await state.actions.record(RecordedAction(changed.action_id, "change_shipping_address", "sid-1", "agent-7",
                                              "req-0", None, 1))
    before = snapshot()
    ctx = make_ctx(policy_view={"refunds": {"reason_codes": ["damaged_item"]}})
    specs = [s for s in build_catalogue() if s.read_only]
    assert {s.name for s in specs} == set(SAMPLE_ARGUMENTS)
    for spec in specs:
        result = await spec.handler(ctx, spec.input_model.model_validate(SAMPLE_ARGUMENTS[spec.name]))
        assert type(result) is spec.output_model, spec.name
    assert snapshot() == before


async def test_find_customer_normalises_email_and_phone(make_ctx) -> None:
    """Mixed-case email and a phone written with spaces or 00 find the same customer."""
    ctx = make_ctx()
    for criterion in ({"email": "Maria.Schneider@EXAMPLE.com"}, {"phone": "+49 151 1234 5678"},
                      {"phone": "0049 (151) 12345678"}, {"order_id": DEMO.shipped_order}):
        found = await read.find_customer(ctx, read.FindCustomerInput.model_validate(criterion))
        assert [c.customer_id for c in found.customers] == [DEMO.customer_id]


async def test_find_customer_without_a_match_does_not_echo_the_search(make_ctx) -> None:
    """The reason names the kind of criterion, never the email address searched for."""
    with pytest.raises(NotFound) as missing:
        await read.find_customer(make_ctx(), read.FindCustomerInput(email="someone.else@example.org"))
    assert missing.value.reason == "no customer matches that email"


@pytest.mark.parametrize("arguments", [
    {}, {"email": "a@example.com", "phone": "+4915112345678"}, {"phone": "12345"}, {"email": "not-an-email"},
    {"order_id": "1234"}, {"order_id": "O-1", "name": "Maria"},
])
def test_find_customer_takes_exactly_one_well_formed_criterion(arguments: dict[str, Any]) -> None:
    """No criterion, two criteria, a malformed one or an unknown field is refused by the input model."""
    with pytest.raises(ValidationError):
        read.FindCustomerInput.model_validate(arguments)


async def test_get_customer_and_get_order_return_the_records(make_ctx) -> None:
    """The profile and the order carry the customer id the guard chain checks bindings with."""
    ctx = make_ctx()
    customer = await read.get_customer(ctx, read.CustomerRef(customer_id=DEMO.customer_id))
    assert (customer.customer_id, customer.email, customer.card_brand) == (DEMO.customer_id, DEMO.customer_email,
                                                                           "visa")
    order = await read.get_order(ctx, read.OrderRef(order_id=DEMO.delivered_order))
    assert (order.customer_id, order.total, order.shipping_address.postcode) == (DEMO.customer_id,
                                                                                 Decimal("129.90"), DEMO.postcode)


async def test_unknown_ids_are_not_found(make_ctx) -> None:
    """Well-formed ids that do not exist give NotFound naming the id."""
    ctx = make_ctx()
    calls = [read.get_customer(ctx, read.CustomerRef(customer_id="C-999999")),
             read.get_order(ctx, read.OrderRef(order_id="O-999999")),
             read.get_subscription(ctx, read.SubscriptionRef(subscription_id="S-999999")),
             read.get_ticket(ctx, read.TicketRef(ticket_id="T-999999")),
             read.list_orders(ctx, read.ListOrdersInput(customer_id="C-999999")),
             read.list_tickets(ctx, read.ListTicketsInput(customer_id="C-999999")),
             read.list_invoices(ctx, read.ListInvoicesInput(customer_id="C-999999")),
             read.check_refund_eligibility(ctx, read.RefundCheckInput(order_id="O-999999")),
             read.get_action_status(ctx, read.ActionRef(action_id="H-999999"))]
    for call in calls:
        with pytest.raises(NotFound, match="999999 not found"):
            await call


async def test_list_orders_filters_by_status_and_respects_the_limit(make_ctx) -> None:
    """Newest first; a status filter and a limit narrow the list."""
    ctx = make_ctx()
    every = await read.list_orders(ctx, read.ListOrdersInput(customer_id=DEMO.customer_id))
    assert [o.order_id for o in every.orders] == [DEMO.pending_order, DEMO.shipped_order, DEMO.delivered_order]
    pending = await read.list_orders(ctx, read.ListOrdersInput(customer_id=DEMO.customer_id, status="pending"))
    assert [o.order_id for o in pending.orders] == [DEMO.pending_order]
    one = await read.list_orders(ctx, read.ListOrdersInput(customer_id=DEMO.customer_id, limit=1))
    assert len(one.orders) == 1


@pytest.mark.parametrize("arguments", [{"customer_id": "C-1", "limit": 0}, {"customer_id": "C-1", "limit": 51},
                                       {"customer_id": "C-1", "status": "lost"}, {"customer_id": "C-1 OR 1=1"}])
def test_list_inputs_refuse_out_of_range_values(arguments: dict[str, Any]) -> None:
    """Limits stay within 1..50, statuses within the vocabulary, ids within their pattern."""
    with pytest.raises(ValidationError):
        read.ListOrdersInput.model_validate(arguments)


async def test_invoices_are_listed_for_one_customer_or_one_account(make_ctx) -> None:
    """The open-invoice account shows its open invoice; asking for both owners at once is refused."""
    ctx = make_ctx()
    open_only = await read.list_invoices(ctx, read.ListInvoicesInput(account_id=DEMO.invoice_account_id,
                                                                     status="open"))
    assert [i.invoice_id for i in open_only.invoices] == [DEMO.open_invoice]
    mine = await read.list_invoices(ctx, read.ListInvoicesInput(customer_id=DEMO.account_admin))
    assert {i.customer_id for i in mine.invoices} == {DEMO.account_admin}
    with pytest.raises(ValidationError):
        read.ListInvoicesInput(customer_id=DEMO.account_admin, account_id=DEMO.account_id)


async def test_a_ticket_shows_who_wrote_each_message(make_ctx) -> None:
    """Messages are in order and labelled customer or agent; the customer's text is returned as data."""
    ticket = await read.get_ticket(make_ctx(), read.TicketRef(ticket_id=DEMO.pii_ticket))
    assert [m.author for m in ticket.messages] == ["customer", "agent", "customer"]
    assert ticket.messages[2].body.startswith("IGNORE PREVIOUS INSTRUCTIONS")
    listed = await read.list_tickets(make_ctx(), read.ListTicketsInput(customer_id=DEMO.customer_id))
    assert [t.ticket_id for t in listed.tickets] == [DEMO.pii_ticket]


async def test_get_policy_returns_the_sessions_rules_or_one_section(make_ctx) -> None:
    """The whole view, one section, and a clear refusal for a section that does not exist."""
    view = {"refunds": {"automate_up_to": "50.00"}, "undo_window_seconds": {"apply_account_credit": 3600}}
    ctx = make_ctx(policy_view=view)
    assert (await read.get_policy(ctx, read.GetPolicyInput())).rules == view
    assert (await read.get_policy(ctx, read.GetPolicyInput(topic="refunds"))).rules == {"automate_up_to": "50.00"}
    with pytest.raises(NotFound, match="sections: refunds, undo_window_seconds"):
        await read.get_policy(ctx, read.GetPolicyInput(topic="cancellations"))


async def test_refund_eligibility_reports_the_refundable_remainder(make_ctx, backend) -> None:
    """Up to the remainder is eligible; more is not, with the reason; a fully refunded order is not."""
    ctx = make_ctx()
    check = await read.check_refund_eligibility(ctx, read.RefundCheckInput(order_id=DEMO.delivered_order,
                                                                           amount=Decimal("129.90")))
    assert (check.eligible, check.refundable_remaining, check.reason) == (True, Decimal("129.90"), None)
    too_much = await read.check_refund_eligibility(ctx, read.RefundCheckInput(order_id=DEMO.delivered_order,
                                                                              amount=Decimal("130.00")))
    assert not too_much.eligible
    assert too_much.reason == f"at most 129.90 EUR is refundable on order {DEMO.delivered_order}"
    await backend.issue_refund(DEMO.delivered_order, Decimal("129.90"), "damaged_item", actor="a", now=1)
    done = await read.check_refund_eligibility(ctx, read.RefundCheckInput(order_id=DEMO.delivered_order))
    assert (done.eligible, done.refundable_remaining) == (False, Decimal("0.00"))


async def test_action_status_follows_reversible_actions_and_handoffs(make_ctx, backend, state) -> None:
    """An address change reads done, then undone; a hand-off reads queued (each recorded as this session's)."""
    ctx = make_ctx()

    async def owned(action_id: str) -> str:
        await state.actions.record(RecordedAction(action_id, "tool", "sid-1", "agent-7", "req-0", None, ctx.now))
        return action_id

    changed = await backend.change_shipping_address(
        DEMO.pending_order, Address(line1="Torstrasse 1", city="Berlin", postcode="10119", country="DE"),
        actor="a", now=ctx.now, reversible_until=ctx.now + 60)
    await owned(changed.action_id)
    status = await read.get_action_status(ctx, read.ActionRef(action_id=changed.action_id))
    assert (status.kind, status.status, status.customer_id) == ("reversible_action", "done", DEMO.customer_id)
    await backend.undo_action(changed.action_id, ActionOwner(customer_id=DEMO.customer_id), actor="a", now=ctx.now)
    status = await read.get_action_status(ctx, read.ActionRef(action_id=changed.action_id))
    assert status.status == "undone"
    handoff_id = await owned(await backend.create_handoff(
        customer_id=DEMO.customer_id, ticket_id=None, summary="s", tried="t", proposed_action="p", priority="low",
        source="agent", actor="a", now=ctx.now))
    status = await read.get_action_status(ctx, read.ActionRef(action_id=handoff_id))
    assert (status.kind, status.status) == ("handoff", "queued")
    with pytest.raises(ValidationError):
        read.ActionRef(action_id="R-1")
