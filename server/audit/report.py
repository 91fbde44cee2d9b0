"""`deskgate report`: the scorecard a support lead reads, computed from the audit log alone.

What counts as what (the chain's record kinds):
    a call         a "call" record (a whole read, or any call that ended before executing) or an
                   "outcome" record (a write that ran); an "intent" is not a call of its own
    executed       an "outcome" with status ok
    an open intent an "intent" whose request_id never got an "outcome": a crash in between
    confirmation   issued = status confirmation_required; redeemed = an ok call or outcome that
                   carried a `confirmation_token` argument
    paid out       `money.amount` of ok outcomes, per UTC day and currency (refunds and credits)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

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
    elif status == "confirmation_required":
        card.confirmations_issued += 1
    elif status == "ok":
        args = record.get("args")
        if isinstance(args, dict) and "confirmation_token" in args:
            card.confirmations_redeemed += 1
        if kind == "outcome":
            card.executed[tool] += 1
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
    if paid is not None:
        card.paid_out[paid[:2]] += paid[2]
