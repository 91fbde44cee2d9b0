"""`deskgate report`: the scorecard a support lead reads, computed from the audit log alone.

What counts as what (the chain's record kinds):
    a call         a "call" record (a whole read, or any call that ended before executing) or an
                   "outcome" record (a write that ran); an "intent" is not a call of its own
    executed       an "outcome" with status ok
    an open intent an "intent" whose request_id never got an "outcome": a crash in between
    confirmation   issued = status confirmation_required; redeemed = an ok call or outcome that
                   carried a `confirmation_token` argument
    paid out       `money.amount` of ok outcomes, per UTC day and currency (refunds and credits), and
                   per currency by reason code, by agent (`sub`) and by tier: automated (ran without a
                   person) or approved (ran under an approval)
    escalations    by tool, and by source: the agent's (an executed `escalate_to_human`) or the
                   policy's (a call answered `escalated`)
    failed auth    a refused credential's record (`stage: authenticate`), by its code - not a call

Beside the log, `report` reads what the log does not hold: the approvals in the state store
(`approval_summary`: requested, approved, denied, expired, pending, time to decision) and, where
the ticket system reports them (`TicketMetrics`), the guide's outcome metrics (`ticket_summary`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deskgate.server.policy.approvals import Approval
    from deskgate.tools.backend.tickets import TicketOutcomes

_CALL_KINDS = ("call", "outcome")


@dataclass(slots=True)
class Scorecard:
    records: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    calls: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    executed: Counter[str] = field(default_factory=Counter)
    denials: Counter[str] = field(default_factory=Counter)        # by code
    escalations: Counter[str] = field(default_factory=Counter)    # by tool
    escalation_sources: Counter[str] = field(default_factory=Counter)  # agent / policy
    failed_authentications: Counter[str] = field(default_factory=Counter)  # by code
    money_by: dict[tuple[str, str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    approvals: dict[str, Any] | None = None     # approval_summary, when the state store was read
    outcomes: dict[str, Any] | None = None      # ticket_summary; None: the ticket system does not report them
    confirmations_issued: int = 0
    confirmations_redeemed: int = 0
    paid_out: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    admin: Counter[str] = field(default_factory=Counter)          # by action
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    _intents: set[str] = field(default_factory=set)
    _outcomes: set[str] = field(default_factory=set)

    @property
    def open_intents(self) -> int:
        return len(self._intents - self._outcomes)

    def latency(self, tool: str | None = None) -> tuple[float, float] | None:
        """(p50, p95) in ms over one tool's calls, or all calls."""
        values = self.latencies.get(tool, []) if tool else [v for vs in self.latencies.values() for v in vs]
        if not values:
            return None
        ordered = sorted(values)
        return nearest_rank(ordered, 0.50), nearest_rank(ordered, 0.95)

    def as_dict(self) -> dict[str, Any]:
        overall = self.latency()
        return {
            "records": self.records,
            "from": self.first_ts,
            "to": self.last_ts,
            "calls": {tool: dict(sorted(c.items())) for tool, c in sorted(self.calls.items())},
            "executed": dict(sorted(self.executed.items())),
            "denials": dict(sorted(self.denials.items())),
            "escalations": dict(sorted(self.escalations.items())),
            "escalations_by_source": {k: self.escalation_sources.get(k, 0) for k in ("agent", "policy")},
            "failed_authentications": dict(sorted(self.failed_authentications.items())),
            "money": {
                by: [{by.removeprefix("by_"): key, "currency": cur, "amount": str(amount)}
                     for (kind, key, cur), amount in sorted(self.money_by.items()) if kind == by]
                for by in ("by_reason_code", "by_agent", "by_tier")
            },
            "approvals": self.approvals,
            "ticket_outcomes": self.outcomes,
            "confirmations": {"issued": self.confirmations_issued, "redeemed": self.confirmations_redeemed},
            "paid_out": [
                {"day": day, "currency": cur, "amount": str(amount)}
                for (day, cur), amount in sorted(self.paid_out.items())
            ],
            "open_intents": self.open_intents,
            "admin": dict(sorted(self.admin.items())),
            "latency_ms": {
                "all": _pair(overall),
                **{tool: _pair(self.latency(tool)) for tool in sorted(self.latencies)},
            },
        }


