"""`StripeBilling`: the billing domain on Stripe, through the official `stripe` SDK.

What lives where:
    refunds        Stripe refunds of the PaymentIntent commerce recorded for the order
                   (`CommerceBackend.payment_reference`); what is refundable is Stripe's own count
    subscriptions  Stripe subscriptions (`sub_…`); their deskgate customer and account are in the
                   subscription's metadata (`deskgate_customer`, `deskgate_account`)
    invoices       Stripe invoices (`in_…`) of the Stripe customer of a deskgate customer or account
                   (`provider_refs`, filled by `deskgate init --stripe`); draft and open are "open"
    facts          failed payments (open invoices Stripe attempted and could not collect) and refunds so
                   far on an order, for the policy's gates (`PaymentFacts`)
    credits        negative invoice items (`ii_…`) on the account's Stripe customer, taken by its next
                   invoice; journaled in the demo database, so `undo_action` deletes one not yet used
    previews       the card brand and last four digits of the payment's PaymentMethod

Exactly once. A money write (refund, credit) is carried out for one audit `Intent`:
    1. the ledger records the intent as started (an intent already done answers its first result);
    2. a started intent without outcome (a retry after a crash or a timeout) is first looked up in
       Stripe by the `deskgate_intent` metadata it would carry; found, it is recorded, not repeated;
    3. the request carries `Idempotency-Key: deskgate-<intent>` and the metadata
       `deskgate_intent`, `deskgate_request`, `deskgate_audit_seq` and the object's deskgate id;
    4. the ledger records the result. `recover` runs step 2 for every started intent at start-up.
Real Stripe also honours the idempotency key; the metadata lookup does not depend on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import stripe

from deskgate.server.errors import BackendUnavailable, DeskgateError, DomainError, NotFound
from deskgate.server.settings import BackendSection
from deskgate.tools.backend.base import check_cancellable, check_refundable
from deskgate.tools.backend.commerce import CommerceBackend
from deskgate.tools.backend.identity import IdentityBackend
from deskgate.tools.backend.ids import matches
from deskgate.tools.backend.journal import ActionJournal
from deskgate.tools.backend.kinds import Intent, ObjectKind
from deskgate.tools.backend.ledger import IntentLedger, LedgerEntry
from deskgate.tools.backend.remote import Remote
from deskgate.tools.backend.sql import minor_units, money
from deskgate.tools.models import (
    ActionOwner,
    CreditApplied,
    Invoice,
    InvoiceStatus,
    RefundEligibility,
    RefundIssued,
    ReversibleAction,
    Subscription,
)

SYSTEM = "stripe"
_OPEN = {"draft", "open"}


def _at(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def classify(exc: BaseException) -> DeskgateError | None:
    """Stripe's errors as deskgate's: unavailable, not found or refused - never Stripe's own text."""
    if isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError | stripe.AuthenticationError
                  | stripe.PermissionError):
        return BackendUnavailable("the billing system is unavailable; nothing was done")
    if isinstance(exc, stripe.APIError):
        return BackendUnavailable("the billing system is unavailable; nothing was done")
    if isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 404:
        return NotFound("not found in the billing system")
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        if status >= 500 or status in (408, 409, 429):
            return BackendUnavailable("the billing system is unavailable; nothing was done")
        return DomainError("the billing system refused the request", code="provider_refused")
    return None


def _counted(refunds: list[Any]) -> int:
    return sum(int(r["amount"]) for r in refunds if r["status"] in ("succeeded", "pending"))


def _eligibility(order_id: str, customer_id: str, order_status: Any, payment: Any,
                 refunds: list[Any]) -> RefundEligibility:
    total, refunded = int(payment["amount"]), _counted(refunds)
    return RefundEligibility(order_id=order_id, customer_id=customer_id, order_status=order_status, total=money(total),
                             refunded=money(refunded), refundable_remaining=money(total - refunded),
                             currency=str(payment["currency"]).upper(), eligible=total > refunded)


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    return dict(obj.get("metadata") or {})


