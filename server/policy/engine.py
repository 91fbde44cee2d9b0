"""The policy engine: stage 4 of the guard chain. One `decide` per call, on the policy as data.

    decide(spec, session, arguments, amount, target)
      1. rate limits   every attempt counts (previews and refusals too), so retries end in a refusal
      2. thresholds    the amount picks the tier
      3. gates         named facts; a failed gate denies, or moves the call to assist / escalate
      4. session cap   refunds + credits of the session may not pass `Session.max_refund`
      5. breaker       money paid out per hour and per currency across all sessions; once tripped,
                       money tools are assist until an admin resets it (`deskgate breakers reset`)
      -> Decision      tier, machine code, reasons, confirmation kind, audit events, reservation

A call on a recorded action (`target`: `undo_action`) passes its own rules *and* those of the tool
that made the action: that tool's rate limits (counted as its calls), its thresholds on the
action's amount, and for a money tool the breaker.

The strictest outcome wins: deny > escalate > assist > automate. Counters are consumed atomically
in the state store, so 50 concurrent calls respect a limit exactly, across server processes.

Money is *reserved* (session spend and the breaker's hour of its currency, in one atomic
check-and-add: `Counters.add_all_within`) only for a call that runs now: an automate call with no
confirmation, the confirmed repeat, or an approved call (`reserve_approved`, which checks the
session cap the same way). The chain MUST `release` the reservation when that call then fails (bad
confirmation, backend refusal), so money that was not paid out does not count.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from deskgate.server.errors import DeniedError, InvalidArguments, NotFound
from deskgate.server.policy.facts import FACTS, FactContext
from deskgate.server.policy.model import TIER_RANK, ConfirmationKind, Limit, Policy, ToolRules, policy_version
from deskgate.server.store.state import CounterAdd

if TYPE_CHECKING:
    from deskgate.scopes.session import Session
    from deskgate.server.store.state import RecordedAction, StateStore
    from deskgate.tools.backend.base import SupportBackend
    from deskgate.tools.spec import ToolSpec

Verdict = Literal["automate", "assist", "escalate", "deny"]
MONEY_BREAKER = "money"
_HOUR = 3600


def to_cents(amount: Decimal) -> int:
    """Counters hold whole cents: exact, and an integer column on both engines."""
    try:
        cents = amount * 100
        if not amount.is_finite() or amount <= 0 or cents != cents.to_integral_value():
            raise InvalidOperation
    except InvalidOperation:
        raise InvalidArguments("amount must be positive with at most two decimals", code="invalid_amount") from None
    return int(cents)


def _cents_text(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def _duration_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def breaker_key(currency: str) -> str:
    """The money breaker's counter of one currency: amounts in different currencies never add up."""
    return f"breaker:{MONEY_BREAKER}:{currency}"


@dataclass(frozen=True, slots=True)
class Reservation:
    """Money counted for a call about to run, in one currency; `PolicyEngine.release` gives it back."""

    cents: int
    currency: str
    spend_key: str
    breaker_window: int

    def counted(self, sign: int, *, cap: int | None = None, hour_limit: int | None = None) -> list[CounterAdd]:
        """The session's spend and its currency's breaker hour, each within the limit given (None: none)."""
        return [CounterAdd(self.spend_key, 0, sign * self.cents, cap),
                CounterAdd(breaker_key(self.currency), self.breaker_window, sign * self.cents, hour_limit)]


