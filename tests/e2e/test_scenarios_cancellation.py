"""The "we're done, cancel it" scenarios: who may cancel, the customer's own confirmation, open invoices.

Ticket T-2 has Lena (C-3), a mere member of Northwind (A-1), asking to cancel S-1. Only an admin
may; the admin's cancellation needs a code that only the admin's mailbox receives; Contoso (A-2)
has an open invoice, so its cancellation goes to a billing specialist instead.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import customer_code, on_clock, verified

pytestmark = pytest.mark.anyio

ADMIN_EMAIL = "jonas.weber@northwind.example"


def subscription_state(d: Deployment, subscription_id: str) -> tuple[str, str | None]:
    return d.rows("SELECT status, cancelled_by FROM subscriptions WHERE id = ?", (subscription_id,))[0]


def codes_sent(d: Deployment) -> int:
    return len(d.rows("SELECT id FROM outbox WHERE kind = 'confirmation_code'"))


async def test_a_members_or_a_strangers_cancellation_is_refused_and_nothing_is_sent(deployment: Deployment) -> None:
    """Lena (member) and Maria (no member at all) cannot cancel S-1: denied, no code, still active."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent")) as client:
        for requester in (demo.account_member, demo.customer_id):
            await verified(client, requester)
            refused = await call(client, "cancel_subscription", subscription_id=demo.subscription_id,
                                 requester_id=requester, reason_code="not_using")
            assert (refused["status"], refused["code"]) == ("denied", "gate_requester_is_account_admin")
            assert "Only an admin" in refused["reason"]
    assert subscription_state(deployment, demo.subscription_id) == ("active", None)
    assert codes_sent(deployment) == 0


async def test_the_admins_cancellation_runs_only_with_the_code_the_customer_reads_back(
        deployment: Deployment) -> None:
    """The code goes to Jonas's mailbox, never into the token; no code or a wrong guess burns nothing but
    that token; a fresh confirmation with the right code cancels S-1."""
    on_clock(deployment)
    demo = deployment.demo
    args = {"subscription_id": demo.subscription_id, "requester_id": demo.account_admin, "reason_code": "not_using"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        await verified(client, demo.account_admin)
        first = await call(client, "cancel_subscription", **args)
        assert first["status"] == "confirmation_required"
        assert first["preview"] == ("Cancel subscription S-1 (Team plan, 49.00 EUR per month) of account A-1 at the "
                                    "request of C-2; cancellation is final")
        token, code = first["confirmation_token"], customer_code(deployment, ADMIN_EMAIL)
        claims = base64.urlsafe_b64decode(token.split(".")[1] + "==")
        assert code.encode() not in claims and "cch" in json.loads(claims)  # only an HMAC of it

        missing = await call(client, "cancel_subscription", **args, confirmation_token=token)
        assert (missing["status"], missing["code"]) == ("denied", "customer_code_missing")
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        guessed = await call(client, "cancel_subscription", **args, confirmation_token=token, customer_code=wrong)
        assert (guessed["status"], guessed["code"]) == ("denied", "customer_code_invalid")
        burned = await call(client, "cancel_subscription", **args, confirmation_token=token, customer_code=code)
        assert (burned["status"], burned["code"]) == ("denied", "confirmation_replayed")
        assert subscription_state(deployment, demo.subscription_id) == ("active", None)

        fresh = (await call(client, "cancel_subscription", **args))["confirmation_token"]
        done = await call(client, "cancel_subscription", **args, confirmation_token=fresh,
                          customer_code=customer_code(deployment, ADMIN_EMAIL))
    assert done["status"] == "ok", done
    assert subscription_state(deployment, demo.subscription_id) == ("cancelled", demo.account_admin)


async def test_cancelling_for_an_account_with_open_invoices_escalates_to_a_billing_specialist(
        deployment: Deployment) -> None:
    """Oliver is Contoso's admin, but invoice I-3 is open: escalated, a hand-off exists, S-2 stays active."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent")) as client:
        await verified(client, demo.invoice_account_admin)
        escalated = await call(client, "cancel_subscription", subscription_id=demo.invoice_subscription_id,
                               requester_id=demo.invoice_account_admin, reason_code="switching_provider")
        assert (escalated["status"], escalated["code"]) == ("escalated", "gate_account_has_open_invoices")
        assert "billing specialist" in escalated["reason"] and "Tell the customer" in escalated["next_step"]
        status = await call(client, "get_action_status", action_id=escalated["escalation_id"])
        assert status["data"]["status"] == "queued"
    handoff = deployment.rows("SELECT customer_id, source, priority, status FROM handoffs WHERE id = ?",
                              (escalated["escalation_id"],))
    assert handoff == [(demo.invoice_account_admin, "policy", "high", "queued")]
    assert subscription_state(deployment, demo.invoice_subscription_id) == ("active", None)
    assert codes_sent(deployment) == 0
