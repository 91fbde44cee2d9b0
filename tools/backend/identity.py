"""`IdentityBackend`: who the customer is - profiles, B2B accounts, identity checks and their mail.

Owns the ids of kind `customer_id` and `account_id`: every other domain names its objects' owners
with these ids, so the binding of a session (one customer) means the same thing in every system.
"""

from __future__ import annotations

from typing import Protocol

from deskgate.tools.backend.kinds import FindBy, ObjectKind, PreferenceName, VerifyMethod
from deskgate.tools.models import Account, Customer, CustomerSummary, PasswordResetSent, PreferencesChanged, Role


class IdentityBackend(Protocol):
    async def find_customers(self, by: FindBy, value: str, *, limit: int = 10) -> list[CustomerSummary]:
        """Customers matching a normalised email, an E.164 phone number or an order id."""
        ...

    async def get_customer(self, customer_id: str) -> Customer: ...

    async def get_account(self, account_id: str) -> Account: ...

    async def member_role(self, account_id: str, customer_id: str) -> Role | None: ...

    async def check_identity(self, customer_id: str, method: VerifyMethod, value: str) -> bool:
        """Compare a claimed secret with the one on file in constant time; `NotFound` if unknown."""
        ...

    async def update_email_preferences(self, customer_id: str, changes: dict[PreferenceName, bool], *,
                                       actor: str, now: int, reversible_until: int) -> PreferencesChanged: ...

    async def send_password_reset(self, customer_id: str, *, now: int, ttl_seconds: int) -> PasswordResetSent:
        """Email a reset link to the address on file; only a digest of its token is stored."""
        ...

    async def send_customer_email(self, customer_id: str, kind: str, subject: str, body: str, *,
                                  now: int | None = None) -> str:
        """Queue an email to the customer's address on file; returns the outbox id (`M-<n>`)."""
        ...

    # Ownership of `customer_id` and `account_id` (see `SupportBackend.owners`).
    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]: ...

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None: ...

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None: ...
