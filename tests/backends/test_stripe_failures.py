"""Stripe down, slow, failing or throttling: every call fails closed, within its timeout, and acts at most once.

The faults come from a real HTTP peer on loopback between deskgate and localstripe (`Peer`).
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from tests.backends.conftest import LocalStripe, Peer, through
from tests.e2e.conftest import call

pytestmark = pytest.mark.anyio

LEAK = b'{"error": {"type": "api_error", "message": "internal detail: customer maria@example.com card 4242"}}'


def fails_with(status: int, headers: dict[str, str] | None = None) -> object:
    return lambda method, path: (status, {"Content-Type": "application/json", **(headers or {})}, LEAK)


@pytest.mark.parametrize(("status", "headers"), [(500, {}), (503, {}), (429, {"Retry-After": "30"})])
async def test_a_5xx_or_429_is_backend_unavailable_without_the_providers_text_and_is_not_retried(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer, status: int,
        headers: dict[str, str]) -> None:
    async with through(home, localstripe, peer) as on_stripe:
        d = on_stripe.deployment
        peer.before = fails_with(status, headers)  # type: ignore[assignment]
        async with d.client(d.token("billing-agent")) as client:
            answer = await call(client, "get_subscription", subscription_id=on_stripe.ids["S-1"])
    assert (answer["status"], answer["code"]) == ("error", "backend_unavailable")
    assert "maria" not in json.dumps(answer) and "4242" not in json.dumps(answer)
    assert len(peer.requests) == 1  # no silent retry
    assert "maria" not in d.audit_text()


async def test_a_billing_system_that_never_answers_fails_the_call_at_its_timeout(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer) -> None:
    async with through(home, localstripe, peer, timeout_seconds=0.5) as on_stripe:
        d = on_stripe.deployment
        peer.before = lambda method, path: peer.hang()  # type: ignore[assignment, return-value]
        async with d.client(d.token("billing-agent")) as client:
            with anyio.fail_after(10):  # far above the 0.5 s timeout, far below the peer's 60 s hang
                answer = await call(client, "check_refund_eligibility", order_id="O-1")
    assert (answer["status"], answer["code"]) == ("error", "backend_unavailable")


async def test_a_billing_system_that_refuses_connections_is_backend_unavailable(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer) -> None:
    async with through(home, localstripe, peer) as on_stripe:
        d = on_stripe.deployment
        peer.server.shutdown()
        peer.server.server_close()  # nothing listens on the configured port any more
        async with d.client(d.token("billing-agent")) as client:
            answer = await call(client, "list_invoices", account_id="A-2")
    assert (answer["status"], answer["code"]) == ("error", "backend_unavailable")


async def test_the_breaker_stops_calling_a_failing_system_and_says_so(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer) -> None:
    """After 2 failures (breaker_failures = 2) the next call fails at once without reaching Stripe."""
    async with through(home, localstripe, peer, breaker_failures=2, breaker_cooldown_seconds=3600) as on_stripe:
        d = on_stripe.deployment
        peer.before = fails_with(500)  # type: ignore[assignment]
        async with d.client(d.token("billing-agent")) as client:
            for _ in range(2):
                await call(client, "get_subscription", subscription_id=on_stripe.ids["S-1"])
            reached = len(peer.requests)
            peer.before = lambda method, path: None  # Stripe is back, but the breaker is open
            cut_off = await call(client, "get_subscription", subscription_id=on_stripe.ids["S-1"])
    assert (cut_off["status"], cut_off["code"]) == ("error", "backend_unavailable")
    assert "circuit breaker" in cut_off["reason"]
    assert len(peer.requests) == reached


async def test_a_refund_whose_answer_timed_out_is_found_not_repeated_when_the_call_is_retried(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer) -> None:
    """Stripe refunds but its answer never arrives in time: backend_unavailable. The agent asks again with
    the same idempotency key; deskgate finds the refund by its metadata and answers it: one refund in all."""
    async with through(home, localstripe, peer, timeout_seconds=1) as on_stripe:
        d = on_stripe.deployment
        answered_late = []

        def late(method: str, path: str) -> bool:
            if method == "POST" and path.startswith("/v1/refunds") and not answered_late:
                answered_late.append(path)
                peer.hang()  # the refund exists in Stripe; its answer comes too late
            return True

        peer.after = late
        args = {"order_id": "O-1", "amount": "20.00", "reason_code": "damaged_item", "idempotency_key": "refund-late-1"}
        async with d.client(d.token("billing-agent")) as client:
            first = await call(client, "issue_refund", **args)
            timed_out = await call(client, "issue_refund", **args, confirmation_token=first["confirmation_token"])
            assert (timed_out["status"], timed_out["code"]) == ("error", "backend_unavailable"), timed_out
            assert len(on_stripe.refunds_of("O-1")) == 1
            again = await call(client, "issue_refund", **args)
            retried = await call(client, "issue_refund", **args, confirmation_token=again["confirmation_token"])
        [refund] = on_stripe.refunds_of("O-1")
    assert retried["status"] == "ok", retried
    assert retried["data"]["refund_id"] == refund.id and refund.amount == 2000


async def test_a_refund_gated_on_a_stripe_fact_fails_closed_when_stripe_cannot_answer_it(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer, tmp_path: Path) -> None:
    """With "a second refund needs approval" on Stripe's own refunds: the second refund waits for an approver;
    while Stripe's refund list fails, the gate cannot be decided and the call is an error - not a pass -
    and nothing is refunded."""
    from tests.e2e.test_policy_facts import documented_policy
    from tests.e2e.test_scenarios import confirmed, on_clock

    async with through(home, localstripe, peer) as on_stripe:
        d = on_stripe.deployment
        clock = on_clock(d, documented_policy(tmp_path))
        d.runtime.backend_db.write_sync(lambda tx: tx.execute(
            "UPDATE orders SET delivered_at = ? WHERE id = 'O-1'", (clock.now - 86400,)))
        refund = {"order_id": "O-1", "amount": "10.00", "reason_code": "damaged_item"}
        async with d.client(d.token("billing-agent")) as client:
            first = await confirmed(client, "issue_refund", **refund)
            second = await call(client, "issue_refund", **refund)
            peer.before = lambda method, path: (  # type: ignore[assignment]
                (503, {"Content-Type": "application/json"}, LEAK) if path.startswith("/v1/refunds") else None)
            down = await call(client, "issue_refund", **{**refund, "amount": "5.00"})
        assert first["status"] == "ok", first
        assert (second["status"], second["code"]) == ("pending_approval", "gate_refunds_on_order"), second
        assert (down["status"], down["code"]) == ("error", "backend_unavailable"), down
        assert len(on_stripe.refunds_of("O-1")) == 1