@dataclass(frozen=True, slots=True)
class Decision:
    tool: str
    tier: Verdict
    code: str                      # machine-readable: allowed, threshold, gate_<fact>, rate_limited, ...
    reasons: tuple[str, ...]       # human-readable, safe to show the agent and to audit
    confirmation: ConfirmationKind
    policy_version: str
    amount: Decimal | None = None
    events: tuple[dict[str, Any], ...] = ()  # separate audit records (a breaker trip), each once
    reservation: Reservation | None = None
    currency: str | None = None    # of the money a money tool would pay out

    @property
    def needs_confirmation(self) -> bool:
        """Stage 5 applies to calls that would run now; an assist call is confirmed by its approver."""
        return self.tier == "automate" and self.confirmation != "none"

    @property
    def reason(self) -> str:
        return " ".join(self.reasons)

    def audit(self) -> dict[str, Any]:
        """The decision for the call's audit record, with any breaker trip it caused (once)."""
        record = {"tier": self.tier, "code": self.code, "reasons": list(self.reasons),
                  "confirmation": self.confirmation, "policy_version": self.policy_version,
                  "amount": None if self.amount is None else str(self.amount)}
        if self.currency is not None:
            record["currency"] = self.currency
        if self.events:
            record["events"] = list(self.events)
        return record


