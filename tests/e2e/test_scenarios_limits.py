"""Business limits count executed actions, not attempts; the attempt limit stops a runaway session.

The shipped policy allows a customer 6 refunds a day. Previews, confirmations that do not match,
refusals, polls of a pending approval and idempotent replays count none of them; a call a human
approved, and the replay of a finished call, are never refused by a limit; a tool moved to `assist`
counts exactly as it did at `automate`. Each scenario goes through a real MCP client and checks the
refunds that really exist and the counters in the shared state store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deskgate.server.policy.approvals import Approvals
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import confirmed, on_clock, policy_file, refunds, together

pytestmark = pytest.mark.anyio

DAY = 86400


def refund(order_id: str, amount: str, **extra: Any) -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "reason_code": "damaged_item", **extra}


async def refunds_counted(d: Deployment, now: int, customer: str = "C-1") -> int:
    """The customer's refunds counted today by the shipped per-customer limit."""
    return await d.runtime.state.counters.get(f"rate:issue_refund:customer:{DAY}:{customer}", now - now % DAY)


async def test_one_refund_and_a_type_mismatch_do_not_lock_a_customer_out(deployment: Deployment) -> None:
    """One real refund, then previews, a mismatched confirmation and a refused reason code: the customer's
    limit counted one refund, five more run, and only the seventh refund of the day is refused."""
    clock = on_clock(deployment)
    order = deployment.demo.delivered_order
    async with deployment.client(deployment.token("billing-agent")) as client:
        assert (await confirmed(client, "issue_refund", **refund(order, "5.00")))["status"] == "ok"
        token = (await call(client, "issue_refund", **refund(order, "5.00")))["confirmation_token"]
        mismatch = await call(client, "issue_refund", **refund(order, "5.01"), confirmation_token=token)
        assert mismatch["code"] == "confirmation_mismatch"
        for _ in range(4):
            assert (await call(client, "issue_refund", **refund(order, "5.00")))["status"] == "confirmation_required"
        made_up = await call(client, "issue_refund", **{**refund(order, "5.00"), "reason_code": "because"})
        assert (made_up["status"], made_up["code"]) == ("error", "invalid_arguments")  # not in the enum
        assert await refunds_counted(deployment, clock.now) == 1
        for _ in range(5):
            assert (await confirmed(client, "issue_refund", **refund(order, "5.00")))["status"] == "ok"
        seventh = await call(client, "issue_refund", **refund(order, "5.00"))
        assert (seventh["status"], seventh["code"]) == ("denied", "rate_limited")
        assert "per customer" in seventh["reason"]
    assert [r[2] for r in refunds(deployment)] == [500] * 6
    assert await refunds_counted(deployment, clock.now) == 6


async def test_an_approved_refund_runs_though_the_customers_limit_filled_up_meanwhile(
        deployment: Deployment) -> None:
    """A 60.00 refund waits for an approver; six small refunds fill the customer's day meanwhile; the
    approved call still runs - a human approved it - and is counted; a new request is then refused."""
    clock = on_clock(deployment)
    demo = deployment.demo
    big = refund(demo.delivered_order, "60.00")
    async with deployment.client(deployment.token("billing-agent")) as client:
        approval_id = (await call(client, "issue_refund", **big))["approval_id"]
        for _ in range(6):
            assert (await confirmed(client, "issue_refund", **refund(demo.pending_order, "1.00")))["status"] == "ok"
        Approvals(deployment.runtime.state_db).decide_sync(approval_id, "anna", True, "", now=clock.now)
        ran = await call(client, "issue_refund", **big)
        assert ran["status"] == "ok", ran
        another = await call(client, "issue_refund", **refund(demo.delivered_order, "70.00"))
        assert (another["status"], another["code"]) == ("denied", "rate_limited")
    assert sorted(r[2] for r in refunds(deployment)) == [100] * 6 + [6000]
    assert await refunds_counted(deployment, clock.now) == 7


async def test_an_approved_call_claimed_by_twenty_repeats_at_once_runs_once_and_counts_once(
        deployment: Deployment) -> None:
    """Twenty simultaneous repeats of one approved refund: one runs, the customer's limit and the session's
    spend count it once, and five more refunds fill the day exactly."""
    clock = on_clock(deployment)
    demo = deployment.demo
    big = refund(demo.delivered_order, "60.00")
    async with deployment.client(deployment.token("billing-agent")) as client:
        approval_id = (await call(client, "issue_refund", **big))["approval_id"]
        Approvals(deployment.runtime.state_db).decide_sync(approval_id, "anna", True, "", now=clock.now)
        results = await together(20, lambda: call(client, "issue_refund", **big))
        assert [r["status"] for r in results].count("ok") == 1
        assert await refunds_counted(deployment, clock.now) == 1
        for _ in range(5):
            assert (await confirmed(client, "issue_refund", **refund(demo.pending_order, "1.00")))["status"] == "ok"
        full = await call(client, "issue_refund", **refund(demo.pending_order, "1.00"))
        assert full["code"] == "rate_limited"
    assert sorted(r[2] for r in refunds(deployment)) == [100] * 5 + [6000]
    session_spend = deployment.runtime.state_db.read_sync(lambda tx: tx.query(
        "SELECT value FROM counters WHERE key LIKE 'spend:%'"))
    assert session_spend == [(6500,)]


