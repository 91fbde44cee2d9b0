"""`ComposedBackend`: the `SupportBackend` the tools and the chain see, built from one backend per domain.

Each method goes to the domain that owns it; the ownership lookups of the chain (`owners`,
`customer_for`, `account_for`) go to the domain that owns the object kind. With every domain on
the demo `SqlSupportBackend` (no `[backends]` section) this is a thin pass-through.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias

from deskgate.server.errors import BackendUnavailable
from deskgate.tools.backend.base import SupportBackend
from deskgate.tools.backend.billing import BillingBackend, ExternalCredits, PaymentFacts
from deskgate.tools.backend.commerce import CommerceBackend
from deskgate.tools.backend.identity import IdentityBackend
from deskgate.tools.backend.journal import ActionJournal
from deskgate.tools.backend.kinds import FindBy, Intent, ObjectKind, PreferenceName, VerifyMethod
from deskgate.tools.backend.tickets import Channel, TicketChannels, TicketsBackend
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

Owner: TypeAlias = IdentityBackend | CommerceBackend | BillingBackend | TicketsBackend


@dataclass(frozen=True, slots=True)
class Domains:
    identity: IdentityBackend
    commerce: CommerceBackend
    billing: BillingBackend
    tickets: TicketsBackend
    journal: ActionJournal

    def distinct(self) -> list[object]:
        """Each backend once, however many domains it serves."""
        every = (self.identity, self.commerce, self.billing, self.tickets, self.journal)
        return list({id(b): b for b in every}.values())


class ComposedBackend(SupportBackend):
    def __init__(self, domains: Domains) -> None:
        self.domains = domains
        d = domains
        self._owner_of: dict[ObjectKind, Owner] = {
            "customer_id": d.identity, "account_id": d.identity, "order_id": d.commerce,
            "subscription_id": d.billing, "invoice_id": d.billing, "ticket_id": d.tickets,
        }

    # --- identity ---------------------------------------------------------------------------

    async def find_customers(self, by: FindBy, value: str, *, limit: int = 10) -> list[CustomerSummary]:
        return await self.domains.identity.find_customers(by, value, limit=limit)

    async def get_customer(self, customer_id: str) -> Customer:
        return await self.domains.identity.get_customer(customer_id)

    async def get_account(self, account_id: str) -> Account:
        return await self.domains.identity.get_account(account_id)

    async def member_role(self, account_id: str, customer_id: str) -> Role | None:
        return await self.domains.identity.member_role(account_id, customer_id)

    async def check_identity(self, customer_id: str, method: VerifyMethod, value: str) -> bool:
        return await self.domains.identity.check_identity(customer_id, method, value)

    async def update_email_preferences(self, customer_id: str, changes: dict[PreferenceName, bool], *,
                                       actor: str, now: int, reversible_until: int) -> PreferencesChanged:
        return await self.domains.identity.update_email_preferences(customer_id, changes, actor=actor, now=now,
                                                                    reversible_until=reversible_until)

    async def send_password_reset(self, customer_id: str, *, now: int, ttl_seconds: int) -> PasswordResetSent:
        return await self.domains.identity.send_password_reset(customer_id, now=now, ttl_seconds=ttl_seconds)

    async def send_customer_email(self, customer_id: str, kind: str, subject: str, body: str, *,
                                  now: int | None = None) -> str:
        return await self.domains.identity.send_customer_email(customer_id, kind, subject, body, now=now)

    # --- commerce ---------------------------------------------------------------------------

    async def get_order(self, order_id: str) -> Order:
        return await self.domains.commerce.get_order(order_id)

    async def list_orders(self, customer_id: str, *, status: OrderStatus | None = None,
                          limit: int = 20) -> list[Order]:
        return await self.domains.commerce.list_orders(customer_id, status=status, limit=limit)

    async def change_shipping_address(self, order_id: str, address: Address, *,
                                      actor: str, now: int, reversible_until: int) -> AddressChanged:
        return await self.domains.commerce.change_shipping_address(order_id, address, actor=actor, now=now,
                                                                   reversible_until=reversible_until)

    async def payment_reference(self, order_id: str) -> str | None:
        return await self.domains.commerce.payment_reference(order_id)

    # --- billing ----------------------------------------------------------------------------

    async def get_subscription(self, subscription_id: str) -> Subscription:
        return await self.domains.billing.get_subscription(subscription_id)

    async def list_invoices(self, *, customer_id: str | None = None, account_id: str | None = None,
                            status: InvoiceStatus | None = None, limit: int = 20) -> list[Invoice]:
        return await self.domains.billing.list_invoices(customer_id=customer_id, account_id=account_id,
                                                        status=status, limit=limit)

    async def open_invoice_count(self, account_id: str) -> int:
        return await self.domains.billing.open_invoice_count(account_id)

    async def refund_eligibility(self, order_id: str) -> RefundEligibility:
        return await self.domains.billing.refund_eligibility(order_id)

    async def refund_destination(self, order_id: str) -> str:
        return await self.domains.billing.refund_destination(order_id)

    async def issue_refund(self, order_id: str, amount: Decimal, reason_code: str, *,
                           actor: str, now: int, intent: Intent | None = None) -> RefundIssued:
        return await self.domains.billing.issue_refund(order_id, amount, reason_code, actor=actor, now=now,
                                                       intent=intent)

    async def apply_account_credit(self, account_id: str, amount: Decimal, reason_code: str, *,
                                   actor: str, now: int, reversible_until: int,
                                   intent: Intent | None = None) -> CreditApplied:
        return await self.domains.billing.apply_account_credit(account_id, amount, reason_code, actor=actor, now=now,
                                                               reversible_until=reversible_until, intent=intent)

    async def cancel_subscription(self, subscription_id: str, requester_id: str, reason_code: str, *,
                                  actor: str, now: int, intent: Intent | None = None) -> Subscription:
        return await self.domains.billing.cancel_subscription(subscription_id, requester_id, reason_code,
                                                              actor=actor, now=now, intent=intent)

    # --- the policy's facts, from the domain that keeps them ---------------------------------

    def reports(self, source: type) -> bool:
        return source is PaymentFacts and isinstance(self.domains.billing, PaymentFacts)

    def _payments(self) -> PaymentFacts:
        billing = self.domains.billing
        if not isinstance(billing, PaymentFacts):  # start-up refuses such a policy; fail closed regardless
            raise BackendUnavailable("the billing system cannot report payments: the policy cannot decide this "
                                     "call; nothing was done", code="fact_unavailable")
        return billing

    async def failed_payment_count(self, kind: ObjectKind, object_id: str) -> int:
        return await self._payments().failed_payment_count(kind, object_id)

    async def refund_count(self, order_id: str) -> int:
        return await self._payments().refund_count(order_id)

    # --- tickets ----------------------------------------------------------------------------

    async def ticket_channel(self, ticket_id: str) -> Channel | None:
        tickets = self.domains.tickets
        return await tickets.ticket_channel(ticket_id) if isinstance(tickets, TicketChannels) else None

    async def get_ticket(self, ticket_id: str) -> Ticket:
        return await self.domains.tickets.get_ticket(ticket_id)

    async def list_tickets(self, customer_id: str, *, status: TicketStatus | None = None,
                           limit: int = 20) -> list[TicketSummary]:
        return await self.domains.tickets.list_tickets(customer_id, status=status, limit=limit)

    async def add_ticket_note(self, ticket_id: str, body: str, *, actor: str, now: int) -> NoteAdded:
        return await self.domains.tickets.add_ticket_note(ticket_id, body, actor=actor, now=now)

    async def reply_to_customer(self, ticket_id: str, body: str, *, actor: str, now: int) -> ReplyPosted:
        return await self.domains.tickets.reply_to_customer(ticket_id, body, actor=actor, now=now)

    async def set_ticket_status(self, ticket_id: str, status: SettableTicketStatus, *, actor: str,
                                now: int) -> TicketStatusSet:
        return await self.domains.tickets.set_ticket_status(ticket_id, status, actor=actor, now=now)

    async def create_handoff(self, *, customer_id: str | None, ticket_id: str | None, summary: str, tried: str,
                             proposed_action: str, priority: Priority, source: Literal["agent", "policy"],
                             actor: str, now: int | None = None) -> str:
        return await self.domains.tickets.create_handoff(
            customer_id=customer_id, ticket_id=ticket_id, summary=summary, tried=tried,
            proposed_action=proposed_action, priority=priority, source=source, actor=actor, now=now)

    async def get_handoff(self, handoff_id: str) -> Handoff:
        return await self.domains.tickets.get_handoff(handoff_id)

    async def handoff_detail(self, handoff_id: str) -> HandoffDetail:
        return await self.domains.tickets.handoff_detail(handoff_id)

    async def list_handoffs(self, *, open_only: bool, limit: int = 200) -> list[HandoffDetail]:
        return await self.domains.tickets.list_handoffs(open_only=open_only, limit=limit)

    async def work_handoff(self, handoff_id: str, status: Literal["taken", "closed"], *, person: str,
                           resolution: str | None) -> HandoffDetail:
        return await self.domains.tickets.work_handoff(handoff_id, status, person=person, resolution=resolution)

    # --- the action journal -----------------------------------------------------------------

    async def get_action(self, action_id: str) -> ReversibleAction:
        return await self.domains.journal.get_action(action_id)

    async def undo_action(self, action_id: str, owner: ActionOwner, *, actor: str, now: int) -> ActionUndone:
        billing = self.domains.billing
        external = {"apply_account_credit": billing.reverse_credit} if isinstance(billing, ExternalCredits) else None
        return await self.domains.journal.undo_action(action_id, owner, actor=actor, now=now, external=external)

    # --- ownership, by the domain that owns the kind ----------------------------------------

    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]:
        return await self._owner_of[kind].owners(kind, object_id)

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None:
        return await self._owner_of[kind].customer_for(kind, object_id)

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None:
        return await self._owner_of[kind].account_for(kind, object_id)
