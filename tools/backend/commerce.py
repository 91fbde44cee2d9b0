"""`CommerceBackend`: orders, their shipment and the payment each was paid with.

Owns the ids of kind `order_id`. The billing side refunds against `payment_reference(order_id)`
(e.g. a Stripe PaymentIntent id); the demo keeps its own refunds and answers None.
"""

from __future__ import annotations

from typing import Protocol

from deskgate.tools.backend.kinds import ObjectKind
from deskgate.tools.models import Address, AddressChanged, Order, OrderStatus


class CommerceBackend(Protocol):
    async def get_order(self, order_id: str) -> Order: ...

    async def list_orders(self, customer_id: str, *, status: OrderStatus | None = None,
                          limit: int = 20) -> list[Order]:
        """Newest first; `NotFound` for an unknown customer."""
        ...

    async def change_shipping_address(self, order_id: str, address: Address, *,
                                      actor: str, now: int, reversible_until: int) -> AddressChanged:
        """Only while the order is pending (not shipped)."""
        ...

    async def payment_reference(self, order_id: str) -> str | None:
        """The payment provider's reference of the order's payment; None when the backend keeps none."""
        ...

    # Ownership of `order_id` (see `SupportBackend.owners`).
    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]: ...

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None: ...

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None: ...
