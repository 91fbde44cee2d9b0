"""The refund-everything agent: thresholds, reason codes, the session cap, the money breaker, approvals.

Each scenario is what an over-eager agent would do through a real MCP client; what it gets is
checked in its answers and in the backend's refunds table. The shipped policy allows a customer
6 refunds a day (executed ones; previews and refusals count none), so a scenario spends them knowingly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deskgate.server.policy.approvals import Approvals
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import (
    NO_REFUND_LIMITS,
    confirmed,
    deskgate,
    on_clock,
    policy_file,
    records_of,
    refunds,
    together,
)
from tests.people.logins import login_as

pytestmark = pytest.mark.anyio


def refund(order_id: str, amount: str, reason_code: str = "damaged_item") -> dict[str, str]:
    return {"order_id": order_id, "amount": amount, "reason_code": reason_code}


async def test_a_small_refund_runs_only_after_the_agent_confirms_the_preview(deployment: Deployment) -> None:
    """Up to 50.00 automates: a preview and a token first, the refund only on the confirmed repeat."""
    on_clock(deployment)
    args = refund(deployment.demo.delivered_order, "42.10")
    async with deployment.client(deployment.token("billing-agent")) as client:
        first = await call(client, "issue_refund", **args)
        assert first["status"] == "confirmation_required"
        assert first["preview"] == "Refund 42.10 EUR on order O-1 to visa card ending 4242; refunds are final"
        assert refunds(deployment) == []
        done = await call(client, "issue_refund", **args, confirmation_token=first["confirmation_token"])
    assert done["status"] == "ok"
    assert done["data"]["refundable_remaining"] == "87.80"
    assert refunds(deployment) == [(done["data"]["refund_id"], "O-1", 4210)]


async def test_the_refund_everything_agent_is_stopped_by_thresholds_reason_codes_and_the_attempt_limit(
        deployment: Deployment, tmp_path: Path) -> None:
    """50.00 automates, 50.01-500.00 waits for an approver, above 500.00 escalates, a made-up reason is
    refused (not in the enum), and retries end in a clear refusal once the session passes its attempt limit
    (8 here); nothing at all is refunded."""
    on_clock(deployment, policy_file(tmp_path, ("max = 200 ", "max = 8 ")))
    order = deployment.demo.delivered_order
    async with deployment.client(deployment.token("billing-agent")) as client:
        at_limit = await call(client, "issue_refund", **refund(order, "50.00"))
        assert at_limit["status"] == "confirmation_required"
        for amount in ("50.01", "500.00"):
            held = await call(client, "issue_refund", **refund(order, amount))
            assert (held["status"], held["code"]) == ("pending_approval", "threshold"), held
            assert held["approval_id"].startswith("AP-")
        big = await call(client, "issue_refund", **refund(order, "500.01"))
        assert (big["status"], big["code"]) == ("escalated", "threshold")
        assert "specialist" in big["next_step"]
        made_up = await call(client, "issue_refund", **refund(order, "10.00", "customer_is_upset"))
        assert (made_up["status"], made_up["code"]) == ("error", "invalid_arguments")  # not in the schema's enum
        assert "damaged_item" in made_up["reason"]
        # Previews count no refund (the customer's 6 a day are untouched); the made-up code never reached the
        # policy, so it was no attempt: four more previews reach the attempt limit of 8.
        for _ in range(4):
            again = await call(client, "issue_refund", **refund(order, "5.00"))
            assert again["status"] == "confirmation_required"
        runaway = await call(client, "issue_refund", **refund(order, "5.00"))
        assert (runaway["status"], runaway["code"]) == ("denied", "attempt_limited")
        told = f"{runaway['reason']} {runaway.get('next_step', '')}"
        assert "escalate to a human" in told and "do not retry" in told.lower()
    assert refunds(deployment) == []
    handoff = deployment.rows("SELECT customer_id, source, priority FROM handoffs WHERE id = ?",
                              (big["escalation_id"],))
    assert handoff == [("C-1", "policy", "high")]


async def test_the_session_cap_holds_over_several_refunds_and_no_approval_lifts_it(deployment: Deployment) -> None:
    """A session with max_refund 60.00 refunds 25 + 25, then neither 20 more nor a 55.00 for an approver."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent", max_refund="60.00")) as client:
        for order in (demo.delivered_order, demo.pending_order):
            assert (await confirmed(client, "issue_refund", **refund(order, "25.00")))["status"] == "ok"
        over = await call(client, "issue_refund", **refund(demo.shipped_order, "20.00"))
        assert (over["status"], over["code"]) == ("denied", "session_cap")
        assert "60.00" in over["reason"]
        assist = await call(client, "issue_refund", **refund(demo.shipped_order, "55.00"))
        assert (assist["status"], assist["code"]) == ("denied", "session_cap")
        one_go = await call(client, "issue_refund", **refund(demo.shipped_order, "61.00"))
        assert (one_go["status"], one_go["code"]) == ("denied", "amount_cap")
    assert sum(r[2] for r in refunds(deployment)) == 5000


