"""An approval in words, for people: what the call does, to what, for whom, asked by which agent, why.

The stored call (tool + arguments) is looked up in the support backend for what an approver needs
to judge it - the currency of the order or account, the customer's masked name - and nothing more.
A lookup that fails leaves its field empty: the page still shows the exact call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from deskgate.server.errors import DeskgateError
from deskgate.server.policy.approvals import Approval
from deskgate.server.redaction.masks import mask_name
from deskgate.server.redaction.redactor import redact_text
from deskgate.tools.backend.base import SupportBackend
from deskgate.tools.models import HandoffDetail
from deskgate.tools.spec import Catalogue

# Arguments that name an object, in the order they are shown.
_OBJECTS = (("order_id", "Order"), ("account_id", "Account"), ("subscription_id", "Subscription"),
            ("customer_id", "Customer"), ("requester_id", "Requested by member"))


@dataclass(frozen=True, slots=True)
class ApprovalWords:
    id: str
    state: str
    tool: str
    title: str
    amount: str | None
    currency: str | None
    objects: list[tuple[str, str]]
    customer_id: str | None
    customer: str | None          # masked name
    agent: str
    session: str                  # shortened session id
    ticket: str | None
    rule: str
    stated_reason: str | None
    rationale: str | None         # the agent's own words on why it acts, PII masked
    requested_at: str
    expires_at: str
    expires_in: str
    required: int
    approvers: tuple[str, ...]
    decided_by: str | None
    reason: str | None
    repeats: int
    extra: dict[str, str] = field(default_factory=dict)


def when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def remaining(seconds: int) -> str:
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{max(rest // 60, 1)} min"


async def approval_in_words(approval: Approval, *, catalogue: Catalogue, backend: SupportBackend,
                            ticket_of_session: str | None, now: int) -> ApprovalWords:
    args = approval.arguments
    spec = catalogue.get(approval.tool)
    currency, customer_name = None, None
    customer_id = approval.customer_id
    try:
        if "order_id" in args:
            order = await backend.get_order(str(args["order_id"]))
            currency, customer_id = order.currency, customer_id or order.customer_id
        elif "account_id" in args:
            currency = (await backend.get_account(str(args["account_id"]))).currency
        if customer_id:
            customer_name = mask_name((await backend.get_customer(customer_id)).name)
    except DeskgateError:
        pass  # unknown or unreachable: shown without it
    title = spec.title if spec else approval.tool
    reason_code = args.get("reason_code")
    shown = {"amount", "reason_code", "ticket_id", "rationale", *(name for name, _ in _OBJECTS)}
    return ApprovalWords(
        id=approval.id, state=approval.state_at(now), tool=approval.tool, title=title,
        amount=str(args["amount"]) if "amount" in args else None, currency=currency,
        objects=[(label, str(args[name])) for name, label in _OBJECTS if name in args],
        customer_id=customer_id, customer=customer_name, agent=approval.sub, session=approval.sid[:10],
        ticket=str(args.get("ticket_id") or ticket_of_session or "") or None,
        rule=approval.summary.removeprefix(f"{title}: "),
        stated_reason=str(reason_code).replace("_", " ") if reason_code else None,
        rationale=redact_text(str(args["rationale"])) if args.get("rationale") else None,
        requested_at=when(approval.requested_at), expires_at=when(approval.expires_at),
        expires_in=remaining(approval.expires_at - now), required=approval.required, approvers=approval.approvers,
        decided_by=approval.decided_by, reason=approval.decision_reason, repeats=approval.repeats,
        extra={k: redact_text(str(v)) for k, v in sorted(args.items()) if k not in shown and isinstance(v, str | int)},
    )


@dataclass(frozen=True, slots=True)
class HandoffWords:
    id: str
    status: str
    priority: str
    source: str
    customer_id: str | None
    customer: str | None
    ticket: str | None
    summary: str
    tried: str
    proposed_action: str
    handed_by: str
    created_at: str
    handled_by: str | None
    resolution: str | None


async def handoff_in_words(handoff: HandoffDetail, backend: SupportBackend) -> HandoffWords:
    """The agent's (or policy's) words, with every PII detection masked; the customer's name masked."""
    name = None
    if handoff.customer_id:
        try:
            name = mask_name((await backend.get_customer(handoff.customer_id)).name)
        except DeskgateError:
            name = None
    return HandoffWords(
        id=handoff.handoff_id, status=handoff.status, priority=handoff.priority, source=handoff.source,
        customer_id=handoff.customer_id, customer=name, ticket=handoff.ticket_id,
        summary=redact_text(handoff.summary), tried=redact_text(handoff.tried),
        proposed_action=redact_text(handoff.proposed_action), handed_by=handoff.actor,
        created_at=when(int(handoff.created_at.timestamp())), handled_by=handoff.handled_by,
        resolution=handoff.resolution)