class StripeBilling:
    """Billing on Stripe. Built by `build_backend` for `[backends.billing] kind = "stripe"`."""

    system = SYSTEM

    def __init__(self, client: stripe.StripeClient, remote: Remote, *, commerce: CommerceBackend,
                 identity: IdentityBackend, journal: ActionJournal, ledger: IntentLedger,
                 clock: Callable[[], float] = time.time) -> None:
        self._api = client.v1
        self.remote = remote
        self._commerce = commerce
        self._identity = identity
        self._journal = journal
        self._ledger = ledger
        self._clock = clock
        self._owners_of_customer: dict[str, tuple[str | None, str | None]] = {}

    @classmethod
    def from_settings(cls, section: BackendSection, api_key: str, *, commerce: CommerceBackend,
                      identity: IdentityBackend, journal: ActionJournal, ledger: IntentLedger) -> StripeBilling:
        base = section.api_base or section.url
        client = stripe.StripeClient(
            api_key, base_addresses={"api": base} if base else None, max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=section.timeout_seconds))
        remote = Remote("the billing system (Stripe)", timeout=section.timeout_seconds,
                        failures=section.breaker_failures, cooldown=section.breaker_cooldown_seconds,
                        classify=classify)
        return cls(client, remote, commerce=commerce, identity=identity, journal=journal, ledger=ledger)

    async def _call(self, request: Callable[[], Any]) -> dict[str, Any]:
        """One Stripe request through the remote guard, answered as plain data."""
        answer: dict[str, Any] = await self.remote.call(lambda: request().to_dict())
        return answer

    # --- lookups ----------------------------------------------------------------------------

    async def _stripe_customer(self, kind: str, local_id: str) -> str | None:
        return await self._ledger.provider_ref(SYSTEM, kind, local_id)

    async def _owner_of_stripe_customer(self, customer: str) -> tuple[str | None, str | None]:
        """(deskgate customer, deskgate account) of a Stripe customer, from its metadata; cached."""
        if customer not in self._owners_of_customer:
            found = await self._call(lambda: self._api.customers.retrieve(customer))
            meta = _metadata(found)
            self._owners_of_customer[customer] = (meta.get("deskgate_customer"), meta.get("deskgate_account"))
        return self._owners_of_customer[customer]

    async def _retrieve_subscription(self, subscription_id: str) -> Any:
        if not matches("subscription_id", SYSTEM, subscription_id):
            raise NotFound(f"subscription {subscription_id} not found")
        try:
            return await self._call(lambda: self._api.subscriptions.retrieve(subscription_id))
        except NotFound:
            raise NotFound(f"subscription {subscription_id} not found") from None

    def _subscription(self, sub: Any) -> Subscription:
        meta = _metadata(sub)
        if "deskgate_customer" not in meta:
            raise NotFound(f"subscription {sub['id']} not found")  # not one deskgate knows
        plan = sub.get("plan") or sub["items"]["data"][0]["plan"]
        status = "cancelled" if sub["status"] in ("canceled", "incomplete_expired") else "active"
        return Subscription(
            subscription_id=sub["id"], customer_id=meta["deskgate_customer"], account_id=meta.get("deskgate_account"),
            plan=meta.get("deskgate_plan") or plan.get("nickname") or "plan", status=status,
            price=money(plan["amount"]), currency=str(plan["currency"]).upper(),
            billing_period="year" if plan["interval"] == "year" else "month",
            started_at=_at(sub.get("start_date") or sub["created"]),
            renews_at=None if status == "cancelled" else _at(sub.get("current_period_end")),
            cancelled_at=_at(sub.get("canceled_at") or sub.get("ended_at")) if status == "cancelled" else None)

    async def _invoice(self, inv: Any) -> Invoice | None:
        customer, account = await self._owner_of_stripe_customer(inv["customer"])
        meta = _metadata(inv)
        customer = meta.get("deskgate_customer", customer)
        if customer is None or inv["status"] not in _OPEN | {"paid"}:
            return None  # void, uncollectible, or not a deskgate customer's
        transitions = inv.get("status_transitions") or {}
        created = int(inv["created"])
        return Invoice(invoice_id=inv["id"], customer_id=customer, account_id=meta.get("deskgate_account", account),
                       subscription_id=inv.get("subscription"), amount=money(inv["amount_due"]),
                       currency=str(inv["currency"]).upper(), status="paid" if inv["status"] == "paid" else "open",
                       issued_at=_at(created), due_at=_at(inv.get("due_date") or created),
                       paid_at=_at(transitions.get("paid_at")) if inv["status"] == "paid" else None)

    async def _invoices_of(self, customer: str, limit: int) -> list[Invoice]:
        page = await self._call(lambda: self._api.invoices.list(params={"customer": customer, "limit": 100}))
        invoices = [i for i in [await self._invoice(raw) for raw in page["data"]] if i is not None]
        return sorted(invoices, key=lambda i: (i.issued_at, i.invoice_id), reverse=True)[:limit]

    # --- reads ------------------------------------------------------------------------------

    async def get_subscription(self, subscription_id: str) -> Subscription:
        return self._subscription(await self._retrieve_subscription(subscription_id))

    async def list_invoices(self, *, customer_id: str | None = None, account_id: str | None = None,
                            status: InvoiceStatus | None = None, limit: int = 20) -> list[Invoice]:
        if (customer_id is None) == (account_id is None):
            raise DomainError("list invoices of exactly one customer or one account", code="invalid_query")
        if customer_id is not None:
            if not await self._identity.owners("customer_id", customer_id):
                raise NotFound(f"customer {customer_id} not found")
            stripe_customer = await self._stripe_customer("customer", customer_id)
        else:
            await self._identity.get_account(str(account_id))  # NotFound for an unknown account
            stripe_customer = await self._stripe_customer("account", str(account_id))
        if stripe_customer is None:
            return []
        invoices = await self._invoices_of(stripe_customer, 100)
        return [i for i in invoices if status is None or i.status == status][:limit]

    async def open_invoice_count(self, account_id: str) -> int:
        stripe_customer = await self._stripe_customer("account", account_id)
        if stripe_customer is None:
            return 0
        return sum(1 for i in await self._invoices_of(stripe_customer, 100) if i.status == "open")

    async def failed_payment_count(self, kind: ObjectKind, object_id: str) -> int:
        """Open invoices Stripe attempted to collect and could not (`attempted`, or a positive `attempt_count`)."""
        if kind == "subscription_id":
            raw = await self._retrieve_subscription(object_id)
            self._subscription(raw)  # NotFound unless deskgate knows it
            page = await self._call(lambda: self._api.invoices.list(params={"subscription": object_id, "limit": 100}))
        elif kind in ("account_id", "customer_id"):
            customer = await self._stripe_customer("account" if kind == "account_id" else "customer", object_id)
            if customer is None:
                return 0
            page = await self._call(lambda: self._api.invoices.list(params={"customer": customer, "limit": 100}))
        else:
            raise DomainError(f"objects of kind {kind!r} have no payments", code="unknown_object_kind")
        return sum(1 for i in page["data"] if i["status"] == "open"
                   and (i.get("attempted") or int(i.get("attempt_count") or 0) > 0))

    async def refund_count(self, order_id: str) -> int:
        """Refunds of the order's payment that Stripe counts (succeeded or pending)."""
        _, refunds = await self._payment(order_id)
        return sum(1 for r in refunds if r["status"] in ("succeeded", "pending"))

    async def _payment(self, order_id: str) -> tuple[Any, list[Any]]:
        """The order's PaymentIntent and its refunds; `DomainError` when commerce names no payment."""
        reference = await self._commerce.payment_reference(order_id)
        if reference is None:
            await self._commerce.get_order(order_id)  # NotFound for an unknown order
            raise DomainError(f"order {order_id} has no payment in the billing system", code="no_payment")
        intent = await self._call(lambda: self._api.payment_intents.retrieve(reference))
        refunds = await self._call(lambda: self._api.refunds.list(params={"payment_intent": reference,
                                                                                "limit": 100}))
        return intent, list(refunds["data"])

    async def refund_eligibility(self, order_id: str) -> RefundEligibility:
        order = await self._commerce.get_order(order_id)
        intent, refunds = await self._payment(order_id)
        return _eligibility(order_id, order.customer_id, order.status, intent, refunds)

    async def refund_destination(self, order_id: str) -> str:
        intent, _ = await self._payment(order_id)
        method_id = intent.get("payment_method")
        if not method_id:
            return "the original payment method"
        method = await self._call(lambda: self._api.payment_methods.retrieve(str(method_id)))
        card = method.get("card")
        return f"{card['brand']} card ending {card['last4']}" if card else "the original payment method"

    # --- ownership --------------------------------------------------------------------------

    async def _owning(self, kind: ObjectKind, object_id: str) -> tuple[str, str | None] | None:
        try:
            if kind == "subscription_id":
                sub = self._subscription(await self._retrieve_subscription(object_id))
                return sub.customer_id, sub.account_id
            if kind == "invoice_id" and matches("invoice_id", SYSTEM, object_id):
                raw = await self._call(lambda: self._api.invoices.retrieve(object_id))
                invoice = await self._invoice(raw)
                return (invoice.customer_id, invoice.account_id) if invoice else None
        except NotFound:
            return None
        return None

    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]:
        owner = await self._owning(kind, object_id)
        if owner is None:
            return frozenset()
        members = await self._identity.owners("account_id", owner[1]) if owner[1] else frozenset()
        return frozenset({owner[0], *members})

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None:
        owner = await self._owning(kind, object_id)
        return owner[0] if owner else None

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None:
        owner = await self._owning(kind, object_id)
        if owner is None:
            return None
        return owner[1] or await self._identity.account_for("customer_id", owner[0])

    # --- writes -----------------------------------------------------------------------------

    def _tags(self, intent: Intent | None, **ids: str) -> tuple[dict[str, str], stripe.RequestOptions]:
        """The metadata naming the intent and deskgate's ids, and the request options (idempotency key)."""
        meta = {f"deskgate_{k}": v for k, v in ids.items()}
        if intent is None:
            return meta, stripe.RequestOptions()
        meta.update(deskgate_intent=intent.key, deskgate_request=intent.request_id,
                    deskgate_audit_seq="" if intent.seq is None else str(intent.seq))
        return meta, stripe.RequestOptions(idempotency_key=f"deskgate-{intent.key}")

    async def _once(self, intent: Intent | None, tool: str, object_id: str, model: type[Any],
                    find: Callable[[], Any], act: Callable[[], Any]) -> Any:
        """Steps 1-4 of the module docstring around `act`; `find` looks the object up by intent metadata."""
        now = int(self._clock())
        if intent is None:
            return await act()
        earlier = await self._ledger.start(intent, tool, object_id, SYSTEM, now)
        if earlier is not None:
            if earlier.tool != tool or earlier.object_id != object_id:
                raise DomainError("this intent was carried out for another call", code="intent_conflict")
            if earlier.state == "done" and earlier.result is not None:
                return model.model_validate(earlier.result)
            found = await find()
            if found is not None:
                await self._ledger.settle(intent.key, "done", found.model_dump(mode="json"), now)
                return found
        try:
            result = await act()
        except BackendUnavailable:
            raise  # the outcome is unknown: the intent stays started, so a retry looks it up first
        except DeskgateError:
            await self._ledger.forget(intent.key)  # Stripe refused: nothing happened
            raise
        await self._ledger.settle(intent.key, "done", result.model_dump(mode="json"), now)
        return result

    def _refund_issued(self, order_id: str, customer_id: str, reason_code: str, refund: Any,
                       intent: Any, refunds: list[Any]) -> RefundIssued:
        total = int(intent["amount"])
        counted = {r["id"]: int(r["amount"]) for r in refunds if r["status"] in ("succeeded", "pending")}
        counted[refund["id"]] = int(refund["amount"])
        refunded = sum(counted.values())
        return RefundIssued(refund_id=refund["id"], order_id=order_id, customer_id=customer_id,
                            amount=money(refund["amount"]), currency=str(refund["currency"]).upper(),
                            reason_code=reason_code, refunded_total=money(refunded),
                            refundable_remaining=money(total - refunded), created_at=_at(refund["created"]))

    async def issue_refund(self, order_id: str, amount: Decimal, reason_code: str, *,
                           actor: str, now: int, intent: Intent | None = None) -> RefundIssued:
        order = await self._commerce.get_order(order_id)

        async def find() -> RefundIssued | None:
            payment, refunds = await self._payment(order_id)
            mine = [r for r in refunds if intent is not None and _metadata(r).get("deskgate_intent") == intent.key]
            if not mine:
                return None
            return self._refund_issued(order_id, order.customer_id, reason_code, mine[0], payment, refunds)

        async def act() -> RefundIssued:
            payment, refunds = await self._payment(order_id)
            eligibility = _eligibility(order_id, order.customer_id, order.status, payment, refunds)
            check_refundable(order_id, eligibility.refundable_remaining, eligibility.currency, amount)
            meta, options = self._tags(intent, order=order_id, reason=reason_code, actor=actor)
            refund = await self._call(lambda: self._api.refunds.create(
                params={"payment_intent": payment["id"], "amount": minor_units(amount), "metadata": meta},
                options=options))
            return self._refund_issued(order_id, order.customer_id, reason_code, refund, payment, refunds)

        result: RefundIssued = await self._once(intent, "issue_refund", order_id, RefundIssued, find, act)
        return result

    async def _pending_credits(self, customer: str) -> list[dict[str, Any]]:
        """The account's credits not yet used: negative invoice items no invoice has taken."""
        page = await self._call(lambda: self._api.invoice_items.list(params={"customer": customer, "limit": 100}))
        return [i for i in page["data"] if int(i["amount"]) < 0 and not i.get("invoice")]

    def _credit_applied(self, account_id: str, reason_code: str, item: dict[str, Any], pending: list[dict[str, Any]],
                        action_id: str, reversible_until: int) -> CreditApplied:
        balance = -sum(int(i["amount"]) for i in {i["id"]: i for i in [*pending, item]}.values())
        return CreditApplied(credit_id=item["id"], account_id=account_id, amount=money(-int(item["amount"])),
                             currency=str(item["currency"]).upper(), reason_code=reason_code,
                             credit_balance=money(balance), action_id=action_id,
                             reversible_until=_at(reversible_until))

    async def apply_account_credit(self, account_id: str, amount: Decimal, reason_code: str, *,
                                   actor: str, now: int, reversible_until: int,
                                   intent: Intent | None = None) -> CreditApplied:
        """A credit is a negative invoice item on the account's Stripe customer: the next invoice takes it.
        Journaled for `undo_action`, which deletes the item while no invoice has used it."""
        account = await self._identity.get_account(account_id)
        customer = await self._stripe_customer("account", account_id)
        if customer is None:
            raise DomainError(f"account {account_id} has no customer in the billing system", code="no_billing_customer")

        async def journal(item: dict[str, Any], pending: list[dict[str, Any]]) -> CreditApplied:
            action_id = await self._journal.record_action(
                "apply_account_credit", ActionOwner(account_id=account_id), item["id"],
                {"credit": None}, {"credit": item["id"]}, actor=actor, now=now, reversible_until=reversible_until)
            return self._credit_applied(account_id, reason_code, item, pending, action_id, reversible_until)

        async def find() -> CreditApplied | None:
            pending = await self._pending_credits(customer)
            mine = [i for i in pending if intent is not None and _metadata(i).get("deskgate_intent") == intent.key]
            return await journal(mine[0], pending) if mine else None

        async def act() -> CreditApplied:
            meta, options = self._tags(intent, account=account_id, reason=reason_code, actor=actor)
            item = await self._call(lambda: self._api.invoice_items.create(params={
                "customer": customer, "amount": -minor_units(amount), "currency": account.currency.lower(),
                "description": f"Credit ({reason_code})", "metadata": meta}, options=options))
            return await journal(item, await self._pending_credits(customer))

        result: CreditApplied = await self._once(intent, "apply_account_credit", account_id, CreditApplied, find, act)
        return result

    async def reverse_credit(self, action: ReversibleAction) -> None:
        item = await self._call(lambda: self._api.invoice_items.retrieve(action.object_id))
        if item.get("invoice"):
            raise DomainError(f"credit {action.object_id} has been used and can no longer be taken back",
                              code="credit_used")
        await self._call(lambda: self._api.invoice_items.delete(action.object_id))

    async def cancel_subscription(self, subscription_id: str, requester_id: str, reason_code: str, *,
                                  actor: str, now: int, intent: Intent | None = None) -> Subscription:
        sub = await self.get_subscription(subscription_id)
        if not await self._identity.owners("customer_id", requester_id):
            raise NotFound(f"customer {requester_id} not found")
        related = requester_id == sub.customer_id or (
            sub.account_id is not None and await self._identity.member_role(sub.account_id, requester_id) is not None)
        if not related:
            raise DomainError(f"{requester_id} is neither the customer of subscription {subscription_id}"
                              " nor a member of its account", code="requester_not_related")

        async def find() -> Subscription | None:
            # A cancellation happens at most once by nature: a cancelled subscription is this intent's outcome.
            current = await self.get_subscription(subscription_id)
            return current if current.status == "cancelled" else None

        async def act() -> Subscription:
            check_cancellable(await self.get_subscription(subscription_id))
            meta, options = self._tags(intent, cancel_requester=requester_id, cancel_reason=reason_code)
            await self._call(lambda: self._api.subscriptions.update(subscription_id,
                                                                          params={"metadata": meta}))
            cancelled = await self._call(lambda: self._api.subscriptions.cancel(subscription_id,
                                                                                       options=options))
            return self._subscription(cancelled)

        result: Subscription = await self._once(intent, "cancel_subscription", subscription_id, Subscription,
                                                find, act)
        return result

    # --- start-up recovery ------------------------------------------------------------------

    async def settle_unfinished(self, entry: LedgerEntry) -> dict[str, Any] | None:
        """What became of a started intent whose process died: its result if Stripe shows it, else None
        (the ledger then says it was not executed, and a retry acts)."""
        finder: dict[str, Callable[[], Any]] = {
            "issue_refund": lambda: self._find_refund(entry),
            "cancel_subscription": lambda: self._find_cancellation(entry),
            "apply_account_credit": lambda: self._find_credit(entry),
        }
        found = await finder[entry.tool]() if entry.tool in finder else None
        now = int(self._clock())
        if found is None:
            await self._ledger.settle(entry.intent.key, "not_executed", None, now)
            return None
        result: dict[str, Any] = found.model_dump(mode="json")
        await self._ledger.settle(entry.intent.key, "done", result, now)
        return result

    async def _find_refund(self, entry: LedgerEntry) -> RefundIssued | None:
        order = await self._commerce.get_order(entry.object_id)
        payment, refunds = await self._payment(entry.object_id)
        mine = [r for r in refunds if _metadata(r).get("deskgate_intent") == entry.intent.key]
        if not mine:
            return None
        return self._refund_issued(entry.object_id, order.customer_id, _metadata(mine[0]).get("deskgate_reason", ""),
                                   mine[0], payment, refunds)

    async def _find_credit(self, entry: LedgerEntry) -> CreditApplied | None:
        """A credit found after a crash is journaled now, with its undo window closed (the window of the
        call that made it is unknown here); the item names the intent in its metadata."""
        customer = await self._stripe_customer("account", entry.object_id)
        pending = await self._pending_credits(customer) if customer else []
        mine = [i for i in pending if _metadata(i).get("deskgate_intent") == entry.intent.key]
        if not mine:
            return None
        meta, now = _metadata(mine[0]), int(self._clock())
        action_id = await self._journal.record_action(
            "apply_account_credit", ActionOwner(account_id=entry.object_id), mine[0]["id"], {"credit": None},
            {"credit": mine[0]["id"]}, actor=meta.get("deskgate_actor", "deskgate"), now=now, reversible_until=now)
        return self._credit_applied(entry.object_id, meta.get("deskgate_reason", "recovered"), mine[0], pending,
                                    action_id, now)

    async def _find_cancellation(self, entry: LedgerEntry) -> Subscription | None:
        sub = await self.get_subscription(entry.object_id)
        return sub if sub.status == "cancelled" else None