async def test_the_money_breaker_trips_across_sessions_and_holds_money_tools_at_assist_until_reset(
        deployment: Deployment, tmp_path: Path) -> None:
    """With 60.00 an hour: 40.00 pays out, a 30.00 preview in another session trips the breaker, refunds
    and credits then wait for an approver until the logged-in admin resets it; the reset clears the hour
    it tripped on (45.00 more run in that same hour without tripping it again); trip and reset are
    audited once, the reset with the admin's login."""
    on_clock(deployment, policy_file(tmp_path, ('per_hour = "1500.00"', 'per_hour = "60.00"'), NO_REFUND_LIMITS))
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as first:
        assert (await confirmed(first, "issue_refund", **refund(demo.delivered_order, "40.00")))["status"] == "ok"
    async with deployment.client(deployment.token("billing-agent", sub="agent-b")) as second:
        trip = await call(second, "issue_refund", **refund(demo.shipped_order, "30.00"))
        assert (trip["status"], trip["code"]) == ("pending_approval", "breaker_open")
        small = await call(second, "issue_refund", **refund(demo.pending_order, "5.00"))
        assert (small["status"], small["code"]) == ("pending_approval", "breaker_open")
        credit = await call(second, "apply_account_credit", account_id=demo.account_id, amount="5.00",
                            reason_code="goodwill")
        assert (credit["status"], credit["code"]) == ("pending_approval", "breaker_open")

        listed = deskgate("breakers", "list")
        assert listed.exit_code == 0 and "money" in listed.stdout
        login_as("ops-lead", role="admin")
        reset = deskgate("breakers", "reset", "money", "--yes")
        assert reset.exit_code == 0, reset.output
        after = await confirmed(second, "issue_refund", **refund(demo.pending_order, "5.00"))
        assert after["status"] == "ok"
        # 40 + 5 + 40 would pass 60.00 in this hour; after the reset only 5 + 40 count.
        more = await confirmed(second, "issue_refund", **refund(demo.delivered_order, "40.00"))
        assert more["status"] == "ok", more
        assert deskgate("breakers", "list", "--json").stdout.strip() == "[]"
    assert [(r[1], r[2]) for r in refunds(deployment)] == [("O-1", 4000), ("O-2", 500), ("O-1", 4000)]
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(0,)]

    # The held call created an approval, so its record is the outcome of that intent.
    trips = [r for kind in ("call", "outcome") for r in records_of(deployment, kind)
             for e in r.get("decision", {}).get("events", []) if e["event"] == "breaker_trip"]
    assert len(trips) == 1 and trips[0]["sub"] == "agent-b"
    event = trips[0]["decision"]["events"][0]
    assert event["policy_version"] == trips[0]["policy_version"] and "passes 60.00" in event["reason"]
    resets = records_of(deployment, "admin", action="breaker.reset")
    assert len(resets) == 1 and resets[0]["breaker"] == "money" and resets[0]["principal"] == "ops-lead"


