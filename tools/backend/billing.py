"""`BillingBackend`: money - refunds of orders' payments, account credits, subscriptions, invoices.

Owns the ids of kind `subscription_id` and `invoice_id`. Every money write is told the audit intent
it carries out (`intent`), so an adapter over a payment provider can make it exactly-once (an
idempotency key derived from it, the intent named in the provider object's metadata).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol, runtime_checkable

from deskgate.tools.backend.kinds import Intent, ObjectKind
from deskgate.tools.models import (
    CreditApplied,
    Invoice,
    InvoiceStatus,
    RefundEligibility,
    RefundIssued,
    ReversibleAction,
    Subscription,
)


class BillingBackend(Protocol):
    async def get_subscription(self, subscription_id: str) -> Subscription: ...

    async def list_invoices(self, *, customer_id: str | None = None, account_id: str | None = None,
                            status: InvoiceStatus | None = None, limit: int = 20) -> list[Invoice]:
        """Newest first, of one customer or one account (exactly one of the two)."""
        ...

    async def open_invoice_count(self, account_id: str) -> int: ...

    async def refund_eligibility(self, order_id: str) -> RefundEligibility:
        """What is still refundable on an order (the domain rule; policy limits come on top)."""
        ...

    async def refund_destination(self, order_id: str) -> str:
        """Where a refund goes, for previews: e.g. 'visa card ending 4242' (no more than the last four)."""
        ...

    async def issue_refund(self, order_id: str, amount: Decimal, reason_code: str, *,
                           actor: str, now: int, intent: Intent | None = None) -> RefundIssued:
        """Never above the order's remaining refundable amount. Final."""
        ...

    async def apply_account_credit(self, account_id: str, amount: Decimal, reason_code: str, *,
                                   actor: str, now: int, reversible_until: int,
                                   intent: Intent | None = None) -> CreditApplied: ...

    async def cancel_subscription(self, subscription_id: str, requester_id: str, reason_code: str, *,
                                  actor: str, now: int, intent: Intent | None = None) -> Subscription:
        """Only an active subscription, at the request of its customer or a member of its account."""
        ...

    # Ownership of `subscription_id` and `invoice_id` (see `SupportBackend.owners`).
    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]: ...

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None: ...

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None: ...


@runtime_checkable
class ExternalCredits(Protocol):
    """A billing backend whose credits live outside the action journal's database: `undo_action` of a
    credit asks it to take the credit back there (refused once the credit was used)."""

    async def reverse_credit(self, action: ReversibleAction) -> None: ...


@runtime_checkable
class PaymentFacts(Protocol):
    """A billing backend that tells the policy what it knows of payments (`server/policy/facts.py`). A
    backend without it cannot feed the facts that need it: a policy gate on them stops start-up."""

    async def failed_payment_count(self, kind: ObjectKind, object_id: str) -> int:
        """Unpaid invoices whose payment failed, of a subscription, an account or a customer (`kind`)."""
        ...

    async def refund_count(self, order_id: str) -> int:
        """Refunds made so far on an order (succeeded or pending)."""
        ...
