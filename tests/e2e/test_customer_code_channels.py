"""The customer's one-time code lives as long as its channel allows: minutes in a chat or a call, up to 48h for
an e-mail ticket, a short default without a ticket - whatever the agent's confirmation-token lifetime. The
channel is that of the ticket the session is bound to (never something the agent says), and a code issued
for a ticket may be read back in a later session of the same subject on that ticket.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import customer_code, on_clock, verified
from tests.e2e.test_scenarios_cancellation import ADMIN_EMAIL, subscription_state

pytestmark = pytest.mark.anyio

HOUR = 3600


def jonas_ticket(d: Deployment, ticket_id: str, channel: str | None) -> None:
    d.runtime.backend_db.write_sync(lambda tx: tx.execute(
        "INSERT INTO tickets (id, customer_id, subject, status, priority, created_at, updated_at, channel)"
        " VALUES (?, ?, 'Please cancel our plan', 'open', 'normal', 0, 0, ?)",
        (ticket_id, d.demo.account_admin, channel)))


def args(d: Deployment) -> dict[str, str]:
    return {"subscription_id": d.demo.subscription_id, "requester_id": d.demo.account_admin,
            "reason_code": "not_using"}


def lifetime(token: str) -> int:
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return int(claims["exp"]) - int(claims["iat"])


async def test_a_chat_code_expires_in_minutes(deployment: Deployment) -> None:
    """Bound to a chat ticket: the code lives 10 minutes; read back after 11 it is expired, S-1 stays active;
    a fresh code read back within the 10 minutes cancels."""
    clock = on_clock(deployment)
    jonas_ticket(deployment, "T-900", "chat")
    async with deployment.client(deployment.token("billing-agent", ticket="T-900")) as client:
        first = await call(client, "cancel_subscription", **args(deployment))
        assert lifetime(first["confirmation_token"]) == 10 * 60
        clock.advance(11 * 60)
        late = await call(client, "cancel_subscription", **args(deployment),
                          confirmation_token=first["confirmation_token"],
                          customer_code=customer_code(deployment, ADMIN_EMAIL))
        assert (late["status"], late["code"]) == ("denied", "confirmation_expired")
        assert subscription_state(deployment, deployment.demo.subscription_id) == ("active", None)
        again = await call(client, "cancel_subscription", **args(deployment))
        clock.advance(9 * 60)
        done = await call(client, "cancel_subscription", **args(deployment),
                          confirmation_token=again["confirmation_token"],
                          customer_code=customer_code(deployment, ADMIN_EMAIL))
    assert done["status"] == "ok", done


async def test_an_email_code_lives_up_to_48_hours_and_outlives_the_session_that_asked(
        deployment: Deployment) -> None:
    """Bound to an e-mail ticket: the mail says 48 hours; 47 hours later another session of the same agent on
    the same ticket redeems it; another agent on that ticket cannot."""
    clock = on_clock(deployment)
    jonas_ticket(deployment, "T-901", "email")
    async with deployment.client(deployment.token("billing-agent", sub="mailbot", ticket="T-901")) as client:
        first = await call(client, "cancel_subscription", **args(deployment))
    token = first["confirmation_token"]
    assert lifetime(token) == 48 * HOUR
    mail = deployment.rows("SELECT body FROM outbox WHERE kind = 'confirmation_code'")[-1][0]
    assert "expires in 48 hour(s)" in mail
    clock.advance(47 * HOUR)
    code = customer_code(deployment, ADMIN_EMAIL)
    async with deployment.client(deployment.token("billing-agent", sub="other", ticket="T-901")) as client:
        stranger = await call(client, "cancel_subscription", **args(deployment), confirmation_token=token,
                              customer_code=code)
    assert (stranger["status"], stranger["code"]) == ("denied", "confirmation_other_session")
    async with deployment.client(deployment.token("billing-agent", sub="mailbot", ticket="T-901")) as client:
        done = await call(client, "cancel_subscription", **args(deployment), confirmation_token=token,
                          customer_code=code)
    assert done["status"] == "ok", done
    assert subscription_state(deployment, deployment.demo.subscription_id) == ("cancelled",
                                                                              deployment.demo.account_admin)


async def test_an_email_code_read_back_after_48_hours_is_expired(deployment: Deployment) -> None:
    clock = on_clock(deployment)
    jonas_ticket(deployment, "T-902", "email")
    async with deployment.client(deployment.token("billing-agent", ticket="T-902")) as client:
        first = await call(client, "cancel_subscription", **args(deployment))
        clock.advance(48 * HOUR + 1)
        late = await call(client, "cancel_subscription", **args(deployment),
                          confirmation_token=first["confirmation_token"],
                          customer_code=customer_code(deployment, ADMIN_EMAIL))
    assert (late["status"], late["code"]) == ("denied", "confirmation_expired")
    assert subscription_state(deployment, deployment.demo.subscription_id) == ("active", None)


async def test_without_a_ticket_or_a_recorded_channel_the_short_default_applies(deployment: Deployment) -> None:
    """An unbound session (Jonas verified) and a ticket with no channel both get the 10-minute default; the
    agent's own confirmation token keeps its 2 minutes."""
    clock = on_clock(deployment)
    jonas_ticket(deployment, "T-903", None)
    async with deployment.client(deployment.token("billing-agent")) as client:
        await verified(client, deployment.demo.account_admin)
        unbound = await call(client, "cancel_subscription", **args(deployment))
        refund = await call(client, "issue_refund", order_id=deployment.demo.delivered_order, amount="5.00",
                            reason_code="damaged_item")
        clock.advance(11 * 60)
        late = await call(client, "cancel_subscription", **args(deployment),
                          confirmation_token=unbound["confirmation_token"],
                          customer_code=customer_code(deployment, ADMIN_EMAIL))
    async with deployment.client(deployment.token("billing-agent", ticket="T-903")) as client:
        unrecorded = await call(client, "cancel_subscription", **args(deployment))
        view = await call(client, "get_policy")
    assert view["data"]["rules"]["customer_code_ttl_seconds"] == {"chat": 600, "phone": 600, "email": 48 * HOUR,
                                                                   "default": 600}
    assert lifetime(unbound["confirmation_token"]) == lifetime(unrecorded["confirmation_token"]) == 10 * 60
    assert lifetime(refund["confirmation_token"]) == 2 * 60
    assert (late["status"], late["code"]) == ("denied", "confirmation_expired")