def nearest_rank(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _pair(p: tuple[float, float] | None) -> dict[str, float] | None:
    return {"p50": p[0], "p95": p[1]} if p else None


def scorecard(records: Iterable[dict[str, Any]]) -> Scorecard:
    card = Scorecard()
    for record in records:
        card.records += 1
        ts = record.get("ts") if isinstance(record.get("ts"), str) else None
        card.first_ts = card.first_ts or ts
        card.last_ts = ts or card.last_ts
        kind = record.get("kind")
        if kind == "admin":
            card.admin[str(record.get("action", "unknown"))] += 1
            continue
        request_id = record.get("request_id")
        if kind == "intent" and isinstance(request_id, str):
            card._intents.add(request_id)
        if kind not in _CALL_KINDS:
            continue
        if kind == "outcome" and isinstance(request_id, str):
            card._outcomes.add(request_id)
        if record.get("stage") == "authenticate":  # a refused credential: no tool, no call
            card.failed_authentications[str(record.get("code", "unknown"))] += 1
            continue
        _count_call(card, record, kind)
    return card


def _count_call(card: Scorecard, record: dict[str, Any], kind: str) -> None:
    tool = str(record.get("tool", "?"))
    status = str(record.get("status", "?"))
    card.calls[tool][status] += 1
    latency = record.get("latency_ms")
    if isinstance(latency, int | float) and not isinstance(latency, bool) and math.isfinite(latency):
        card.latencies[tool].append(float(latency))
    if status == "denied":
        card.denials[str(record.get("code", "denied"))] += 1
    elif status == "escalated":
        card.escalations[tool] += 1
        card.escalation_sources["policy"] += 1
    elif status == "confirmation_required":
        card.confirmations_issued += 1
    elif status == "ok":
        args = record.get("args")
        if isinstance(args, dict) and "confirmation_token" in args:
            card.confirmations_redeemed += 1
        if kind == "outcome":
            card.executed[tool] += 1
            if tool == "escalate_to_human":
                card.escalation_sources["agent"] += 1
            _count_money(card, record)


def payout(record: dict[str, Any]) -> tuple[str, str, Decimal] | None:
    """(UTC day, currency, amount) of a record's `money`, None when it has none or it is malformed."""
    money = record.get("money")
    ts = record.get("ts")
    if not isinstance(money, dict) or not isinstance(ts, str):
        return None
    try:
        amount = Decimal(str(money.get("amount")))
    except InvalidOperation:
        return None
    return (ts[:10], str(money.get("currency", "?")), amount) if amount.is_finite() else None


def _count_money(card: Scorecard, record: dict[str, Any]) -> None:
    paid = payout(record)
    if paid is None:
        return
    day, currency, amount = paid
    card.paid_out[(day, currency)] += amount
    args, decision = record.get("args"), record.get("decision")
    reason = args.get("reason_code") if isinstance(args, dict) else None
    approved = isinstance(decision, dict) and bool(decision.get("approval_id"))
    for by, key in (("by_reason_code", reason), ("by_agent", record.get("sub")),
                    ("by_tier", "approved" if approved else "automated")):
        card.money_by[(by, str(key) if isinstance(key, str) else "(none)", currency)] += amount


def _percentiles(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    return {"p50": nearest_rank(ordered, 0.5), "p95": nearest_rank(ordered, 0.95), "count": len(ordered)}


def approval_summary(approvals: Iterable[Approval], *, now: int, since: int | None = None,
                     until: int | None = None) -> dict[str, Any]:
    """Approvals requested in [since, until): how each ended so far, and the time from request to decision."""
    states: Counter[str] = Counter()
    waited: list[int] = []
    for a in approvals:
        if (since is not None and a.requested_at < since) or (until is not None and a.requested_at >= until):
            continue
        state = a.state_at(now)
        states["requested"] += 1
        states["denied" if state == "denied" else "expired" if state == "expired" else "pending"
               if state == "pending" else "approved"] += 1
        if a.decided_at is not None:
            waited.append(a.decided_at - a.requested_at)
    return {**{k: states.get(k, 0) for k in ("requested", "approved", "denied", "expired", "pending")},
            "time_to_decision_s": _percentiles(waited)}


def ticket_summary(outcomes: TicketOutcomes) -> dict[str, Any]:
    """The guide's outcome metrics: resolved rate, recontact within 7 days, time to resolution."""
    return {"tickets": outcomes.tickets, "resolved": outcomes.resolved,
            "resolved_rate": round(outcomes.resolved / outcomes.tickets, 4) if outcomes.tickets else None,
            "recontact_within_7d": outcomes.recontacted,
            "recontact_rate": round(outcomes.recontacted / outcomes.resolved, 4) if outcomes.resolved else None,
            "time_to_resolution_s": _percentiles(list(outcomes.resolution_seconds))}
