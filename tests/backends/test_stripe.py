"""Billing on Stripe (localstripe), through a real MCP client: refunds, previews, subscriptions, invoices."""

from __future__ import annotations

import pytest

from tests.backends.conftest import StripeDeployment
from tests.e2e.conftest import call
from tests.e2e.test_scenarios import customer_code, verified

pytestmark = pytest.mark.anyio


async def test_a_confirmed_refund_creates_exactly_one_stripe_refund_naming_order_and_intent(
        on_stripe: StripeDeployment) -> None:
    """20.00 on O-1: one Stripe refund of 2000 minor units whose metadata names the order and the audit intent."""
    d = on_stripe.deployment
    async with d.client(d.token("billing-agent")) as client:
        first = await call(client, "issue_refund", order_id="O-1", amount="20.00", reason_code="damaged_item")
        assert first["status"] == "confirmation_required"
        assert first["preview"] == "Refund 20.00 EUR on order O-1 to visa card ending 4242; refunds are final"
        done = await call(client, "issue_refund", order_id="O-1", amount="20.00", reason_code="damaged_item",
                          confirmation_token=first["confirmation_token"])
    assert done["status"] == "ok", done
    [refund] = on_stripe.refunds_of("O-1")
    assert (refund.amount, refund.currency) == (2000, "eur")
    meta = refund.metadata.to_dict()
    intent = next(r for r in d.audit_records() if r["kind"] == "intent" and r["tool"] == "issue_refund")
    assert meta["deskgate_order"] == "O-1"
    assert meta["deskgate_request"] == intent["request_id"]
    assert meta["deskgate_audit_seq"] == str(intent["seq"])
    assert done["data"]["refund_id"] == refund.id and done["data"]["refundable_remaining"] == "109.90"
    assert d.rows("SELECT COUNT(*) FROM refunds WHERE order_id = 'O-1'") == [(0,)]  # the demo kept no copy


async def test_refund_eligibility_is_stripes_own_count(on_stripe: StripeDeployment) -> None:
    d = on_stripe.deployment
    """A refund made in Stripe's dashboard counts: deskgate never refunds what Stripe already paid back."""
    on_stripe.stripe.v1.refunds.create(params={"payment_intent": on_stripe.payment_of("O-1"), "amount": 11000})
    async with d.client(d.token("billing-agent")) as client:
        eligibility = await call(client, "check_refund_eligibility", order_id="O-1", amount="20.00")
        too_much = await call(client, "issue_refund", order_id="O-1", amount="20.00", reason_code="damaged_item")
    assert eligibility["data"]["refundable_remaining"] == "19.90" and eligibility["data"]["eligible"] is False
    assert (too_much["status"], too_much["code"]) == ("error", "amount_above_refundable")
    assert len(on_stripe.refunds_of("O-1")) == 1


async def test_subscriptions_and_invoices_are_read_from_stripe_with_stripe_ids(on_stripe: StripeDeployment) -> None:
    d, ids = on_stripe.deployment, on_stripe.ids
    async with d.client(d.token("billing-agent")) as client:
        sub = await call(client, "get_subscription", subscription_id=ids["S-1"])
        invoices = await call(client, "list_invoices", account_id="A-2", status="open")
        legacy = await call(client, "get_subscription", subscription_id="S-1")
    assert sub["status"] == "ok", sub
    assert sub["data"] | {"started_at": None, "renews_at": None} == {
        "subscription_id": ids["S-1"], "customer_id": "C-2", "account_id": "A-1", "plan": "Team plan",
        "status": "active", "price": "49.00", "currency": "EUR", "billing_period": "month", "started_at": None,
        "renews_at": None, "cancelled_at": None}
    assert [i["invoice_id"] for i in invoices["data"]["invoices"]] == [ids["I-3"]]
    assert (legacy["status"], legacy["code"]) == ("error", "not_found")


