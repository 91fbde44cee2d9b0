"""`requester_id` is established, never asserted: the session's bound customer (its ticket's customer or
the token's), or a customer `verify_identity` confirmed in this very session. Anything else is refused in
stage 3 - before a one-time code is e-mailed, a hand-off is created or anything else happens - with a
denial that names the next step.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import on_clock, records_of
from tests.e2e.test_scenarios_cancellation import codes_sent, subscription_state

pytestmark = pytest.mark.anyio

ADMIN_POSTCODE = "20095"  # Jonas Weber (C-2), the admin of A-1, in the seeded demo


def cancel_args(d: Deployment, requester: str) -> dict[str, str]:
    return {"subscription_id": d.demo.subscription_id, "requester_id": requester, "reason_code": "not_using"}


async def test_an_unverified_requester_in_an_unbound_session_is_refused_before_any_code_is_sent(
        deployment: Deployment) -> None:
    """The agent names the admin of A-1 as requester without verifying him: denied `requester_unverified`,
    the reason says to verify first, no code e-mailed, no intent record, S-1 still active."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent")) as client:
        refused = await call(client, "cancel_subscription", **cancel_args(deployment, demo.account_admin))
    assert (refused["status"], refused["code"]) == ("denied", "requester_unverified")
    assert "verify_identity" in refused["reason"] and demo.account_admin in refused["reason"]
    assert codes_sent(deployment) == 0
    assert subscription_state(deployment, demo.subscription_id) == ("active", None)
    assert records_of(deployment, "intent", tool="cancel_subscription") == []


async def test_verifying_one_customer_never_makes_another_the_requester(deployment: Deployment) -> None:
    """Verify Maria (C-1), then name Jonas (C-2) as requester: refused; nothing sent."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent")) as client:
        checked = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode",
                             value=demo.postcode)
        assert checked["data"]["verified"] is True
        refused = await call(client, "cancel_subscription", **cancel_args(deployment, demo.account_admin))
    assert (refused["status"], refused["code"]) == ("denied", "requester_unverified")
    assert codes_sent(deployment) == 0


async def test_a_verification_in_another_session_or_a_failed_one_does_not_count(deployment: Deployment) -> None:
    """Jonas verified in session 1 is not verified in session 2; a wrong postcode verifies nobody."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent", sub="agent-1")) as first:
        await call(first, "verify_identity", customer_id=demo.account_admin, method="postcode",
                   value=ADMIN_POSTCODE)
    async with deployment.client(deployment.token("billing-agent", sub="agent-2")) as second:
        wrong = await call(second, "verify_identity", customer_id=demo.account_admin, method="postcode",
                           value="99999")
        assert wrong["data"]["verified"] is False
        refused = await call(second, "cancel_subscription", **cancel_args(deployment, demo.account_admin))
    assert (refused["status"], refused["code"]) == ("denied", "requester_unverified")
    assert codes_sent(deployment) == 0


async def test_a_requester_verified_in_this_session_gets_the_code(deployment: Deployment) -> None:
    """After verify_identity succeeds for Jonas in this session, his cancellation asks for his code."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent")) as client:
        await call(client, "verify_identity", customer_id=demo.account_admin, method="postcode",
                   value=ADMIN_POSTCODE)
        asked = await call(client, "cancel_subscription", **cancel_args(deployment, demo.account_admin))
    assert asked["status"] == "confirmation_required", asked
    assert codes_sent(deployment) == 1


async def test_the_customer_of_the_bound_ticket_is_the_requester_without_a_verification(
        deployment: Deployment) -> None:
    """A session bound to Jonas's own ticket acts for him: his cancellation asks for his code with no
    verify_identity; anyone else named as requester is outside the binding."""
    on_clock(deployment)
    demo = deployment.demo
    deployment.runtime.backend_db.write_sync(lambda tx: tx.execute(
        "INSERT INTO tickets (id, customer_id, subject, status, priority, created_at, updated_at)"
        " VALUES ('T-900', ?, 'Please cancel our plan', 'open', 'normal', 0, 0)", (demo.account_admin,)))
    async with deployment.client(deployment.token("billing-agent", ticket="T-900")) as client:
        other = await call(client, "cancel_subscription", **cancel_args(deployment, demo.account_member))
        his = await call(client, "cancel_subscription", **cancel_args(deployment, demo.account_admin))
    assert (other["status"], other["code"]) == ("denied", "binding")
    assert his["status"] == "confirmation_required", his
    assert codes_sent(deployment) == 1
