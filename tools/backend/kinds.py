"""Small shared vocabulary of the backend interfaces: object kinds, lookup criteria, the call's intent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ObjectKind = Literal["customer_id", "account_id", "order_id", "ticket_id", "subscription_id", "invoice_id"]
FindBy = Literal["email", "phone", "order_id"]
VerifyMethod = Literal["card_last4", "postcode"]
PreferenceName = Literal["marketing", "product_updates", "newsletter"]
Domain = Literal["billing", "tickets", "commerce", "identity"]


@dataclass(frozen=True, slots=True)
class Intent:
    """The audit intent a write carries out, as a backend needs it to act exactly once.

    `key` names the intent across retries: the session-scoped idempotency key of the call when it
    has one (a retry of the same call carries the same key), else the call's request id. `seq` is
    the intent record's place in the audit log. A backend sends `key` as the provider's idempotency
    key and stores `key`, `request_id` and `seq` in the object's metadata.
    """

    key: str
    request_id: str
    seq: int | None = None

    def __repr__(self) -> str:
        return f"Intent(request_id={self.request_id!r}, seq={self.seq!r})"
