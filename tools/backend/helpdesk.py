"""`HelpdeskTickets`: the tickets domain on django-helpdesk, through its REST API (`/api/`).

What lives where:
    ticket         a helpdesk ticket (its integer id is the ticket id); its customer is the deskgate
                   customer whose email is the ticket's `submitter_email` (asked of the identity domain)
    messages       the ticket's public follow-ups: the first is the customer's opening message, later
                   ones are the customer's when they came by email (no user), else an agent's
    notes          non-public follow-ups; deskgate signs the ones it writes with the session subject
    replies        public follow-ups deskgate posts (the helpdesk mails them to the submitter); unsigned
    hand-off       the ticket moved to the human queue (`human_queue`) with the summary as an internal
                   note; its id is `H-<note id>`; queued until someone is assigned, closed with the ticket
    status         open/reopened -> open, on hold -> pending, in the human queue -> escalated,
                   resolved/closed/duplicate -> closed; `set_ticket_status` writes solved as the status
                   field's "resolved" and pending as the "on hold" flag (the helpdesk has no pending status)

Quirks of django-helpdesk 2.6 minded here: a follow-up posted with a `title` renames the ticket, so
deskgate never sends one; the ticket list cannot be filtered by submitter, so `list_tickets` pages
through the tickets the API user can see (fine for a helpdesk of thousands, not millions).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import httpx2

from deskgate.server.errors import BackendUnavailable, ConfigError, DeskgateError, DomainError, NotFound
from deskgate.server.settings import BackendSection
from deskgate.tools.backend.base import check_replyable, status_after
from deskgate.tools.backend.identity import IdentityBackend
from deskgate.tools.backend.ids import matches
from deskgate.tools.backend.kinds import ObjectKind
from deskgate.tools.backend.remote import Remote
from deskgate.tools.models import (
    Handoff,
    HandoffDetail,
    NoteAdded,
    Priority,
    ReplyPosted,
    SettableTicketStatus,
    Ticket,
    TicketMessage,
    TicketNote,
    TicketStatus,
    TicketStatusSet,
    TicketSummary,
)

SYSTEM = "helpdesk"
_PRIORITY_IN: dict[int, Priority] = {1: "urgent", 2: "high", 3: "normal", 4: "low", 5: "low"}
_PRIORITY_OUT: dict[Priority, int] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}
_CLOSED = {3, 4, 5}  # resolved, closed, duplicate
_RESOLVED = 3
_SIGNATURE = re.compile(r"\n\n-- ([A-Za-z0-9._@:-]{1,128}) via deskgate$")
_HANDOFF = re.compile(r"^deskgate hand-off: priority (low|normal|high|urgent), from (agent|policy)\n")
_HANDOFF_BODY = re.compile(
    r"\n\nSummary: (.*?)\n\nTried: (.*?)\n\nProposed next step: (.*?)\n\n-- (\S+) via deskgate$", re.S)
_MAX_PAGES = 200


class _Status(Exception):
    """An HTTP answer that is not a success, for `classify`."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def classify(exc: BaseException) -> DeskgateError | None:
    """The helpdesk's failures as deskgate's errors - never its own text."""
    if isinstance(exc, httpx2.TransportError):
        return BackendUnavailable("the helpdesk is unavailable; nothing was done")
    if isinstance(exc, _Status):
        if exc.status == 404:
            return NotFound("not found in the helpdesk")
        if exc.status >= 500 or exc.status in (401, 403, 408, 429):
            return BackendUnavailable("the helpdesk is unavailable; nothing was done")
        return DomainError("the helpdesk refused the request", code="provider_refused")
    return None


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


