"""The policy engine: stage 4 of the guard chain. One `decide` per call, on the policy as data.

    decide(spec, session, arguments, amount, request_id, target)
      1. limits        what the call would count if it ran, one action per business limit; a full
                       limit refuses now (a preview too: it says what the confirmed repeat would get)
      2. thresholds    the amount picks the tier
      3. gates         named facts; a failed gate denies, or moves the call to assist / escalate
      4. session cap   refunds + credits of the session may not pass `Session.max_refund`
      5. breaker       money paid out per hour and per currency across all sessions; once tripped,
                       money tools are assist until an admin resets it (`deskgate breakers reset`)
      -> Decision      tier, machine code, reasons, confirmation kind, audit events, reservation

Business limits count *executed actions*, never attempts: a preview, a refusal, a confirmation
that does not match, a pending approval and an idempotent replay count nothing. What a call counts
- one action per limit it passes, and for a money tool its session spend and its currency's
breaker hour - is reserved in one atomic check-and-add, under the call's request id
(`Reservations.reserve`), only for a call that runs now: an automate call with no confirmation,
the confirmed repeat, or the repeat that claims an approval (`reserve_approved`: counted, never
refused by a limit or the breaker, only by the session cap no approver can lift). The chain then
commits it (the side effect ran) or releases it (it did not) - `PolicyStage.settle`, one place.
The tier does not change what counts: an assist tool's limits count its approved, executed calls.

Runaway agents are stopped apart from business limits, by the per-session attempt limit
(`[attempts]`, `count_attempt`): every write call of a session that reaches this stage counts,
whatever its answer, except the replay of a finished idempotent call; once past it the session is
refused `attempt_limited` - except for a call a human approved.

A call on a recorded action (`target`: `undo_action`) passes its own rules *and* those of the tool
that made the action: that tool's limits (an executed undo counts as one of its calls), its
thresholds on the action's amount, and for a money tool the breaker.

The strictest outcome wins: deny > escalate > assist > automate. Counters are consumed atomically
in the state store, so 50 concurrent calls respect a limit exactly, across server processes.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from deskgate.server.errors import DeniedError, InvalidArguments
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


def breaker_key(currency: str, generation: int = 0) -> str:
    """The money breaker's counter of one currency: amounts in different currencies never add up. Each
    reset starts a new generation (`Breakers.reset_sync`): what counted before the reset no longer does."""
    return f"breaker:{MONEY_BREAKER}:{currency}" + (f":g{generation}" if generation else "")


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
    reservation: str | None = None  # the request id its counts are reserved under (a call that runs now)
    currency: str | None = None    # of the money a money tool would pay out
    counts: tuple[CounterAdd, ...] = ()  # one action per business limit, if the call runs
    limited: str | None = None     # a full limit's refusal: only an approved call may still run

    @property
    def needs_confirmation(self) -> bool:
        """Stage 5 applies to calls that would run now; an assist call is confirmed by its approver."""
        return self.tier == "automate" and self.confirmation != "none"

    @property
    def reason(self) -> str:
        """The one reason the answer gives: that of the rule that decided (the first); all are audited."""
        return self.reasons[0]

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
                     amount: Decimal | None, backend: SupportBackend, now: int, request_id: str,
                     target: RecordedAction | None = None) -> Decision:
        """Decide one call. `arguments` are the raw JSON arguments, `amount` the validated amount,
        `request_id` the call's (what it runs now is reserved under it), `target` the recorded action
        the call acts on (an undo), resolved and owned (stage 3)."""
        rules = self.policy.rules_for(spec.name, session.scopes)  # a role's own rules, if it has them
        if spec.read_only:
            return self._decision(spec.name, "automate", "read_only", ["Read-only tool."], "none")
        if rules is None:  # unreachable after load_policy's cross-check; deny by default regardless
            return self._decision(spec.name, "deny", "no_policy", ["No policy covers this tool."], "none")
        cents = to_cents(amount) if spec.money and amount is not None else None
        if spec.money and cents is None:
            raise InvalidArguments("a money tool needs an amount", code="invalid_amount")
        facts = FactContext(spec.name, arguments, session, backend, self._state,
                            self.policy.allowed_reason_codes(spec.name), now)
        # The rules the call passes: its own and, on a recorded action, those of the tool that made it.
        applied: list[tuple[str, ToolRules, Decimal | None]] = [(spec.name, rules, amount)]
        if target is not None:
            original = self.policy.rules_for(target.tool, session.scopes)
            if original is None:
                return self._decision(spec.name, "deny", "no_policy", ["No policy covers this action's tool."],
                                      rules.confirmation)
            applied.append((target.tool, original, target.amount))

        # 1. limits: what the call would count; a full one refuses below, unless a human approved the call
        counts: list[CounterAdd] = []
        limited: str | None = None
        for name, each, _ in applied:
            for limit in each.limits:
                count = await self._count_of(name, limit, facts, now)
                counts.append(count)
                if limited is None and await self._state.counters.get(count.key, count.window_start) >= limit.max:
                    limited = self._limit_reason(name, limit, now)

        # 2. thresholds: the strictest tier any applied rule gives its amount. Whatever makes a call stricter
        # names its code and puts its reason first: the answer gives that one reason (all are audited).
        verdict: Verdict = "automate"
        code, reasons = "allowed", []
        for name, each, each_amount in applied:
            tier, threshold = each.tier_for(each_amount)
            why = (f"{name} is {tier} tier." if threshold is None
                   else f"Amounts above {threshold.above} are {tier} tier.")
            if TIER_RANK[tier] > TIER_RANK[verdict]:
                verdict, code = tier, "threshold" if threshold is not None else f"tier_{tier}"
                reasons.insert(0, why)
            elif threshold is not None:
                reasons.append(why)

        # 3. gates: all evaluated and reported; the strictest failure names the code
        for gate in rules.gates:
            if gate.passes(await FACTS[gate.fact].fn(facts)):
                continue
            if TIER_RANK[gate.otherwise] > TIER_RANK[verdict]:
                verdict, code = gate.otherwise, f"gate_{gate.fact}"
                reasons.insert(0, gate.reason)
            else:
                reasons.append(gate.reason)
        if (target is not None and self._specs[target.tool].money and TIER_RANK[verdict] < TIER_RANK["assist"]
                and MONEY_BREAKER in await self._state.breakers.tripped()):
            verdict, code = "assist", "breaker_open"
            reasons.insert(0, "The money breaker is open: undoing a money action needs an approver until an admin "
                              "resets it.")
        if verdict in ("deny", "escalate"):
            return self._decision(spec.name, verdict, code, reasons, rules.confirmation, amount)
        if limited is not None and verdict == "automate":
            return self._decision(spec.name, "deny", "rate_limited", [limited], rules.confirmation, amount)
        runs_now = rules.confirmation == "none" or bool(arguments.get("confirmation_token"))
        if cents is None:
            if verdict == "assist":
                return self._decision(spec.name, verdict, code, reasons, rules.confirmation, amount,
                                      counts=counts, limited=limited)
            if runs_now:
                refused, _ = await self._state.reservations.reserve(request_id, counts, now)
                if refused is not None:  # the limit filled up since the check above
                    return self._decision(spec.name, "deny", "rate_limited", [self._full(refused, applied, now)],
                                          rules.confirmation, amount)
            return self._decision(spec.name, verdict, code, reasons, rules.confirmation, amount,
                                  reservation=request_id if runs_now else None)
        currency = await facts.currency()

        # 4. session cap, for whatever would pay out (an approver cannot lift the token's cap); the
        # reservation below checks it again atomically - this early answer only spares a useless approval
        spend_key = f"spend:{session.sid}"
        cap = None if session.max_refund is None else to_cents(session.max_refund)
        if cap is not None and await self._state.counters.get(spend_key, 0) + cents > cap:
            return self._session_cap(spec.name, session, rules.confirmation, amount, currency)
        if verdict == "assist":
            return self._decision(spec.name, verdict, code, reasons, rules.confirmation, amount, currency=currency,
                                  counts=counts, limited=limited)

        # 5. money breaker, and the reservation of a call that runs now
        held, events = await self._breaker(spec.name, request_id, counts, spend_key, cents, cap, currency, now,
                                           runs_now)
        if held == "tripped":
            reasons = [f"Refunds and credits paid out this hour reached the money breaker's limit "
                       f"({self.policy.money_breaker.per_hour} per currency): money actions need an approver "
                       "until an admin resets the breaker."]
            return self._decision(spec.name, "assist", "breaker_open", reasons, rules.confirmation, amount, events,
                                  currency=currency, counts=counts)
        if held == "session_cap":  # the session cap filled up since the check above
            return self._session_cap(spec.name, session, rules.confirmation, amount, currency)
        if isinstance(held, CounterAdd):  # a limit filled up since the check above
            return self._decision(spec.name, "deny", "rate_limited", [self._full(held, applied, now)],
                                  rules.confirmation, amount, currency=currency)
        return self._decision(spec.name, "automate", code, reasons, rules.confirmation, amount,
                              reservation=request_id if held == "reserved" else None, currency=currency)

    async def release(self, reservation: str | None) -> None:
        """Give back what a call that did not run (or failed) reserved, in one transaction."""
        if reservation is not None:
            await self._state.reservations.release(reservation)

    async def commit(self, reservation: str | None) -> None:
        """Keep what a call that ran reserved."""
        if reservation is not None:
            await self._state.reservations.commit(reservation)

    async def reserve_approved(self, request_id: str, session: Session, decision: Decision, now: int) -> str | None:
        """Count an approved call as it runs: its actions, never refused by a limit (a human approved it),
        and its payout, in one atomic check-and-add against the session cap (which no approver can lift);
        the approver may pass the breaker's limit. None: nothing to count.
        A payout the session cap no longer allows is refused (`DeniedError`, code session_cap)."""
        adds = [CounterAdd(c.key, c.window_start, c.amount) for c in decision.counts]
        spec = self._specs.get(decision.tool)
        if spec is not None and spec.money and decision.amount is not None and decision.currency is not None:
            cents = to_cents(decision.amount)
            cap = None if session.max_refund is None else to_cents(session.max_refund)
            _, generation = await self._state.breakers.status(MONEY_BREAKER)
            adds += [CounterAdd(breaker_key(decision.currency, generation), now - now % _HOUR, cents),
                     CounterAdd(f"spend:{session.sid}", 0, cents, cap)]
        if not adds:
            return None
        refused, _ = await self._state.reservations.reserve(request_id, adds, now)
        if refused is not None:
            raise DeniedError(self._session_cap_reason(session), code="session_cap")
        return request_id

    async def count_attempt(self, session: Session, now: int) -> str | None:
        """Count one attempt of the session (`[attempts]`); the refusal once it is past the limit."""
        attempts = self.policy.attempts
        window = now - now % attempts.window
        _, total = await self._state.counters.add_within(f"attempts:{session.sid}", window, 1, None)
        if total <= attempts.max:
            return None
        return (f"Attempt limit: this session made more than {attempts.max} write calls in "
                f"{_duration_text(attempts.window)} (previews and refusals included). Stop and escalate to a human; "
                f"do not retry for {_duration_text(window + attempts.window - now)}.")

    def refusal(self, tool: str, code: str, reason: str) -> Decision:
        """A decision refusing a call before the rules were looked at (the attempt limit)."""
        return self._decision(tool, "deny", code, [reason], "none")

    def replay(self, tool: str) -> Decision:
        """The retry of a finished idempotent call: it answers the stored result, so nothing counts and no
        limit refuses it (its confirmation is still checked, as a replay)."""
        rules = self.policy.tools.get(tool)
        return self._decision(tool, "automate", "idempotent_replay", ["The retry of a finished call."],
                              rules.confirmation if rules is not None else "none")

    async def customer_of(self, spec: ToolSpec, session: Session, arguments: Mapping[str, Any],
                          backend: SupportBackend) -> str | None:
        """Who a call acts on - the requester of an account-level call: the one a customer code goes to."""
        return await FactContext(spec.name, arguments, session, backend, self._state, frozenset()).customer()

    def view_for(self, session: Session) -> dict[str, Any]:
        """The rules that apply to this session, for the `get_policy` tool."""
        if session.scopes not in self._views:
            self._views[session.scopes] = self._compile_view(session.scopes)
        view = copy.deepcopy(self._views[session.scopes])
        max_refund = None if session.max_refund is None else str(session.max_refund)
        view["session"] = {"max_refund": max_refund}
        for rules in view["tools"].values():
            if rules.get("money"):
                rules["session_max_refund"] = max_refund
        return view

    # -- internals ---------------------------------------------------------------------------

    def _decision(self, tool: str, tier: Verdict, code: str, reasons: list[str], confirmation: ConfirmationKind,
                  amount: Decimal | None = None, events: tuple[dict[str, Any], ...] = (),
                  reservation: str | None = None, currency: str | None = None,
                  counts: list[CounterAdd] | None = None, limited: str | None = None) -> Decision:
        return Decision(tool, tier, code, tuple(reasons) or ("Within policy.",), confirmation, self.version,
                        amount, events, reservation, currency, tuple(counts or ()), limited)

    @staticmethod
    def _session_cap_reason(session: Session) -> str:
        return f"This session may pay out at most {session.max_refund} in total."

    def _session_cap(self, tool: str, session: Session, confirmation: ConfirmationKind, amount: Decimal | None,
                     currency: str) -> Decision:
        return self._decision(tool, "deny", "session_cap", [self._session_cap_reason(session)], confirmation, amount,
                              currency=currency)

    async def _count_of(self, tool: str, limit: Limit, facts: FactContext, now: int) -> CounterAdd:
        """The one action `limit` would count for this call, within its maximum."""
        if limit.per == "session":
            subject = facts.session.sid
        elif limit.per == "customer":
            customer = await facts.customer()
            if customer is None:
                raise facts.missing()
            subject = customer
        else:
            subject = "*"
        return CounterAdd(f"rate:{tool}:{limit.per}:{limit.window}:{subject}", now - now % limit.window, 1, limit.max)

    @staticmethod
    def _limit_reason(tool: str, limit: Limit, now: int) -> str:
        retry = now - now % limit.window + limit.window - now
        return (f"Rate limit: {tool} at most {limit.max} times per {_duration_text(limit.window)} "
                f"per {limit.per}. Do not retry for {_duration_text(retry)}; escalate if the customer is waiting.")

    def _full(self, refused: CounterAdd, applied: list[tuple[str, ToolRules, Decimal | None]], now: int) -> str:
        """The refusal of the limit behind a counter that filled up."""
        for name, each, _ in applied:
            for limit in each.limits:
                if refused.key.startswith(f"rate:{name}:{limit.per}:{limit.window}:"):
                    return self._limit_reason(name, limit, now)
        return "Rate limit reached."

    async def _breaker(self, tool: str, request_id: str, counts: list[CounterAdd], spend_key: str, cents: int,
                       cap: int | None, currency: str, now: int, runs_now: bool,
                       ) -> tuple[Literal["reserved", "preview", "tripped", "session_cap"] | CounterAdd,
                                  tuple[dict[str, Any], ...]]:
        """What became of a money call that would automate: its counts reserved (one atomic step with its
        actions, session spend and currency hour), a preview (nothing reserved), the breaker tripped (by
        this call or before), the session cap or a limit (the counter that filled up) refusing it."""
        breakers = self._state.breakers
        tripped, generation = await breakers.status(MONEY_BREAKER)
        if tripped:
            return "tripped", ()
        hour = CounterAdd(breaker_key(currency, generation), now - now % _HOUR, cents, self._breaker_limit)
        spend = CounterAdd(spend_key, 0, cents, cap)
        if runs_now:
            refused, totals = await self._state.reservations.reserve(request_id, [*counts, hour, spend], now)
            if refused is None:
                return "reserved", ()
            if refused is spend:
                return "session_cap", ()
            if refused is not hour:
                return refused, ()
            total = totals[len(counts)]
        else:  # a preview reserves nothing, but an honest preview says now that it would trip
            total = await self._state.counters.get(hour.key, hour.window_start)
            if total + cents <= self._breaker_limit:
                return "preview", ()
        reason = (f"{currency} hour total {_cents_text(total)} + {_cents_text(cents)} passes "
                  f"{_cents_text(self._breaker_limit)}")
        first = await breakers.trip(MONEY_BREAKER, reason, now)
        event = {"event": "breaker_trip", "breaker": MONEY_BREAKER, "currency": currency, "tool": tool,
                 "reason": reason, "policy_version": self.version}
        return "tripped", (event,) if first else ()

    def _compile_view(self, scopes: frozenset[str]) -> dict[str, Any]:
        tools: dict[str, Any] = {}
        for name, spec in self._specs.items():
            if spec.scope not in scopes:
                continue
            if spec.read_only:  # a read: no tier but automate, no limit, no confirmation
                tools[name] = {"tier": "automate", "read_only": True}
                continue
            rules = self.policy.rules_for(name, scopes)  # a role's own rules, if it has them
            if rules is None:  # unreachable after load_policy: such a call is denied
                continue
            tools[name] = {
                "tier": rules.tier,
                "thresholds": [{"above": str(t.above), "tier": t.tier} for t in rules.thresholds],
                "confirmation": rules.confirmation,
                "reason_codes": list(self.policy.vocabulary(name).get("reason_code", ())),  # the enum's order
                "gates": [{"requires": g.requirement(), "otherwise": g.otherwise,
                           "reason": g.reason} for g in rules.gates],
                "limits": [{"per": lim.per, "max": lim.max, "window_seconds": lim.window, "counts": "executed actions"}
                           for lim in rules.limits],
                "undo_window_seconds": rules.undo_window,
                "money": spec.money,
            }
            # What else binds this tool, so that its own answer is complete.
            if rules.confirmation != "none":
                tools[name]["confirmation_ttl_seconds"] = self.policy.confirmation.ttl
            if spec.money:
                tools[name]["money_breaker_per_hour"] = str(self.policy.money_breaker.per_hour)
        return {
            "policy_version": self.version,
            "tools": tools,
            "money_breaker": {"per_hour": str(self.policy.money_breaker.per_hour), "per": "currency"},
            "attempts": {"per": "session", "max": self.policy.attempts.max,
                         "window_seconds": self.policy.attempts.window},
            "confirmation_ttl_seconds": self.policy.confirmation.ttl,
            "customer_code_ttl_seconds": self.policy.confirmation.customer_code.model_dump(),
            "approval_ttl_seconds": self.policy.approvals.ttl,
        }