async def test_an_approval_runs_exactly_the_approved_call_once_and_never_on_its_requesters_word(
        deployment: Deployment) -> None:
    """120.00 waits; the requester cannot approve it; once anna approves, another amount or another
    session gets its own approval, the exact call runs once, and repeating it runs nothing more."""
    on_clock(deployment)
    args = refund(deployment.demo.delivered_order, "120.00")
    async with deployment.client(deployment.token("billing-agent", sub="agent-1")) as client:
        pending = await call(client, "issue_refund", **args)
        assert pending["status"] == "pending_approval"
        approval_id = pending["approval_id"]
        status = await call(client, "get_action_status", action_id=approval_id)
        assert status["data"]["status"] == "pending"

        login_as("agent-1")  # a person whose name is the token's subject
        self_approved = deskgate("approvals", "approve", approval_id, "--yes")
        assert self_approved.exit_code == 1 and "own request" in self_approved.output
        login_as("anna")
        assert deskgate("approvals", "approve", approval_id, "--yes").exit_code == 0
        status = await call(client, "get_action_status", action_id=approval_id)
        assert status["data"]["status"] == "approved"

        other_amount = await call(client, "issue_refund", **{**args, "amount": "130.00"})
        assert other_amount["status"] == "pending_approval" and other_amount["approval_id"] != approval_id
        async with deployment.client(deployment.token("billing-agent", sub="agent-1")) as other_session:
            elsewhere = await call(other_session, "issue_refund", **args)
            assert elsewhere["status"] == "pending_approval" and elsewhere["approval_id"] != approval_id
        assert refunds(deployment) == []

        ran = await call(client, "issue_refund", **args)
        assert ran["status"] == "ok", ran
        again = await call(client, "issue_refund", **args)
        assert again["status"] == "pending_approval" and again["approval_id"] != approval_id
        status = await call(client, "get_action_status", action_id=approval_id)
        assert status["data"]["status"] == "done"
    assert refunds(deployment) == [(ran["data"]["refund_id"], "O-1", 12000)]
    run = records_of(deployment, "outcome", tool="issue_refund", status="ok")
    assert [(r["decision"]["approval_id"], r["decision"]["approved_by"]) for r in run] == [(approval_id, ["anna"])]


async def test_above_the_two_person_amount_two_different_approvers_must_approve(deployment: Deployment) -> None:
    """A 300.00 credit needs anna and ben: anna twice is not two people; the call waits until ben approves."""
    on_clock(deployment)
    demo = deployment.demo
    args = {"account_id": demo.account_id, "amount": "300.00", "reason_code": "sla_breach"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        approval_id = (await call(client, "apply_account_credit", **args))["approval_id"]
        login_as("anna")
        first = deskgate("approvals", "approve", approval_id, "--yes")
        assert first.exit_code == 0 and "waiting for 1 more approver" in first.stdout
        assert deskgate("approvals", "approve", approval_id, "--yes").exit_code == 1
        waiting = await call(client, "apply_account_credit", **args)
        assert (waiting["status"], waiting["approval_id"]) == ("pending_approval", approval_id)
        assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(0,)]
        login_as("ben")
        assert deskgate("approvals", "approve", approval_id, "--yes").exit_code == 0
        assert (await call(client, "apply_account_credit", **args))["status"] == "ok"
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(30000,)]


async def test_twenty_concurrent_repeats_of_an_approved_call_run_it_once(deployment: Deployment,
                                                                        tmp_path: Path) -> None:
    """Exactly one of twenty simultaneous repeats claims the approval; one refund exists."""
    clock = on_clock(deployment, policy_file(tmp_path, NO_REFUND_LIMITS))
    args = refund(deployment.demo.delivered_order, "120.00")
    async with deployment.client(deployment.token("billing-agent")) as client:
        approval_id = (await call(client, "issue_refund", **args))["approval_id"]
        Approvals(deployment.runtime.state_db).decide_sync(approval_id, "anna", True, "", now=clock.now)
        results = await together(20, lambda: call(client, "issue_refund", **args))
    # A loser finds the approval executing or done, or - once done - files a new request for the same call.
    assert [r["status"] for r in results].count("ok") == 1
    assert {(r["status"], r.get("code")) for r in results} <= {
        ("ok", None), ("denied", "approval_executing"), ("denied", "approval_done"), ("pending_approval", "threshold")}
    assert approval_id not in {r.get("approval_id") for r in results}
    assert [(r[1], r[2]) for r in refunds(deployment)] == [("O-1", 12000)]


async def test_an_approved_call_stopped_by_its_idempotency_key_closes_its_approval(deployment: Deployment) -> None:
    """The key was used meanwhile for another call: the approved repeat is refused, and the approval ends
    `failed` (not stuck `executing`) with that refusal; no second credit is paid."""
    on_clock(deployment)
    demo = deployment.demo
    key = {"idempotency_key": "credit-key-0001"}
    large = {"account_id": demo.account_id, "amount": "60.00", "reason_code": "sla_breach", **key}
    small = {**large, "amount": "5.00"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        approval_id = (await call(client, "apply_account_credit", **large))["approval_id"]
        assert (await call(client, "apply_account_credit", **small))["status"] == "ok"
        login_as("anna")
        assert deskgate("approvals", "approve", approval_id, "--yes").exit_code == 0
        refused = await call(client, "apply_account_credit", **large)
        assert (refused["status"], refused["code"]) == ("denied", "idempotency_conflict")
        status = await call(client, "get_action_status", action_id=approval_id)
        assert status["data"]["status"] == "failed"
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(500,)]