async def test_an_idempotent_replay_is_never_refused_by_a_limit(deployment: Deployment) -> None:
    """The customer's sixth refund carried a key; its retry after the day is full answers the first result
    (no second refund) instead of a refusal, and counts nothing."""
    clock = on_clock(deployment)
    order = deployment.demo.delivered_order
    keyed = refund(order, "2.00", idempotency_key="ticket-T-1-refund-6")
    async with deployment.client(deployment.token("billing-agent")) as client:
        for _ in range(5):
            assert (await confirmed(client, "issue_refund", **refund(order, "1.00")))["status"] == "ok"
        preview = await call(client, "issue_refund", **keyed)
        first = await call(client, "issue_refund", **keyed, confirmation_token=preview["confirmation_token"])
        assert first["status"] == "ok"
        replay = await call(client, "issue_refund", **keyed, confirmation_token=preview["confirmation_token"])
        assert replay["status"] == "ok" and replay["data"] == first["data"], replay
    assert [r[2] for r in refunds(deployment)] == [100] * 5 + [200]
    assert await refunds_counted(deployment, clock.now) == 6


async def test_a_tool_moved_to_assist_counts_its_limits_exactly_as_at_automate(
        deployment: Deployment, tmp_path: Path) -> None:
    """Every refund needs an approver: polling a pending approval ten times counts nothing (at automate
    the previews count nothing either); the approved refund counts one, like a confirmed one."""
    policy = policy_file(tmp_path, ('tier = "automate"               # up to 50.00\nconfirmation = "agent"',
                                    'tier = "assist"\nconfirmation = "agent"'),
                         ('    { above = "50.00", tier = "assist" },      # 50.01 - 500.00: an approver decides\n',
                          ''))
    clock = on_clock(deployment, policy)
    args = refund(deployment.demo.delivered_order, "5.00")
    async with deployment.client(deployment.token("billing-agent")) as client:
        polls = [await call(client, "issue_refund", **args) for _ in range(10)]
        assert {(p["status"], p["approval_id"]) for p in polls} == {("pending_approval", polls[0]["approval_id"])}
        assert await refunds_counted(deployment, clock.now) == 0
        Approvals(deployment.runtime.state_db).decide_sync(polls[0]["approval_id"], "anna", True, "", now=clock.now)
        assert (await call(client, "issue_refund", **args))["status"] == "ok"
    assert await refunds_counted(deployment, clock.now) == 1
    assert [r[2] for r in refunds(deployment)] == [500]


async def test_a_runaway_session_is_stopped_by_the_attempt_limit_but_an_approved_call_still_runs(
        deployment: Deployment, tmp_path: Path) -> None:
    """[attempts] max = 5: previews and refusals count as attempts; the sixth write call is refused
    attempt_limited, whatever it asks; the repeat of an approved call still runs; an idempotent replay
    is never refused either."""
    clock = on_clock(deployment, policy_file(tmp_path, ("max = 200 ", "max = 5 ")))
    demo = deployment.demo
    big = refund(demo.delivered_order, "60.00")
    keyed = {"account_id": demo.account_id, "amount": "3.00", "reason_code": "goodwill",
             "idempotency_key": "credit-key-0001"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        approval_id = (await call(client, "issue_refund", **big))["approval_id"]             # 1
        credited = await call(client, "apply_account_credit", **keyed)                         # 2
        assert credited["status"] == "ok"
        for _ in range(3):                                                                      # 3-5
            await call(client, "issue_refund", **refund(demo.pending_order, "1.00"))
        runaway = await call(client, "issue_refund", **refund(demo.pending_order, "1.00"))
        assert (runaway["status"], runaway["code"]) == ("denied", "attempt_limited")
        replay = await call(client, "apply_account_credit", **keyed)
        assert replay["status"] == "ok" and replay["data"] == credited["data"]
        still_pending = await call(client, "issue_refund", **big)
        assert (still_pending["status"], still_pending["code"]) == ("denied", "attempt_limited")
        Approvals(deployment.runtime.state_db).decide_sync(approval_id, "anna", True, "", now=clock.now)
        ran = await call(client, "issue_refund", **big)
        assert ran["status"] == "ok", ran
    assert [r[2] for r in refunds(deployment)] == [6000]
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(300,)]


async def test_ten_confirmed_refunds_redeemed_at_once_respect_the_customers_six_exactly(
        deployment: Deployment) -> None:
    """Ten previews (counting nothing), then their ten confirmed repeats at once: exactly six refunds run
    and count, four are refused rate_limited - the reservation checks and counts in one step."""
    clock = on_clock(deployment)
    args = refund(deployment.demo.delivered_order, "1.00")
    async with deployment.client(deployment.token("billing-agent")) as client:
        tokens = [(await call(client, "issue_refund", **args))["confirmation_token"] for _ in range(10)]
        assert await refunds_counted(deployment, clock.now) == 0
        pending = iter(tokens)
        results = await together(10, lambda: call(client, "issue_refund", **args, confirmation_token=next(pending)))
    answers = sorted((r["status"], r.get("code")) for r in results)
    assert answers == [("denied", "rate_limited")] * 4 + [("ok", None)] * 6
    assert [r[2] for r in refunds(deployment)] == [100] * 6
    assert await refunds_counted(deployment, clock.now) == 6