class PolicyEngine:
    """Compiled once at start-up from a validated `Policy` and the tool catalogue."""

    def __init__(self, policy: Policy, tools: Iterable[ToolSpec], state: StateStore) -> None:
        self.policy = policy
        self.version = policy_version(policy)
        self._specs = {t.name: t for t in tools}
        self._state = state
        self._breaker_limit = to_cents(policy.money_breaker.per_hour)
        self._views: dict[frozenset[str], dict[str, Any]] = {}

    async def decide(self, spec: ToolSpec, session: Session, arguments: Mapping[str, Any], *,
                     amount: Decimal | None, backend: SupportBackend, now: int,
                     target: RecordedAction | None = None) -> Decision:
        """Decide one call. `arguments` are the raw JSON arguments, `amount` the validated amount,
        `target` the recorded action the call acts on (an undo), resolved and owned (stage 3)."""
        rules = self.policy.rules_for(spec.name, session.scopes)  # a role's own rules, if it has them
        if spec.read_only:
            return self._decision(spec.name, "automate", "read_only", ["Read-only tool."], "none")
        if rules is None:  # unreachable after load_policy's cross-check; deny by default regardless
            return self._decision(spec.name, "deny", "no_policy", ["No policy covers this tool."], "none")
        cents = to_cents(amount) if spec.money and amount is not None else None
        if spec.money and cents is None:
            raise InvalidArguments("a money tool needs an amount", code="invalid_amount")
        facts = FactContext(spec.name, arguments, session, backend, self._state,
                            self.policy.allowed_reason_codes(spec.name))
        # The rules the call passes: its own and, on a recorded action, those of the tool that made it.
        applied: list[tuple[str, ToolRules, Decimal | None]] = [(spec.name, rules, amount)]
        if target is not None:
            original = self.policy.rules_for(target.tool, session.scopes)
            if original is None:
                return self._decision(spec.name, "deny", "no_policy", ["No policy covers this action's tool."],
                                      rules.confirmation)
            applied.append((target.tool, original, target.amount))

        # 1. rate limits
        for name, each, _ in applied:
            for limit in each.limits:
                refusal = await self._consume(name, limit, facts, now)
                if refusal is not None:
                    return self._decision(spec.name, "deny", "rate_limited", [refusal], rules.confirmation, amount)

        # 2. thresholds: the strictest tier any applied rule gives its amount
        verdict: Verdict = rules.tier
        code, reasons = "allowed", []
        for _, each, each_amount in applied:
            tier, threshold = each.tier_for(each_amount)
            if TIER_RANK[tier] > TIER_RANK[verdict]:
                verdict = tier
            if threshold is not None:
                code = "threshold"
                reasons.append(f"Amounts above {threshold.above} are {tier} tier.")

        # 3. gates: all evaluated and reported; the strictest failure names the code
        for gate in rules.gates:
            if await FACTS[gate.fact].fn(facts) == gate.must_be:
                continue
            reasons.append(gate.reason)
            if TIER_RANK[gate.otherwise] > TIER_RANK[verdict]:
                verdict, code = gate.otherwise, f"gate_{gate.fact}"
        if (target is not None and self._specs[target.tool].money and TIER_RANK[verdict] < TIER_RANK["assist"]
                and MONEY_BREAKER in await self._state.breakers.tripped()):
            verdict, code = "assist", "breaker_open"
            reasons.append("The money breaker is open: undoing a money action needs an approver until an admin "
                           "resets it.")
        if cents is None or verdict in ("deny", "escalate"):
            return self._decision(spec.name, verdict, code, reasons, rules.confirmation, amount)
        currency = await facts.currency()

        # 4. session cap, for whatever would pay out (an approver cannot lift the token's cap); the
        # reservation below checks it again atomically - this early answer only spares a useless approval
        spend_key = f"spend:{session.sid}"
        cap = None if session.max_refund is None else to_cents(session.max_refund)
        if cap is not None and await self._state.counters.get(spend_key, 0) + cents > cap:
            return self._session_cap(spec.name, session, rules.confirmation, amount, currency)
        if verdict == "assist":
            return self._decision(spec.name, verdict, code, reasons, rules.confirmation, amount, currency=currency)

        # 5. money breaker, and the reservation of a call that runs now
        runs_now = rules.confirmation == "none" or bool(arguments.get("confirmation_token"))
        tripped, events, reservation = await self._breaker(spec.name, spend_key, cents, cap, currency, now, runs_now)
        if tripped:
            reasons = [f"Refunds and credits paid out this hour reached the money breaker's limit "
                       f"({self.policy.money_breaker.per_hour} per currency): money actions need an approver "
                       "until an admin resets the breaker."]
            return self._decision(spec.name, "assist", "breaker_open", reasons, rules.confirmation, amount, events,
                                  currency=currency)
        if runs_now and reservation is None:  # the session cap filled up since the check above
            return self._session_cap(spec.name, session, rules.confirmation, amount, currency)
        return self._decision(spec.name, "automate", code, reasons, rules.confirmation, amount,
                              reservation=reservation, currency=currency)

    async def release(self, reservation: Reservation | None) -> None:
        """Give back money reserved for a call that did not run (or failed), in one transaction."""
        if reservation is None:
            return
        await self._state.counters.add_all_within(reservation.counted(-1))

    async def reserve_approved(self, tool: str, session: Session, decision: Decision, now: int) -> Reservation | None:
        """Count an approved call's payout as it runs: one atomic check-and-add against the session cap
        (which no approver can lift); the approver may pass the breaker's limit. None: nothing to count.
        A payout the session cap no longer allows is refused (`DeniedError`, code session_cap)."""
        spec = self._specs.get(tool)
        if spec is None or not spec.money or decision.amount is None or decision.currency is None:
            return None
        cents, window = to_cents(decision.amount), now - now % _HOUR
        cap = None if session.max_refund is None else to_cents(session.max_refund)
        reservation = Reservation(cents, decision.currency, f"spend:{session.sid}", window)
        refused, _ = await self._state.counters.add_all_within(reservation.counted(+1, cap=cap))
        if refused is not None:
            raise DeniedError(self._session_cap_reason(session), code="session_cap")
        return reservation

    async def customer_of(self, spec: ToolSpec, session: Session, arguments: Mapping[str, Any],
                          backend: SupportBackend) -> str | None:
        """Who a call acts on - the requester of an account-level call: the one a customer code goes to."""
        return await FactContext(spec.name, arguments, session, backend, self._state, frozenset()).customer()

    def view_for(self, session: Session) -> dict[str, Any]:
        """The rules that apply to this session, for the `get_policy` tool."""
        if session.scopes not in self._views:
            self._views[session.scopes] = self._compile_view(session.scopes)
        view = copy.deepcopy(self._views[session.scopes])
        view["session"] = {"max_refund": None if session.max_refund is None else str(session.max_refund)}
        return view

    # -- internals ---------------------------------------------------------------------------

    def _decision(self, tool: str, tier: Verdict, code: str, reasons: list[str], confirmation: ConfirmationKind,
                  amount: Decimal | None = None, events: tuple[dict[str, Any], ...] = (),
                  reservation: Reservation | None = None, currency: str | None = None) -> Decision:
        return Decision(tool, tier, code, tuple(reasons) or ("Within policy.",), confirmation, self.version,
                        amount, events, reservation, currency)

    @staticmethod
    def _session_cap_reason(session: Session) -> str:
        return f"This session may pay out at most {session.max_refund} in total."

    def _session_cap(self, tool: str, session: Session, confirmation: ConfirmationKind, amount: Decimal | None,
                     currency: str) -> Decision:
        return self._decision(tool, "deny", "session_cap", [self._session_cap_reason(session)], confirmation, amount,
                              currency=currency)

    async def _consume(self, tool: str, limit: Limit, facts: FactContext, now: int) -> str | None:
        if limit.per == "session":
            subject = facts.session.sid
        elif limit.per == "customer":
            customer = await facts.customer()
            if customer is None:
                raise NotFound("the customer this call acts on was not found")
            subject = customer
        else:
            subject = "*"
        window = now - now % limit.window
        key = f"rate:{tool}:{limit.per}:{limit.window}:{subject}"
        added, _ = await self._state.counters.add_within(key, window, 1, limit.max)
        if added:
            return None
        retry = window + limit.window - now
        return (f"Rate limit: {tool} at most {limit.max} times per {_duration_text(limit.window)} "
                f"per {limit.per}. Do not retry for {_duration_text(retry)}; escalate if the customer is waiting.")

    async def _breaker(self, tool: str, spend_key: str, cents: int, cap: int | None, currency: str, now: int,
                       runs_now: bool) -> tuple[bool, tuple[dict[str, Any], ...], Reservation | None]:
        """(tripped, trip events, reservation). A call that would pass its currency's hourly limit trips it.
        A call that runs now reserves its session spend and its currency's hour in one atomic step."""
        breakers, counters = self._state.breakers, self._state.counters
        if MONEY_BREAKER in await breakers.tripped():
            return True, (), None
        reservation = Reservation(cents, currency, spend_key, now - now % _HOUR)
        spend, hour = reservation.counted(+1, cap=cap, hour_limit=self._breaker_limit)
        if runs_now:
            refused, totals = await counters.add_all_within([hour, spend])  # the breaker's limit first
            if refused is None:
                return False, (), reservation
            if refused is spend:
                return False, (), None  # the session cap: the caller refuses
            total = totals[0]
        else:  # a preview reserves nothing, but an honest preview says now that it would trip
            total = await counters.get(hour.key, hour.window_start)
            if total + cents <= self._breaker_limit:
                return False, (), None
        reason = (f"{currency} hour total {_cents_text(total)} + {_cents_text(cents)} passes "
                  f"{_cents_text(self._breaker_limit)}")
        first = await breakers.trip(MONEY_BREAKER, reason, now)
        event = {"event": "breaker_trip", "breaker": MONEY_BREAKER, "currency": currency, "tool": tool,
                 "reason": reason, "policy_version": self.version}
        return True, (event,) if first else (), None

    def _compile_view(self, scopes: frozenset[str]) -> dict[str, Any]:
        tools: dict[str, Any] = {}
        for name in self.policy.tools:
            spec, rules = self._specs.get(name), self.policy.rules_for(name, scopes)
            if spec is None or rules is None or spec.read_only or spec.scope not in scopes:
                continue
            tools[name] = {
                "tier": rules.tier,
                "thresholds": [{"above": str(t.above), "tier": t.tier} for t in rules.thresholds],
                "confirmation": rules.confirmation,
                "reason_codes": sorted(self.policy.allowed_reason_codes(name)),
                "gates": [{"requires": g.fact if g.must_be else f"not {g.fact}", "otherwise": g.otherwise,
                           "reason": g.reason} for g in rules.gates],
                "limits": [{"per": lim.per, "max": lim.max, "window_seconds": lim.window} for lim in rules.limits],
                "undo_window_seconds": rules.undo_window,
                "money": spec.money,
            }
        return {
            "policy_version": self.version,
            "tools": tools,
            "money_breaker": {"per_hour": str(self.policy.money_breaker.per_hour), "per": "currency"},
            "confirmation_ttl_seconds": self.policy.confirmation.ttl,
            "approval_ttl_seconds": self.policy.approvals.ttl,
        }