async def test_cancellation_in_stripe_follows_the_gates_and_happens_once(on_stripe: StripeDeployment) -> None:
    """A member is refused by policy, the admin's confirmed cancellation cancels the Stripe subscription,
    and an account with an open invoice in Stripe escalates."""
    d, ids = on_stripe.deployment, on_stripe.ids
    async with d.client(d.token("billing-agent")) as client:
        for person in ("C-2", "C-3", "C-4"):
            await verified(client, person)
        member = await call(client, "cancel_subscription", subscription_id=ids["S-1"], requester_id="C-3",
                            reason_code="not_using")
        args = {"subscription_id": ids["S-1"], "requester_id": "C-2", "reason_code": "not_using"}
        first = await call(client, "cancel_subscription", **args)
        assert first["preview"].startswith(f"Cancel subscription {ids['S-1']} (Team plan, 49.00 EUR per month)")
        done = await call(client, "cancel_subscription", **args, confirmation_token=first["confirmation_token"],
                          customer_code=customer_code(d, "jonas.weber@northwind.example"))
        again = await call(client, "cancel_subscription", subscription_id=ids["S-1"], requester_id="C-2",
                           reason_code="not_using")
        open_invoice = await call(client, "cancel_subscription", subscription_id=ids["S-2"], requester_id="C-4",
                                  reason_code="not_using")
    assert member["status"] == "denied", member
    assert done["status"] == "ok" and done["data"]["status"] == "cancelled", done
    assert on_stripe.stripe.v1.subscriptions.retrieve(ids["S-1"]).status == "canceled"
    assert (again["status"], again["code"]) == ("error", "not_active")
    assert open_invoice["status"] == "escalated", open_invoice
    assert on_stripe.stripe.v1.subscriptions.retrieve(ids["S-2"]).status == "active"


async def test_a_session_bound_to_one_customer_cannot_reach_another_customers_stripe_subscription(
        on_stripe: StripeDeployment) -> None:
    d, ids = on_stripe.deployment, on_stripe.ids
    async with d.client(d.token("billing-agent", customer="C-1")) as client:
        foreign = await call(client, "get_subscription", subscription_id=ids["S-1"])
        unknown = await call(client, "get_subscription", subscription_id="sub_doesnotexist00")
    async with d.client(d.token("billing-agent", customer="C-2")) as client:
        own = await call(client, "get_subscription", subscription_id=ids["S-1"])
    assert (foreign["status"], foreign["code"]) == ("denied", "binding")
    assert (unknown["status"], unknown["code"]) == ("denied", "binding")
    assert own["status"] == "ok"


async def test_a_credit_is_a_pending_negative_invoice_item_in_stripe_and_undo_takes_it_back(
        on_stripe: StripeDeployment) -> None:
    d = on_stripe.deployment
    customer = d.rows("SELECT provider_id FROM provider_refs WHERE kind = 'account' AND local_id = 'A-1'")[0][0]
    async with d.client(d.token("supervisor")) as client:
        credit = await call(client, "apply_account_credit", account_id="A-1", amount="15.00",
                            reason_code="goodwill", idempotency_key="credit-a1-once")
        again = await call(client, "apply_account_credit", account_id="A-1", amount="15.00",
                           reason_code="goodwill", idempotency_key="credit-a1-once")
        assert credit["status"] == "ok", credit
        item = on_stripe.stripe.v1.invoice_items.retrieve(credit["data"]["credit_id"])
        assert (item.amount, item.customer, item.invoice) == (-1500, customer, None)
        assert item.metadata.to_dict()["deskgate_account"] == "A-1"
        assert again["data"]["credit_id"] == credit["data"]["credit_id"]
        assert credit["data"]["credit_balance"] == "15.00"
        undone = await call(client, "undo_action", action_id=credit["data"]["action_id"], account_id="A-1")
        twice = await call(client, "undo_action", action_id=credit["data"]["action_id"], account_id="A-1")
    assert undone["status"] == "ok", undone
    assert (twice["status"], twice["code"]) == ("error", "already_undone")
    items = on_stripe.stripe.v1.invoice_items.list(params={"customer": customer}).data
    assert credit["data"]["credit_id"] not in [i.id for i in items]
