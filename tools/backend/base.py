"""`SupportBackend`: the small interface between the tools and a company's support systems.

deskgate ships one implementation, `SqlSupportBackend` (the demo backend, SQLite or PostgreSQL);
a company plugs its real systems in by implementing this class. The contract:

- Methods return the domain records of `deskgate.tools.models`, which are also the tool outputs.
- An unknown id raises `NotFound` ("order O-123 not found"); a wrong state raises `DomainError`
  (refund above what is refundable, cancelling a cancelled subscription, changing the address of a
  shipped order). Reasons name ids, never personal data. A refused call changes nothing.
- Business rules of the domain live here (`check_refundable`, `check_cancellable` are shared
  by every implementation and by the confirmation previews); *policy* (tiers, thresholds, who may do what, reason
  code lists, rate limits) is the guard chain's and is not repeated here.
- Writes take `now` (unix seconds, the call's single clock reading) and `actor` (the session
  subject), so records are reproducible in tests and attributable in the audit trail.
- The guard chain resolves object bindings and gates with `owners`, `customer_for`,
  `account_for`, `member_role` and `open_invoice_count`; the policy engine sends one-time codes
  with `send_customer_email` and hands calls to humans with `create_handoff`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Literal

from deskgate.server.errors import DomainError
from deskgate.tools.backend.kinds import FindBy, Intent, ObjectKind, PreferenceName, VerifyMethod
from deskgate.tools.backend.tickets import Channel
from deskgate.tools.models import (
    Account,
    ActionOwner,
    ActionUndone,
    Address,
    AddressChanged,
    CreditApplied,
    Customer,
    CustomerSummary,
    Handoff,
    HandoffDetail,
    Invoice,
    InvoiceStatus,
    NoteAdded,
    Order,
    OrderStatus,
    PasswordResetSent,
    PreferencesChanged,
    Priority,
    RefundEligibility,
    RefundIssued,
    ReplyPosted,
    ReversibleAction,
    Role,
    SettableTicketStatus,
    Subscription,
    Ticket,
    TicketStatus,
    TicketStatusSet,
    TicketSummary,
)


def check_refundable(order_id: str, remaining: Decimal, currency: str, amount: Decimal | None) -> None:
    """The refund rule: something is left to refund, and never more than what is left."""
    if remaining <= 0:
        raise DomainError(f"order {order_id} is already fully refunded", code="nothing_refundable")
    if amount is not None and amount > remaining:
        raise DomainError(f"at most {remaining} {currency} is refundable on order {order_id}",
                          code="amount_above_refundable")


def check_cancellable(subscription: Subscription) -> None:
    """The cancellation rule: only an active subscription can be cancelled."""
    if subscription.status != "active":
        raise DomainError(f"subscription {subscription.subscription_id} is already {subscription.status}",
                          code="not_active")


def check_replyable(ticket_id: str, status: TicketStatus) -> None:
    """The reply rule: a closed ticket takes no more replies (reopening it is for people)."""
    if status == "closed":
        raise DomainError(f"ticket {ticket_id} is closed", code="ticket_closed")


def status_after(ticket_id: str, status: TicketStatus, wanted: SettableTicketStatus) -> TicketStatus:
    """The status-change rule: what `wanted` makes of a ticket that is `status` now. Solved reads back as
    closed; a ticket handed to a human is theirs to change, and a closed one is only ever solved."""
    if status == "escalated":
        raise DomainError(f"ticket {ticket_id} is with a human specialist: they set its status",
                          code="ticket_escalated")
    if status == "closed" and wanted != "solved":
        raise DomainError(f"ticket {ticket_id} is closed", code="ticket_closed")
    return "closed" if wanted == "solved" else "pending"


class SupportBackend(ABC):
    """Everything the tools and the guard chain ask of the support systems, in one place.

    It is the union of the four domain interfaces (`identity.py`, `commerce.py`, `billing.py`,
    `tickets.py`) and the action journal (`journal.py`). The demo `SqlSupportBackend` implements
    all of it; `ComposedBackend` builds it from one implementation per domain, as configured.
    """

    # --- reads ------------------------------------------------------------------------------

    @abstractmethod
    async def find_customers(self, by: FindBy, value: str, *, limit: int = 10) -> list[CustomerSummary]:
        """Customers matching a normalised email, an E.164 phone number or an order id."""

    @abstractmethod
    async def get_customer(self, customer_id: str) -> Customer: ...

    @abstractmethod
    async def get_account(self, account_id: str) -> Account: ...

    @abstractmethod
    async def get_order(self, order_id: str) -> Order: ...

    @abstractmethod
    async def list_orders(self, customer_id: str, *, status: OrderStatus | None = None,
                          limit: int = 20) -> list[Order]:
        """Newest first; `NotFound` for an unknown customer."""

    @abstractmethod
    async def get_subscription(self, subscription_id: str) -> Subscription: ...

    @abstractmethod
    async def list_invoices(self, *, customer_id: str | None = None, account_id: str | None = None,
                            status: InvoiceStatus | None = None, limit: int = 20) -> list[Invoice]:
        """Newest first, of one customer or one account (exactly one of the two)."""

    @abstractmethod
    async def get_ticket(self, ticket_id: str) -> Ticket: ...

    @abstractmethod
    async def list_tickets(self, customer_id: str, *, status: TicketStatus | None = None,
                           limit: int = 20) -> list[TicketSummary]: ...

    @abstractmethod
    async def refund_eligibility(self, order_id: str) -> RefundEligibility:
        """What is still refundable on an order (the domain rule; policy limits come on top)."""

    @abstractmethod
    async def refund_destination(self, order_id: str) -> str:
        """Where a refund goes, for previews: e.g. 'card ending 4242' (no more than the last four)."""

    @abstractmethod
    async def get_action(self, action_id: str) -> ReversibleAction: ...

    @abstractmethod
    async def get_handoff(self, handoff_id: str) -> Handoff: ...

    @abstractmethod
    async def handoff_detail(self, handoff_id: str) -> HandoffDetail: ...

    @abstractmethod
    async def list_handoffs(self, *, open_only: bool, limit: int = 200) -> list[HandoffDetail]:
        """Hand-offs newest first: queued and taken ones (`open_only`), or every one."""

    @abstractmethod
    async def work_handoff(self, handoff_id: str, status: Literal["taken", "closed"], *, person: str,
                           resolution: str | None) -> HandoffDetail:
        """queued -> taken by `person`; queued or taken -> closed with the `resolution` the agent reads.
        A closed hand-off changes no more (`DomainError`, code `handoff_closed`)."""

    # --- what the guard chain asks ----------------------------------------------------------

    @abstractmethod
    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]:
        """Customer ids owning an object: a customer itself; an account its members; an order,
        ticket or invoice its customer; a subscription or invoice of an account its customer and
        the account's members. Empty for an unknown id (the chain then denies a bound session)."""

    @abstractmethod
    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None:
        """The single customer an object belongs to; None for an unknown id or an account."""

    @abstractmethod
    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None:
        """The B2B account of an object (for a customer: the account, if a member of exactly one)."""

    @abstractmethod
    async def member_role(self, account_id: str, customer_id: str) -> Role | None: ...

    @abstractmethod
    async def open_invoice_count(self, account_id: str) -> int: ...

    # --- what the policy's facts ask (`server/policy/facts.py`) ----------------------------------

    def reports(self, source: type) -> bool:
        """Whether this backend can answer the methods of `source` (e.g. `PaymentFacts`); a policy that gates on
        a fact of a source the backend cannot report stops start-up."""
        return isinstance(self, source)

    @abstractmethod
    async def failed_payment_count(self, kind: ObjectKind, object_id: str) -> int:
        """Unpaid invoices whose payment failed, of a subscription, an account or a customer (`kind`)."""

    @abstractmethod
    async def refund_count(self, order_id: str) -> int:
        """Refunds made so far on an order."""

    @abstractmethod
    async def ticket_channel(self, ticket_id: str) -> Channel | None:
        """The channel a ticket came in by (chat, phone, email); None when the ticket system records none."""

    # --- writes -----------------------------------------------------------------------------

    @abstractmethod
    async def check_identity(self, customer_id: str, method: VerifyMethod, value: str) -> bool:
        """Compare a claimed secret with the one on file in constant time; `NotFound` if unknown."""

    @abstractmethod
    async def update_email_preferences(self, customer_id: str, changes: dict[PreferenceName, bool], *,
                                       actor: str, now: int, reversible_until: int) -> PreferencesChanged: ...

    @abstractmethod
    async def change_shipping_address(self, order_id: str, address: Address, *,
                                      actor: str, now: int, reversible_until: int) -> AddressChanged:
        """Only while the order is pending (not shipped)."""

    @abstractmethod
    async def send_password_reset(self, customer_id: str, *, now: int, ttl_seconds: int) -> PasswordResetSent:
        """Email a reset link to the address on file; only a digest of its token is stored."""

    @abstractmethod
    async def send_customer_email(self, customer_id: str, kind: str, subject: str, body: str, *,
                                  now: int | None = None) -> str:
        """Queue an email to the customer's address on file; returns the outbox id (`M-<n>`)."""

    @abstractmethod
    async def issue_refund(self, order_id: str, amount: Decimal, reason_code: str, *,
                           actor: str, now: int, intent: Intent | None = None) -> RefundIssued:
        """Never above the order's remaining refundable amount. Final."""

    @abstractmethod
    async def apply_account_credit(self, account_id: str, amount: Decimal, reason_code: str, *,
                                   actor: str, now: int, reversible_until: int,
                                   intent: Intent | None = None) -> CreditApplied: ...

    @abstractmethod
    async def cancel_subscription(self, subscription_id: str, requester_id: str, reason_code: str, *,
                                  actor: str, now: int, intent: Intent | None = None) -> Subscription:
        """Only an active subscription, at the request of its customer or a member of its account."""

    @abstractmethod
    async def add_ticket_note(self, ticket_id: str, body: str, *, actor: str, now: int) -> NoteAdded: ...

    @abstractmethod
    async def reply_to_customer(self, ticket_id: str, body: str, *, actor: str, now: int) -> ReplyPosted:
        """Post `body` (already masked) on the ticket where the customer reads it; refused on a closed ticket
        (`check_replyable`)."""

    @abstractmethod
    async def set_ticket_status(self, ticket_id: str, status: SettableTicketStatus, *, actor: str,
                                now: int) -> TicketStatusSet:
        """Move the ticket as `status_after` says; asking for the status it has changes nothing."""

    @abstractmethod
    async def create_handoff(self, *, customer_id: str | None, ticket_id: str | None, summary: str, tried: str,
                             proposed_action: str, priority: Priority, source: Literal["agent", "policy"],
                             actor: str, now: int | None = None) -> str:
        """Queue a hand-off to a human; returns its id (`H-<n>`). A ticket is marked escalated. Neither
        customer nor ticket is fine (e.g. policy escalating an account-level call); both must agree."""

    @abstractmethod
    async def payment_reference(self, order_id: str) -> str | None:
        """The payment provider's reference of the order's payment (None: the backend keeps none)."""

    @abstractmethod
    async def undo_action(self, action_id: str, owner: ActionOwner, *, actor: str, now: int) -> ActionUndone:
        """Reverse a recorded action of `owner` before its `reversible_until`, if nothing changed it
        since. An action of another owner is `NotFound`, exactly like an unknown one."""


__all__ = ["FindBy", "Intent", "ObjectKind", "PreferenceName", "SupportBackend", "VerifyMethod", "check_cancellable",
           "check_refundable", "check_replyable", "status_after"]
