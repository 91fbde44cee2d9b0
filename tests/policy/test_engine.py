"""The policy engine on a real state store and a real SQL support backend, on both engines."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import anyio
import pytest

from deskgate.server.errors import DeniedError, InvalidArguments
from deskgate.server.policy.engine import Decision, PolicyEngine
from deskgate.server.store.state import CounterAdd, RecordedAction, StateStore
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.spec import ToolSpec

from .conftest import NOW, SessionFactory

pytestmark = pytest.mark.anyio


class Caller:
    """One line per call in the tests below."""

    def __init__(self, engine: PolicyEngine, specs: dict[str, ToolSpec], backend: SqlSupportBackend,
                 session: SessionFactory) -> None:
        self.engine, self.specs, self.backend, self.session = engine, specs, backend, session

    async def __call__(self, tool: str, *, now: int = NOW, sid: str = "sid-1", max_refund: str | None = None,
                       target: RecordedAction | None = None, **args: Any) -> Decision:
        amount = Decimal(args["amount"]) if "amount" in args else None
        return await self.engine.decide(self.specs[tool], self.session(sid, max_refund=max_refund), args,
                                        amount=amount, backend=self.backend, now=now, request_id=uuid.uuid4().hex,
                                        target=target)


@pytest.fixture
def call(engine: PolicyEngine, specs: dict[str, ToolSpec], backend: SqlSupportBackend,
         session: SessionFactory) -> Caller:
    return Caller(engine, specs, backend, session)


def refund(amount: str, order: str = "O-1", **extra: Any) -> dict[str, Any]:
    return {"order_id": order, "amount": amount, "reason_code": "damaged_item", **extra}


# -- tiers and thresholds ------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "tier"), [("0.01", "automate"), ("50.00", "automate"), ("50.01", "assist"),
                                              ("500.00", "assist"), ("500.01", "escalate")])
async def test_refund_amounts_move_between_tiers_at_the_thresholds(call: Caller, amount: str, tier: str) -> None:
    """Up to 50 automate, up to 500 assist, above escalate - and the version is stamped."""
    decision = await call("issue_refund", **refund(amount))
    assert decision.tier == tier
    assert decision.policy_version == call.engine.version
    assert decision.code == ("allowed" if tier == "automate" else "threshold")


@pytest.mark.parametrize(("amount", "tier"), [("50.00", "automate"), ("120.00", "assist"), ("900.00", "escalate")])
async def test_credit_amounts_move_between_tiers_likewise(call: Caller, amount: str, tier: str) -> None:
    """Credits follow their own thresholds."""
    decision = await call("apply_account_credit", account_id="A-1", amount=amount, reason_code="goodwill")
    assert decision.tier == tier


async def test_an_irreversible_refund_asks_the_agent_to_confirm(call: Caller) -> None:
    """Automate tier, agent confirmation; a reversible credit needs none."""
    assert (await call("issue_refund", **refund("10.00"))).needs_confirmation
    credit = await call("apply_account_credit", account_id="A-1", amount="10.00", reason_code="goodwill")
    assert not credit.needs_confirmation
    assert not (await call("issue_refund", **refund("100.00"))).needs_confirmation  # assist: the approver confirms


async def test_an_amount_with_more_than_two_decimals_is_invalid(call: Caller) -> None:
    """Money is counted in cents; a fraction of a cent is refused, not rounded."""
    with pytest.raises(InvalidArguments):
        await call("issue_refund", **refund("10.001"))


# -- gates -------------------------------------------------------------------------------------

async def test_a_non_admin_cannot_cancel_the_account_subscription(call: Caller) -> None:
    """C-2 is a member, not an admin, of A-1: denied, whatever else is true."""
    decision = await call("cancel_subscription", subscription_id="S-1", requester_id="C-2", reason_code="not_using")
    assert (decision.tier, decision.code) == ("deny", "gate_requester_is_account_admin")
    assert "Only an admin" in decision.reason


async def test_a_stranger_cannot_cancel_either(call: Caller) -> None:
    """C-3 is not a member of A-1 at all."""
    decision = await call("cancel_subscription", subscription_id="S-1", requester_id="C-3", reason_code="not_using")
    assert decision.tier == "deny"


async def test_the_admin_cancels_with_the_customer_confirming(call: Caller) -> None:
    """C-1 is admin of A-1, which has no open invoice: automate, confirmed by the customer."""
    decision = await call("cancel_subscription", subscription_id="S-1", requester_id="C-1", reason_code="not_using")
    assert (decision.tier, decision.confirmation) == ("automate", "customer")


async def test_cancelling_with_open_invoices_escalates_to_a_specialist(call: Caller) -> None:
    """C-4 is admin of A-2, which has an open invoice: escalate, not cancel."""
    decision = await call("cancel_subscription", subscription_id="S-2", requester_id="C-4", reason_code="not_using")
    assert (decision.tier, decision.code) == ("escalate", "gate_account_has_open_invoices")


async def test_a_refund_on_an_account_with_open_invoices_escalates(call: Caller) -> None:
    """O-2 belongs to C-4, the admin of A-2 with an open invoice; O-1 is a consumer order."""
    assert (await call("issue_refund", **refund("10.00", order="O-2"))).tier == "escalate"
    assert (await call("issue_refund", **refund("10.00", order="O-1"))).tier == "automate"


async def test_a_refund_needs_a_reason_code_from_the_list(call: Caller) -> None:
    """A code outside the refund list, or one from another list, is denied."""
    for code in ("because_i_said_so", "goodwill"):
        decision = await call("issue_refund", order_id="O-1", amount="10.00", reason_code=code)
        assert (decision.tier, decision.code) == ("deny", "gate_reason_code_allowed")


async def test_a_denial_outranks_an_escalation_and_reports_every_failed_gate(call: Caller) -> None:
    """A non-admin asking to cancel an account with open invoices is simply refused."""
    await call.backend.db.write(lambda tx: tx.execute(
        "INSERT INTO account_members (account_id, customer_id, role) VALUES ('A-2', 'C-2', 'member')"))
    decision = await call("cancel_subscription", subscription_id="S-2", requester_id="C-2", reason_code="bogus")
    assert decision.tier == "deny"
    assert len(decision.reasons) == 3


@pytest.mark.parametrize(("tool", "args"), [
    ("initiate_password_reset", {"customer_id": "C-3"}),
    ("change_shipping_address", {"order_id": "O-1", "line1": "2 Low St"}),
])
async def test_sensitive_changes_need_identity_verified_in_this_session(call: Caller, state: StateStore, tool: str,
                                                                       args: dict[str, Any]) -> None:
    """Denied before verify_identity; allowed after it, in this session only."""
    assert (await call(tool, **args)).tier == "deny"
    await state.verifications.mark("sid-1", "C-3", "postcode", NOW)
    assert (await call(tool, **args)).tier == "automate"
    assert (await call(tool, sid="sid-2", **args)).tier == "deny"


async def test_the_customer_who_confirms_a_cancellation_is_the_requester(call: Caller, session: SessionFactory) -> None:
    """A customer code goes to the person who asked, not to whoever owns the subscription row."""
    args = {"subscription_id": "S-1", "requester_id": "C-2", "reason_code": "not_using"}
    spec = call.specs["cancel_subscription"]
    assert await call.engine.customer_of(spec, session(), args, call.backend) == "C-2"
    refund_spec = call.specs["issue_refund"]
    assert await call.engine.customer_of(refund_spec, session(), refund("1.00"), call.backend) == "C-3"


# -- rate limits -------------------------------------------------------------------------------

async def test_fifty_concurrent_decisions_respect_a_limit_exactly(call: Caller) -> None:
    """add_ticket_note allows 60 per session per hour; 50 + 50 concurrent calls -> exactly 60 pass."""
    decisions: list[Decision] = []

    async def one() -> None:
        decisions.append(await call("add_ticket_note", ticket_id="T-1", body="note"))

    with anyio.fail_after(60):
        for _ in range(2):
            async with anyio.create_task_group() as tg:
                for _ in range(50):
                    tg.start_soon(one)
    assert sum(d.tier == "automate" for d in decisions) == 60
    assert sum(d.code == "rate_limited" for d in decisions) == 40


async def test_unbounded_retries_end_in_a_clear_refusal_until_the_window_ends(call: Caller) -> None:
    """Every call that runs counts; the refusal says how long to wait; the next window starts afresh."""
    results = [await call("escalate_to_human", ticket_id="T-1", body="help") for _ in range(8)]
    assert [d.tier for d in results] == ["automate"] * 5 + ["deny"] * 3
    assert "at most 5 times per 1h" in results[-1].reason and "Do not retry for 1h" in results[-1].reason
    assert (await call("escalate_to_human", now=NOW + 3600, ticket_id="T-1", body="help")).tier == "automate"


async def test_a_per_customer_limit_spans_sessions(call: Caller, state: StateStore) -> None:
    """Three password resets per customer per day, whichever sessions ask."""
    for sid in ("a", "b", "c", "d"):
        await state.verifications.mark(sid, "C-3", "postcode", NOW)
    tiers = [(await call("initiate_password_reset", sid=sid, customer_id="C-3")).tier for sid in "abcd"]
    assert tiers == ["automate", "automate", "automate", "deny"]


# -- session cap and the money breaker -------------------------------------------------------

async def test_the_session_cap_counts_refunds_and_credits_together(call: Caller) -> None:
    """max_refund 60: a credit of 40 runs, then a refund of 30 is refused."""
    credit = await call("apply_account_credit", max_refund="60", account_id="A-1", amount="40.00",
                        reason_code="goodwill")
    assert credit.reservation is not None
    refused = await call("issue_refund", max_refund="60", confirmation_token="t", **refund("30.00"))
    assert (refused.tier, refused.code) == ("deny", "session_cap")


async def test_released_money_does_not_count(call: Caller) -> None:
    """A reserved call that fails gives its money back to the cap and the breaker."""
    first = await call("issue_refund", max_refund="50", confirmation_token="t", **refund("50.00"))
    assert first.reservation is not None
    await call.engine.release(first.reservation)
    second = await call("issue_refund", max_refund="50", confirmation_token="t", **refund("50.00"))
    assert second.tier == "automate" and second.reservation is not None


async def test_a_preview_reserves_nothing(call: Caller, state: StateStore) -> None:
    """Money and actions are reserved only when the call runs: the confirmed repeat, not the preview."""
    preview = await call("issue_refund", **refund("40.00"))
    assert preview.needs_confirmation and preview.reservation is None
    assert await state.counters.get("spend:sid-1", 0) == 0
    assert await state.counters.get("rate:issue_refund:customer:86400:C-1", NOW - NOW % 86400) == 0


async def test_previews_and_refusals_count_no_action_but_a_full_limit_refuses_a_preview(
        call: Caller, state: StateStore) -> None:
    """Seven previews and a made-up reason code leave the customer's six refunds a day untouched; six
    confirmed refunds fill it; then even a preview is refused (it would be at the confirmed repeat)."""
    for _ in range(7):
        assert (await call("issue_refund", **refund("5.00"))).needs_confirmation
    assert (await call("issue_refund", **refund("5.00", reason_code="because"))).tier == "deny"
    for sid in ("s1", "s2", "s3", "s4", "s5", "s6"):
        ran = await call("issue_refund", sid=sid, confirmation_token="t", **refund("5.00"))
        assert ran.reservation is not None
    preview = await call("issue_refund", sid="s7", **refund("5.00"))
    assert (preview.tier, preview.code) == ("deny", "rate_limited") and "per customer" in preview.reason


async def test_a_released_reservation_gives_back_the_action_it_counted(call: Caller) -> None:
    """A confirmed refund that then failed counts nothing: the seventh still runs once one is released."""
    held = [await call("issue_refund", sid=f"s{i}", confirmation_token="t", **refund("5.00")) for i in range(6)]
    assert (await call("issue_refund", sid="s6", confirmation_token="t", **refund("5.00"))).code == "rate_limited"
    await call.engine.release(held[0].reservation)
    await call.engine.release(held[0].reservation)  # settled once: a second release gives back nothing more
    assert (await call("issue_refund", sid="s6", confirmation_token="t", **refund("5.00"))).reservation is not None
    assert (await call("issue_refund", sid="s7", confirmation_token="t", **refund("5.00"))).code == "rate_limited"


async def test_the_money_breaker_trips_once_and_holds_money_tools_at_assist_until_reset(
        call: Caller, state: StateStore) -> None:
    """1500 per hour: 30 credits of 50 pass, the 31st trips (audited once), then assist until reset."""
    args = {"account_id": "A-1", "amount": "50.00", "reason_code": "goodwill"}
    for i in range(30):
        assert (await call("apply_account_credit", sid=f"s{i}", **args)).tier == "automate"
    trip = await call("apply_account_credit", sid="s30", **args)
    assert (trip.tier, trip.code) == ("assist", "breaker_open")
    assert [e["event"] for e in trip.events] == ["breaker_trip"]
    assert trip.audit()["events"][0]["breaker"] == "money"
    after = await call("issue_refund", sid="s31", **refund("1.00"))
    assert (after.tier, after.code, after.events) == ("assist", "breaker_open", ())
    assert state.breakers.reset_sync("money", by="anna", now=NOW)
    assert (await call("issue_refund", sid="s32", now=NOW + 3600, **refund("1.00"))).tier == "automate"


async def test_a_preview_that_would_pass_the_breaker_trips_it(call: Caller, state: StateStore) -> None:
    """An honest preview: a refund that would take the hour over the limit goes to an approver."""
    await state.counters.add_within("breaker:money:EUR", NOW - NOW % 3600, 149_000, None)
    decision = await call("issue_refund", **refund("20.00"))
    assert (decision.tier, decision.code) == ("assist", "breaker_open")
    assert "money" in await state.breakers.tripped()


async def test_the_breaker_counts_each_currency_apart(call: Caller, state: StateStore,
                                                     backend: SqlSupportBackend) -> None:
    """1490 EUR this hour: a 20 GBP credit runs (its hour is empty), a 20 EUR refund trips, naming EUR."""
    backend.db.write_sync(lambda tx: tx.execute("UPDATE accounts SET currency = 'GBP' WHERE id = 'A-2'"))
    await state.counters.add_within("breaker:money:EUR", NOW - NOW % 3600, 149_000, None)
    gbp = await call("apply_account_credit", account_id="A-2", amount="20.00", reason_code="goodwill")
    assert (gbp.tier, gbp.currency) == ("automate", "GBP") and gbp.reservation is not None
    eur = await call("issue_refund", confirmation_token="t", **refund("20.00"))
    assert (eur.tier, eur.code) == ("assist", "breaker_open")
    assert eur.events[0]["currency"] == "EUR" and eur.events[0]["reason"].startswith("EUR hour total 1490.00")


async def test_concurrent_approved_reservations_never_pass_the_session_cap(call: Caller, session: SessionFactory,
                                                                          engine: PolicyEngine) -> None:
    """Ten approved 60.00 credits counted at once against a cap of 200.00: three are, seven are refused."""
    decision = await call("apply_account_credit", max_refund="200", account_id="A-1", amount="60.00",
                          reason_code="goodwill")
    assert decision.tier == "assist" and decision.reservation is None
    capped = session(max_refund="200")
    outcomes: list[str] = []

    async def reserve() -> None:
        try:
            await engine.reserve_approved(uuid.uuid4().hex, capped, decision, NOW)
            outcomes.append("reserved")
        except DeniedError as refusal:
            outcomes.append(refusal.code)

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(reserve)
    assert sorted(outcomes) == ["reserved"] * 3 + ["session_cap"] * 7


async def test_counters_add_all_or_nothing(state: StateStore) -> None:
    """One addition past its limit refuses them all; the totals say where each counter stands."""
    within, past = CounterAdd("a", 0, 5, 10), CounterAdd("b", 0, 11, 10)
    assert await state.counters.add_all_within([within, past]) == (past, (0, 0))
    assert await state.counters.add_all_within([within, CounterAdd("b", 0, 10, 10)]) == (None, (5, 10))


async def test_an_undo_passes_the_tier_limits_and_breaker_of_the_tool_that_made_the_action(
        call: Caller, state: StateStore) -> None:
    """Undoing a 120.00 credit is assist; undoing a 10.00 one automates; undos that run count as credits
    against the credit tool's session limit (the assist one, not run, counts nothing); once the breaker
    trips an undo waits for an approver, and with the limit full only an approved one could run."""
    def credit(amount: str) -> RecordedAction:
        return RecordedAction("ACT-1", "apply_account_credit", "sid-1", "agent-7", "r", Decimal(amount), NOW)

    undo = {"action_id": "ACT-1", "account_id": "A-1"}
    for _ in range(3):
        await call("apply_account_credit", account_id="A-1", amount="1.00", reason_code="goodwill")
    large = await call("undo_action", target=credit("120.00"), **undo)
    assert (large.tier, large.code) == ("assist", "threshold")
    for _ in range(17):  # 20 credit actions an hour per session: 3 credits ran already
        ran = await call("undo_action", target=credit("10.00"), **undo)
        assert (ran.tier, ran.reservation is not None) == ("automate", True)
    limited = await call("undo_action", target=credit("10.00"), **undo)
    assert (limited.tier, limited.code) == ("deny", "rate_limited") and "apply_account_credit" in limited.reason
    await state.breakers.trip("money", "EUR hour total", NOW)
    held = await call("undo_action", target=credit("10.00"), **undo)
    assert (held.tier, held.code, held.reservation) == ("assist", "breaker_open", None)
    assert held.limited is not None and "apply_account_credit" in held.limited


# -- get_policy --------------------------------------------------------------------------------

async def test_the_view_shows_only_the_tools_the_session_may_call(engine: PolicyEngine,
                                                                  session: SessionFactory) -> None:
    """Scopes filter the tools; undo windows, thresholds and the session cap are explained."""
    view = engine.view_for(session(scopes=frozenset({"credits:write"}), max_refund="75.00"))
    assert set(view["tools"]) == {"apply_account_credit"}
    credit = view["tools"]["apply_account_credit"]
    assert credit["undo_window_seconds"] == 86400
    assert credit["thresholds"][0] == {"above": "50.00", "tier": "assist"}
    assert "goodwill" in credit["reason_codes"]
    assert view["session"] == {"max_refund": "75.00"}
    assert view["policy_version"] == engine.version
