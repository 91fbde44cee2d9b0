"""The console's scorecard: the audit log's numbers (`server/audit/report.py`) plus what a support lead
asks next - who decided, how fast, how much money for which reason - and charts of them as SVG.

    executed by tool and tier   ok outcomes, by the tier their decision had (automate / assist)
    resolution mix              automated (ran without a person) / approved (ran under an approval) /
                                escalated / denied
    rates                       escalations and denials per call
    time to decision            approvals decided: decided_at - requested_at, p50 and p95
    paid out                    per UTC day, currency and reason code
    latency                     p50 / p95 per tool, from the records
    QA error rate               sampled automated actions a reviewer marked wrong, of those reviewed

`as_json()` is what `/console/api/scorecard` answers and what the page draws: one source.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from deskgate.server.audit.report import Scorecard, nearest_rank, payout, scorecard
from deskgate.server.console.auditing import part
from deskgate.server.policy.approvals import Approval


@dataclass(slots=True)
class ConsoleScorecard:
    base: Scorecard
    by_tier: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    mix: Counter[str] = field(default_factory=Counter)
    paid: dict[tuple[str, str, str], Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    decision_seconds: list[int] = field(default_factory=list)
    qa: tuple[int, int] = (0, 0)  # (reviewed, marked wrong)

    def as_json(self) -> dict[str, Any]:
        calls = sum(sum(c.values()) for c in self.base.calls.values())
        escalated, denied = sum(self.base.escalations.values()), sum(self.base.denials.values())
        latency = self.base.as_dict()["latency_ms"]
        return {
            "from": self.base.first_ts, "to": self.base.last_ts, "calls": calls,
            "executed_by_tool_and_tier": {t: dict(sorted(c.items())) for t, c in sorted(self.by_tier.items())},
            "resolution_mix": {k: self.mix.get(k, 0) for k in ("automated", "approved", "escalated", "denied")},
            "rates": {"escalation": _ratio(escalated, calls), "denial": _ratio(denied, calls)},
            "approval_time_to_decision_s": _percentiles(self.decision_seconds),
            "paid_out": [{"day": d, "currency": c, "reason_code": r, "amount": str(a)}
                         for (d, c, r), a in sorted(self.paid.items())],
            "latency_ms": latency,
            "qa": {"reviewed": self.qa[0], "wrong": self.qa[1], "error_rate": _ratio(self.qa[1], self.qa[0])},
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _percentiles(values: list[int]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(float(v) for v in values)
    return {"p50": nearest_rank(ordered, 0.5), "p95": nearest_rank(ordered, 0.95), "count": len(ordered)}


def build(records: Iterable[dict[str, Any]], approvals: Iterable[Approval], *,
          qa: tuple[int, int] = (0, 0)) -> ConsoleScorecard:
    kept = list(records)
    card = ConsoleScorecard(scorecard(kept), qa=qa)
    for record in kept:
        status, tool = record.get("status"), str(record.get("tool", "?"))
        decision = part(record, "decision")
        if record.get("kind") == "outcome" and status == "ok":
            card.by_tier[tool][str(decision.get("tier", "?"))] += 1
            card.mix["approved" if decision.get("approval_id") else "automated"] += 1
            _paid(card, record)
        elif record.get("kind") in ("call", "outcome") and status in ("escalated", "denied"):
            card.mix[str(status)] += 1
    card.decision_seconds = [a.decided_at - a.requested_at for a in approvals if a.decided_at is not None]
    return card


def _paid(card: ConsoleScorecard, record: dict[str, Any]) -> None:
    paid = payout(record)
    if paid is not None:
        card.paid[(paid[0], paid[1], str(part(record, "args").get("reason_code", "?")))] += paid[2]


# -- charts -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    segments: tuple[tuple[str, float, str], ...]  # (name, value, css class)

    @property
    def total(self) -> float:
        return sum(v for _, v, _ in self.segments)


@dataclass(frozen=True, slots=True)
class Chart:
    """A horizontal (stacked) bar chart, drawn by the `chart` macro as SVG: no script, no inline style."""

    title: str
    bars: tuple[Bar, ...]
    unit: str = ""
    legend: tuple[tuple[str, str], ...] = ()

    @property
    def scale(self) -> float:
        return max((b.total for b in self.bars), default=0) or 1.0


_TIER = {"automate": "c1", "assist": "c2", "?": "c5"}
_MIX = {"automated": "c1", "approved": "c2", "escalated": "c3", "denied": "c4"}


def charts(data: dict[str, Any]) -> list[Chart]:
    by_tool = data["executed_by_tool_and_tier"]
    mix = data["resolution_mix"]
    latency = {k: v for k, v in data["latency_ms"].items() if k != "all" and v}
    paid: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    codes: list[str] = []
    for row in data["paid_out"]:
        paid[f"{row['day']} {row['currency']}"][row["reason_code"]] += float(row["amount"])
        codes += [row["reason_code"]] if row["reason_code"] not in codes else []
    code_class = {c: f"c{i % 5 + 1}" for i, c in enumerate(codes)}
    decide = data["approval_time_to_decision_s"]
    return [
        Chart("Resolution mix", tuple(Bar(k, ((k, float(v), _MIX[k]),)) for k, v in mix.items()), "calls"),
        Chart("Actions executed, by tool and tier",
              tuple(Bar(t, tuple((tier, float(n), _TIER.get(tier, "c5")) for tier, n in tiers.items()))
                    for t, tiers in by_tool.items()), "actions",
              tuple((tier, cls) for tier, cls in _TIER.items() if tier != "?")),
        Chart("Money paid out per day, by reason code",
              tuple(Bar(day, tuple((c, v, code_class[c]) for c, v in by_code.items()))
                    for day, by_code in paid.items()),
              "", tuple((c, code_class[c]) for c in codes)),
        Chart("Latency p50 / p95 per tool (ms)",
              tuple(Bar(t, (("p50", v["p50"], "c1"), ("p95 - p50", max(v["p95"] - v["p50"], 0.0), "c2")))
                    for t, v in sorted(latency.items())), "ms", (("p50", "c1"), ("p95", "c2"))),
        Chart("Approval time to decision (s)",
              (Bar("p50", (("p50", float(decide["p50"]), "c2"),)), Bar("p95", (("p95", float(decide["p95"]), "c3"),)))
              if decide else (), "s"),
    ]
