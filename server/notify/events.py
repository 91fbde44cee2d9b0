"""Which audit records are webhook events, and what each event says - in words, without raw PII.

The audit log is the source: every pending approval, decision, hand-off, breaker trip and failed
verification is already a record there, written before anyone is answered, and already redacted.
`events_of(record)` reads one record and returns its events; it is a pure function (tested alone).

    record                                                   event
    a call answered pending_approval (first time per id)     approval.pending
    admin approval.approve / approval.deny that decided it   approval.decided
    a call answered escalated, or escalate_to_human ran ok   handoff.created
    a decision whose events hold a breaker_trip              breaker.tripped
    admin audit.verify_failed                                audit.verify_failed

Each event has a `key` that is the same whichever process saw the record first: the outbox keeps
one delivery per webhook and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    key: str
    object: dict[str, Any]
    text: str
    link: str  # path under the public URL


def _money(record: dict[str, Any]) -> str:
    money = record.get("money") or {}
    amount = money.get("amount")
    return f" {amount} {money.get('currency') or ''}".rstrip() if amount else ""


def _objects(record: dict[str, Any]) -> dict[str, str]:
    """Object ids named in the (redacted) arguments: ids, never names, addresses or free text."""
    args = record.get("args") or {}
    ids = ("order_id", "account_id", "subscription_id", "ticket_id", "customer_id")
    return {k: str(args[k]) for k in ids if isinstance(args.get(k), str)}


def events_of(record: dict[str, Any]) -> list[Event]:
    found: list[Event] = []
    seq = record.get("seq")
    tool, sub = record.get("tool"), record.get("sub")
    status, action = record.get("status"), record.get("action")
    if status == "pending_approval" and record.get("approval_id"):
        approval = str(record["approval_id"])
        found.append(Event("approval.pending", f"approval.pending:{approval}", {
            "approval_id": approval, "tool": tool, "agent": sub, "rule": record.get("reason"),
            "amount": _money(record).strip() or None, **_objects(record)},
            f"Approval needed: {tool}{_money(record)} asked by {sub} ({approval})", f"/console/approvals#{approval}"))
    if record.get("kind") == "admin" and action in ("approval.approve", "approval.deny") \
            and record.get("state") in ("approved", "denied"):
        approval = str(record.get("approval_id"))
        found.append(Event("approval.decided", f"approval.decided:{approval}", {
            "approval_id": approval, "tool": record.get("tool"), "state": record["state"],
            "decided_by": record.get("principal") or record.get("actor"), "reason": record.get("reason"),
            "agent": record.get("requested_by")},
            f"{approval} {record['state']} by {record.get('principal') or record.get('actor')}",
            f"/console/approvals#{approval}"))
    handoff = record.get("escalation_id")
    if status == "escalated" and handoff:
        found.append(Event("handoff.created", f"handoff.created:{handoff}", {
            "handoff_id": handoff, "source": "policy", "tool": tool, "agent": sub, "reason": record.get("reason"),
            **_objects(record)}, f"Escalated to a human: {tool} by {sub} ({handoff})", "/console/"))
    elif tool == "escalate_to_human" and status == "ok":
        request = str(record.get("request_id"))
        found.append(Event("handoff.created", f"handoff.created:{request}", {
            "source": "agent", "agent": sub, **_objects(record)},
            f"Hand-off from agent {sub}", "/console/"))
    for event in (record.get("decision") or {}).get("events") or ():
        if isinstance(event, dict) and event.get("event") == "breaker_trip":
            breaker = event.get("breaker")
            found.append(Event("breaker.tripped", f"breaker.tripped:{breaker}:{seq}", {
                "breaker": breaker, "tool": event.get("tool"), "reason": event.get("reason")},
                f"Breaker {breaker} tripped: {event.get('reason')}", "/console/"))
    if record.get("kind") == "admin" and action == "audit.verify_failed":
        found.append(Event("audit.verify_failed", f"audit.verify_failed:{seq}", {
            "problem": record.get("problem")}, f"Audit log verification FAILED: {record.get('problem')}",
            "/console/"))
    return found