class HelpdeskTickets:
    """Tickets on django-helpdesk. Built by `build_backend` for `[backends.tickets] kind = "helpdesk"`."""

    system = SYSTEM

    def __init__(self, http: httpx2.Client, remote: Remote, *, queue: int, human_queue: int,
                 identity: IdentityBackend, clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self.remote = remote
        self._queue = queue
        self._human_queue = human_queue
        self._identity = identity
        self._clock = clock

    @classmethod
    def from_settings(cls, section: BackendSection, token: str, *, identity: IdentityBackend) -> HelpdeskTickets:
        if section.url is None or section.queue is None or section.human_queue is None:
            raise ConfigError("backends.tickets: a helpdesk needs url, queue and human_queue (queue ids)")
        http = httpx2.Client(base_url=section.url.rstrip("/") + "/api/", timeout=section.timeout_seconds,
                             headers={"Authorization": f"Token {token}", "Accept": "application/json"},
                             follow_redirects=False)
        remote = Remote("the helpdesk", timeout=section.timeout_seconds, failures=section.breaker_failures,
                        cooldown=section.breaker_cooldown_seconds, classify=classify)
        return cls(http, remote, queue=section.queue, human_queue=section.human_queue, identity=identity)

    # --- HTTP -------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                       params: dict[str, Any] | None = None) -> Any:
        def send() -> Any:
            answer = self._http.request(method, path, json=body, params=params)
            if answer.status_code >= 300:
                raise _Status(answer.status_code)
            return answer.json()

        return await self.remote.call(send)

    async def _ticket(self, ticket_id: str) -> dict[str, Any]:
        if not matches("ticket_id", SYSTEM, ticket_id):
            raise NotFound(f"ticket {ticket_id} not found")
        try:
            found: dict[str, Any] = await self._request("GET", f"tickets/{int(ticket_id)}/")
        except NotFound:
            raise NotFound(f"ticket {ticket_id} not found") from None
        return found

    async def _customer_of(self, raw: dict[str, Any]) -> str | None:
        email = raw.get("submitter_email")
        if not email:
            return None
        matches_ = await self._identity.find_customers("email", str(email).lower(), limit=2)
        return matches_[0].customer_id if len(matches_) == 1 else None

    def _status(self, raw: dict[str, Any]) -> TicketStatus:
        if int(raw["status"]) in _CLOSED:
            return "closed"
        if int(raw["queue"]) == self._human_queue:
            return "escalated"
        return "pending" if raw.get("on_hold") else "open"

    def _summary(self, raw: dict[str, Any], customer_id: str) -> TicketSummary:
        dates = [_at(f["date"]) for f in raw.get("followup_set") or []]
        created = min(dates) if dates else _at(raw["due_date"]) if raw.get("due_date") else None
        if created is None:
            raise NotFound(f"ticket {raw['id']} not found")  # a ticket without history is not one we can show
        return TicketSummary(ticket_id=str(raw["id"]), customer_id=customer_id, subject=raw["title"],
                             status=self._status(raw), priority=_PRIORITY_IN.get(int(raw["priority"]), "normal"),
                             created_at=created, updated_at=max(dates) if dates else created)

    async def _owned(self, ticket_id: str) -> tuple[dict[str, Any], str]:
        raw = await self._ticket(ticket_id)
        customer = await self._customer_of(raw)
        if customer is None:
            raise NotFound(f"ticket {ticket_id} not found")  # not a ticket of a deskgate customer
        return raw, customer

    # --- reads ------------------------------------------------------------------------------

    async def get_ticket(self, ticket_id: str) -> Ticket:
        raw, customer = await self._owned(ticket_id)
        followups = sorted(raw.get("followup_set") or [], key=lambda f: (f["date"], f["id"]))
        messages: list[TicketMessage] = []
        notes: list[TicketNote] = []
        for n, f in enumerate(followups):
            if f.get("public"):
                author: Literal["customer", "agent", "system"] = (
                    "customer" if n == 0 or f.get("user") is None else "agent")
                messages.append(TicketMessage(author=author, body=f.get("comment") or "", created_at=_at(f["date"])))
                continue
            body, signed = f.get("comment") or "", _SIGNATURE.search(f.get("comment") or "")
            notes.append(TicketNote(note_id=str(f["id"]), body=body[:signed.start()] if signed else body,
                                    author=signed.group(1) if signed else "helpdesk", created_at=_at(f["date"])))
        return Ticket(**self._summary(raw, customer).model_dump(), messages=messages, notes=notes)

    async def list_tickets(self, customer_id: str, *, status: TicketStatus | None = None,
                           limit: int = 20) -> list[TicketSummary]:
        customer = await self._identity.get_customer(customer_id)  # NotFound for an unknown customer
        found: list[TicketSummary] = []
        page: str | None = "tickets/"
        for _ in range(_MAX_PAGES):
            if page is None:
                break
            answer = await self._request("GET", page)
            for raw in answer.get("results", []):
                if str(raw.get("submitter_email") or "").lower() == customer.email.lower() and raw.get("followup_set"):
                    summary = self._summary(raw, customer_id)
                    if status is None or summary.status == status:
                        found.append(summary)
            following = answer.get("next")
            page = str(following).split("/api/", 1)[1] if following and "/api/" in str(following) else None
        return sorted(found, key=lambda t: (t.updated_at, int(t.ticket_id)), reverse=True)[:limit]

    async def get_handoff(self, handoff_id: str) -> Handoff:
        handoff, _, _ = await self._handoff(handoff_id)
        return handoff

    async def _handoff(self, handoff_id: str) -> tuple[Handoff, str, dict[str, Any]]:
        """The hand-off, its note's text and its ticket as the helpdesk has them."""
        if not matches("handoff_id", SYSTEM, handoff_id):
            raise NotFound(f"hand-off {handoff_id} not found")
        try:
            note = await self._request("GET", f"followups/{int(handoff_id[2:])}/")
        except NotFound:
            raise NotFound(f"hand-off {handoff_id} not found") from None
        comment = note.get("comment") or ""
        header = _HANDOFF.match(comment)
        if header is None or note.get("public"):
            raise NotFound(f"hand-off {handoff_id} not found")
        raw = await self._ticket(str(note["ticket"]))
        status: Literal["queued", "taken", "closed"] = (
            "closed" if int(raw["status"]) in _CLOSED else "taken" if raw.get("assigned_to") else "queued")
        handoff = Handoff.model_validate({
            "handoff_id": handoff_id, "customer_id": await self._customer_of(raw), "ticket_id": str(raw["id"]),
            "priority": header.group(1), "status": status, "source": header.group(2), "created_at": _at(note["date"])})
        return handoff, comment, raw

    # The helpdesk has its own human queue: people take and close hand-offs there, not in the console.
    def _worked_in_helpdesk(self) -> DomainError:
        return DomainError("hand-offs are worked in the helpdesk itself (its human queue), not in deskgate's "
                           "console", code="handoffs_in_helpdesk")

    async def handoff_detail(self, handoff_id: str) -> HandoffDetail:
        """Read back from the hand-off's internal note; the people's reply lives in the helpdesk."""
        handoff, comment, raw = await self._handoff(handoff_id)
        parts = _HANDOFF_BODY.search(comment)
        summary, tried, proposed, actor = parts.groups() if parts else ("", "", "", "")
        assigned = raw.get("assigned_to")
        return HandoffDetail.model_validate({
            **handoff.model_dump(), "summary": summary, "tried": tried, "proposed_action": proposed, "actor": actor,
            "handled_by": f"helpdesk user {assigned}" if assigned else None, "resolution": None})

    async def list_handoffs(self, *, open_only: bool, limit: int = 200) -> list[HandoffDetail]:
        raise self._worked_in_helpdesk()

    async def work_handoff(self, handoff_id: str, status: Literal["taken", "closed"], *, person: str,
                           resolution: str | None) -> HandoffDetail:
        raise self._worked_in_helpdesk()

    # --- ownership --------------------------------------------------------------------------

    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]:
        customer = await self.customer_for(kind, object_id)
        return frozenset() if customer is None else frozenset({customer})

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None:
        if kind != "ticket_id":
            return None
        try:
            return (await self._owned(object_id))[1]
        except NotFound:
            return None

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None:
        customer = await self.customer_for(kind, object_id)
        return None if customer is None else await self._identity.account_for("customer_id", customer)

    # --- writes -----------------------------------------------------------------------------

    async def _note(self, ticket: int, comment: str) -> dict[str, Any]:
        # No `title`: django-helpdesk renames the ticket after a follow-up's title.
        note: dict[str, Any] = await self._request("POST", "followups/",
                                                   {"ticket": ticket, "comment": comment, "public": False})
        return note

    async def add_ticket_note(self, ticket_id: str, body: str, *, actor: str, now: int) -> NoteAdded:
        raw, customer = await self._owned(ticket_id)
        note = await self._note(int(raw["id"]), f"{body}\n\n-- {actor} via deskgate")
        return NoteAdded(note_id=str(note["id"]), ticket_id=str(raw["id"]), customer_id=customer,
                         created_at=_at(note["date"]))

    async def reply_to_customer(self, ticket_id: str, body: str, *, actor: str, now: int) -> ReplyPosted:
        raw, customer = await self._owned(ticket_id)
        check_replyable(ticket_id, self._status(raw))
        # Public and without a `title` (which would rename the ticket); the customer reads it unsigned.
        reply = await self._request("POST", "followups/", {"ticket": int(raw["id"]), "comment": body, "public": True})
        return ReplyPosted(ticket_id=str(raw["id"]), customer_id=customer, body=body, created_at=_at(reply["date"]))

    async def set_ticket_status(self, ticket_id: str, status: SettableTicketStatus, *, actor: str,
                                now: int) -> TicketStatusSet:
        raw, customer = await self._owned(ticket_id)
        before = self._status(raw)
        after = status_after(ticket_id, before, status)
        if after != before:
            change = {"status": _RESOLVED, "on_hold": False} if status == "solved" else {"on_hold": True}
            raw = await self._request("PATCH", f"tickets/{int(raw['id'])}/", change)
            after = self._status(raw)  # what the helpdesk now says, not what was asked
        return TicketStatusSet(ticket_id=str(raw["id"]), customer_id=customer, status=after, previous_status=before,
                               changed_at=datetime.fromtimestamp(now, UTC))

    async def create_handoff(self, *, customer_id: str | None, ticket_id: str | None, summary: str, tried: str,
                             proposed_action: str, priority: Priority, source: Literal["agent", "policy"],
                             actor: str, now: int | None = None) -> str:
        text = (f"deskgate hand-off: priority {priority}, from {source}\n\nSummary: {summary}\n\nTried: {tried}\n\n"
                f"Proposed next step: {proposed_action}\n\n-- {actor} via deskgate")
        if ticket_id is not None:
            raw, owner = await self._owned(ticket_id)
            if customer_id is not None and owner != customer_id:
                raise DomainError(f"ticket {ticket_id} is not a ticket of {customer_id}", code="ticket_mismatch")
            await self._request("PATCH", f"tickets/{int(raw['id'])}/",
                                {"queue": self._human_queue, "priority": _PRIORITY_OUT[priority]})
            ticket = int(raw["id"])
        else:
            email = (await self._identity.get_customer(customer_id)).email if customer_id is not None else None
            created = await self._request("POST", "tickets/", {
                "queue": self._human_queue, "title": "Hand-off from the support agent",
                "description": summary, "submitter_email": email or "", "priority": _PRIORITY_OUT[priority]})
            ticket = int(created["id"])
        note = await self._note(ticket, text)
        return f"H-{int(note['id'])}"
