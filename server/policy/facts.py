"""The named facts that policy gates test, one small function each.

A gate in `config/policy.toml` says "fact F must be true/false, otherwise deny/assist/escalate";
the facts are the only code. Each reads the call's arguments and asks the support backend or the
state store; `FactContext` resolves the account and the customer once per call and caches them.

A fact that cannot establish what it asserts answers the cautious way: an unknown requester is
not an admin, an unknown customer is not verified, a missing reason code is not allowed. A fact
with no value for a call (None: an order not delivered yet has no days since delivery) fails its
gate unless the gate says `if_absent = "pass"`. A fact whose data only some backends keep names
that `source` (e.g. `PaymentFacts`): a policy gating on it over a backend that cannot report it
stops start-up, and a source that is down fails the call closed (`backend_unavailable`).

Adding a fact: one function here, one entry in `FACTS`, and its test (`tests/policy/test_facts.py`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deskgate.server.errors import NotFound
from deskgate.tools.backend.billing import PaymentFacts

if TYPE_CHECKING:
    from deskgate.scopes.session import Session
    from deskgate.server.store.state import StateStore
    from deskgate.tools.backend.base import ObjectKind, SupportBackend

# Arguments an account or a customer can be derived from, most specific first.
ACCOUNT_ARGUMENTS: tuple[ObjectKind, ...] = ("account_id", "subscription_id", "order_id", "ticket_id")
CUSTOMER_ARGUMENTS: tuple[ObjectKind, ...] = ("customer_id", "order_id", "subscription_id", "ticket_id")
_UNRESOLVED = object()


@dataclass(slots=True)
class FactContext:
    """One call, as the facts see it. Lookups are cached for the call's duration only."""

    tool: str
    arguments: Mapping[str, Any]
    session: Session
    backend: SupportBackend
    state: StateStore
    reason_codes: frozenset[str]
    now: int = 0  # the call's clock reading (unix seconds); `PolicyEngine.decide` always gives it
    _cache: dict[str, Any] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """A non-empty string argument, or None."""
        value = self.arguments.get(name)
        return value if isinstance(value, str) and value else None

    async def account(self) -> str | None:
        """The B2B account the call acts on, if any."""
        if "account" not in self._cache:
            self._cache["account"] = await self._first(ACCOUNT_ARGUMENTS, "account_id", self.backend.account_for)
        return self._cache["account"]

    async def customer(self) -> str | None:
        """The customer the call acts on (for an account-level call: the requester)."""
        if "customer" not in self._cache:
            requester = self.text("requester_id")
            self._cache["customer"] = requester or await self._first(
                CUSTOMER_ARGUMENTS, "customer_id", self.backend.customer_for)
        return self._cache["customer"]

    def missing(self) -> NotFound:
        """What to answer when the call's customer cannot be resolved: the object it names was not found,
        said as a read of that object says it ("order O-5531 not found")."""
        for kind in CUSTOMER_ARGUMENTS:
            object_id = self.text(kind)
            if object_id is not None:
                return NotFound(f"{kind.removesuffix('_id')} {object_id} not found")
        return NotFound("the customer this call acts on was not found")

    async def currency(self) -> str:
        """The currency a money call pays out in: its order's, or its account's."""
        if "currency" not in self._cache:
            order, account = self.text("order_id"), self.text("account_id")
            if order is not None:
                self._cache["currency"] = (await self.backend.get_order(order)).currency
            elif account is not None:
                self._cache["currency"] = (await self.backend.get_account(account)).currency
            else:
                raise NotFound("the order or account this payout is for was not found")
        return str(self._cache["currency"])

    async def _first(self, kinds: tuple[ObjectKind, ...], direct: str,
                     lookup: Callable[[ObjectKind, str], Awaitable[str | None]]) -> str | None:
        for kind in kinds:
            object_id = self.text(kind)
            if object_id is not None:
                return object_id if kind == direct else await lookup(kind, object_id)
        return None


FactValue = bool | int | None
FactFn = Callable[[FactContext], Awaitable[FactValue]]
DAY = 86400


@dataclass(frozen=True, slots=True)
class Fact:
    fn: FactFn
    needs_all: tuple[str, ...] = ()  # every one of these arguments
    needs_any: tuple[str, ...] = ()  # and at least one of these
    number: bool = False             # a count (gated with `at_most`), else a flag (gated with `must_be`)
    source: type | None = None       # the backend interface that keeps its data, when not every backend does

    def missing(self, fields: set[str]) -> str | None:
        """What the tool's input lacks for this fact to be computable (checked at start-up)."""
        absent = [n for n in self.needs_all if n not in fields]
        if absent:
            return absent[0]
        if self.needs_any and not fields.intersection(self.needs_any):
            return " or ".join(self.needs_any)
        return None


async def requester_is_account_admin(ctx: FactContext) -> bool:
    requester, account = ctx.text("requester_id"), await ctx.account()
    if requester is None or account is None:
        return False
    return await ctx.backend.member_role(account, requester) == "admin"


async def account_has_open_invoices(ctx: FactContext) -> bool:
    # No account (a consumer order) means no invoices to be open.
    account = await ctx.account()
    return account is not None and await ctx.backend.open_invoice_count(account) > 0


async def identity_verified_in_session(ctx: FactContext) -> bool:
    customer = await ctx.customer()
    return customer is not None and await ctx.state.verifications.is_verified(ctx.session.sid, customer)


async def reason_code_allowed(ctx: FactContext) -> bool:
    code = ctx.text("reason_code")
    return code is not None and code in ctx.reason_codes


PAYER_ARGUMENTS: tuple[ObjectKind, ...] = ("subscription_id", "account_id", "customer_id")


async def payment_failed(ctx: FactContext) -> bool | None:
    # The subscription's, else the account's, else the customer's unpaid invoices whose payment failed.
    for kind in PAYER_ARGUMENTS:
        object_id = ctx.text(kind)
        if object_id is not None:
            return await ctx.backend.failed_payment_count(kind, object_id) > 0
    return None


async def days_since_delivery(ctx: FactContext) -> int | None:
    order = ctx.text("order_id")
    delivered = None if order is None else (await ctx.backend.get_order(order)).delivered_at
    return None if delivered is None else max(0, (ctx.now - int(delivered.timestamp())) // DAY)


async def refunds_on_order(ctx: FactContext) -> int | None:
    order = ctx.text("order_id")
    return None if order is None else await ctx.backend.refund_count(order)


FACTS: dict[str, Fact] = {
    "requester_is_account_admin": Fact(requester_is_account_admin, ("requester_id",), ACCOUNT_ARGUMENTS),
    "account_has_open_invoices": Fact(account_has_open_invoices, (), ACCOUNT_ARGUMENTS),
    "identity_verified_in_session": Fact(identity_verified_in_session, (), ("requester_id", *CUSTOMER_ARGUMENTS)),
    "reason_code_allowed": Fact(reason_code_allowed, ("reason_code",)),
    "payment_failed": Fact(payment_failed, (), PAYER_ARGUMENTS, source=PaymentFacts),
    "days_since_delivery": Fact(days_since_delivery, ("order_id",), number=True),
    "refunds_on_order": Fact(refunds_on_order, ("order_id",), number=True, source=PaymentFacts),
}
