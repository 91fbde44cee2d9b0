"""`TicketsBackend`: support tickets, their messages and internal notes, and hand-offs to humans.

Owns the ids of kind `ticket_id`. A hand-off puts the case in front of a human (in a helpdesk: the
ticket assigned to the human queue with the summary as an internal note).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from deskgate.tools.backend.kinds import ObjectKind
from deskgate.tools.models import (
    Handoff,
    HandoffDetail,
    NoteAdded,
    Priority,
    ReplyPosted,
    SettableTicketStatus,
    Ticket,
    TicketStatus,
    TicketStatusSet,
    TicketSummary,
)


class TicketsBackend(Protocol):
    async def get_ticket(self, ticket_id: str) -> Ticket: ...

    async def list_tickets(self, customer_id: str, *, status: TicketStatus | None = None,
                           limit: int = 20) -> list[TicketSummary]: ...

    async def add_ticket_note(self, ticket_id: str, body: str, *, actor: str, now: int) -> NoteAdded: ...

    # What the customer reads, and where the ticket stands (rules: `check_replyable`, `status_after`).
    async def reply_to_customer(self, ticket_id: str, body: str, *, actor: str, now: int) -> ReplyPosted: ...

    async def set_ticket_status(self, ticket_id: str, status: SettableTicketStatus, *, actor: str,
                                now: int) -> TicketStatusSet: ...

    async def create_handoff(self, *, customer_id: str | None, ticket_id: str | None, summary: str, tried: str,
                             proposed_action: str, priority: Priority, source: Literal["agent", "policy"],
                             actor: str, now: int | None = None) -> str:
        """Queue a hand-off to a human; returns its id. A ticket is marked escalated. Neither customer nor
        ticket is fine (e.g. policy escalating an account-level call); both must agree."""
        ...

    async def get_handoff(self, handoff_id: str) -> Handoff: ...

    # The console's escalations inbox (see `SupportBackend.list_handoffs`). A system with its own human
    # queue (a helpdesk) may refuse these with a `DomainError`: its people work hand-offs there.
    async def handoff_detail(self, handoff_id: str) -> HandoffDetail: ...

    async def list_handoffs(self, *, open_only: bool, limit: int = 200) -> list[HandoffDetail]: ...

    async def work_handoff(self, handoff_id: str, status: Literal["taken", "closed"], *, person: str,
                           resolution: str | None) -> HandoffDetail: ...

    # Ownership of `ticket_id` (see `SupportBackend.owners`).
    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]: ...

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None: ...

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None: ...


RECONTACT_SECONDS = 7 * 86400


@dataclass(frozen=True, slots=True)
class TicketOutcomes:
    """The guide's outcome metrics over the tickets opened in a window, for `deskgate report`."""

    tickets: int                       # opened in the window
    resolved: int                      # of those, closed
    recontacted: int                   # resolved ones whose customer opened another ticket within 7 days
    resolution_seconds: tuple[int, ...]  # opened -> closed, of each resolved one


@runtime_checkable
class TicketMetrics(Protocol):
    """A ticket system that can report outcomes (the demo can; a helpdesk adapter may not)."""

    def ticket_outcomes(self, *, since: int | None, until: int | None) -> TicketOutcomes:
        """Over tickets opened in [since, until); a closed ticket counts as resolved at its last update."""
        ...


Channel = Literal["chat", "phone", "email"]
CHANNELS: tuple[Channel, ...] = ("chat", "phone", "email")


@runtime_checkable
class TicketChannels(Protocol):
    """A ticket system that records the channel a ticket came in by (a customer's code lives accordingly)."""

    async def ticket_channel(self, ticket_id: str) -> Channel | None:
        """chat, phone or email; None when the ticket records none."""
        ...
