"""`SqlSupportBackend`: the demo support backend over a `Database` (SQLite or PostgreSQL).

Each write is one transaction that checks the domain rule and applies the change together, so a
refused call changes nothing and two concurrent refunds can never both take the last euro (SQLite
serialises writers; PostgreSQL runs them SERIALIZABLE and retries). New ids come from
`id_sequences` in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from deskgate.server.errors import DomainError, NotFound
from deskgate.server.store.db import Database, Row, Tx
from deskgate.server.store.migrations import Migration, upgrade
from deskgate.tools.backend.base import (
    SupportBackend,
    check_cancellable,
    check_refundable,
    check_replyable,
    status_after,
)
from deskgate.tools.backend.journal import Reverser
from deskgate.tools.backend.kinds import FindBy, Intent, ObjectKind, PreferenceName, VerifyMethod
from deskgate.tools.backend.ledger import INTENT_MIGRATIONS, find_in, record_done_in
from deskgate.tools.backend.schema import BACKEND_MIGRATIONS, CHANNEL_MIGRATIONS, PAYMENT_MIGRATIONS
from deskgate.tools.backend.tickets import CHANNELS, RECONTACT_SECONDS, Channel, TicketOutcomes
from deskgate.tools.models import (
    Account,
    AccountMember,
    ActionOwner,
    ActionUndone,
    Address,
    AddressChanged,
    CreditApplied,
    Customer,
    CustomerSummary,
    EmailPreferences,
    Handoff,
    HandoffDetail,
    Invoice,
    InvoiceStatus,
    Membership,
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
    ReversibleTool,
    Role,
    SettableTicketStatus,
    Subscription,
    Ticket,
    TicketMessage,
    TicketNote,
    TicketStatus,
    TicketStatusSet,
    TicketSummary,
)

ID_PREFIXES = ("C", "A", "O", "T", "S", "I", "R", "H", "CR", "N", "M", "ACT")
R = TypeVar("R", bound=BaseModel)
_EMAIL_KIND = re.compile(r"^[a-z][a-z_]{1,39}$")
_MAX_MESSAGES = 200  # a ticket answers its latest messages; older ones stay in the helpdesk

_CUSTOMER = ("SELECT id, name, email, phone, address_line1, address_line2, city, postcode, country, date_of_birth,"
             " card_brand, pref_marketing, pref_product_updates, pref_newsletter, created_at FROM customers")
_ORDER = ("SELECT id, customer_id, status, summary, total_minor, refunded_minor, currency, ship_line1, ship_line2,"
          " ship_city, ship_postcode, ship_country, placed_at, shipped_at, delivered_at FROM orders")
_SUBSCRIPTION = ("SELECT id, customer_id, account_id, plan, status, price_minor, currency, billing_period,"
                 " started_at, renews_at, cancelled_at FROM subscriptions")
_INVOICE = ("SELECT id, customer_id, account_id, subscription_id, amount_minor, currency, status, issued_at,"
            " due_at, paid_at FROM invoices")
_TICKET = "SELECT id, customer_id, subject, status, priority, created_at, updated_at FROM tickets"
_ACTION = ("SELECT id, tool, customer_id, account_id, object_id, before_state, after_state, created_at,"
           " reversible_until, undone_at FROM actions")
_HANDOFF = "SELECT id, customer_id, ticket_id, priority, status, source, created_at FROM handoffs"


# --- conversions ----------------------------------------------------------------------------

def money(minor: int) -> Decimal:
    """Minor units (cents) to a two-place decimal: 4210 -> Decimal('42.10')."""
    return Decimal(int(minor)).scaleb(-2)


def minor_units(amount: Decimal) -> int:
    """A validated two-place decimal to minor units, exactly (never through a float)."""
    return int((amount * 100).to_integral_exact())


def _time(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(int(value), UTC)


def _at(value: int) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def _address(row: Row, start: int) -> Address:
    line1, line2, city, postcode, country = row[start:start + 5]
    return Address(line1=line1, line2=line2, city=city, postcode=postcode, country=country)


def _prefs(row: Row, start: int) -> EmailPreferences:
    return EmailPreferences(marketing=bool(row[start]), product_updates=bool(row[start + 1]),
                            newsletter=bool(row[start + 2]))


def _order(row: Row) -> Order:
    return Order(order_id=row[0], customer_id=row[1], status=row[2], summary=row[3], total=money(row[4]),
                 refunded=money(row[5]), currency=row[6], shipping_address=_address(row, 7),
                 placed_at=_at(row[12]), shipped_at=_time(row[13]), delivered_at=_time(row[14]))


def _subscription(row: Row) -> Subscription:
    return Subscription(subscription_id=row[0], customer_id=row[1], account_id=row[2], plan=row[3], status=row[4],
                        price=money(row[5]), currency=row[6], billing_period=row[7], started_at=_at(row[8]),
                        renews_at=_time(row[9]), cancelled_at=_time(row[10]))


def _invoice(row: Row) -> Invoice:
    return Invoice(invoice_id=row[0], customer_id=row[1], account_id=row[2], subscription_id=row[3],
                   amount=money(row[4]), currency=row[5], status=row[6], issued_at=_at(row[7]), due_at=_at(row[8]),
                   paid_at=_time(row[9]))


def _ticket_summary(row: Row) -> TicketSummary:
    return TicketSummary(ticket_id=row[0], customer_id=row[1], subject=row[2], status=row[3], priority=row[4],
                         created_at=_at(row[5]), updated_at=_at(row[6]))


def _action(row: Row) -> ReversibleAction:
    return ReversibleAction(action_id=row[0], tool=row[1], customer_id=row[2], account_id=row[3], object_id=row[4],
                            created_at=_at(row[7]), reversible_until=_at(row[8]), undone_at=_time(row[9]))


_HANDOFF_DETAIL = ("SELECT id, customer_id, ticket_id, priority, status, source, created_at, summary, tried,"
                   " proposed_action, actor, handled_by, resolution FROM handoffs")


def _handoff_detail(row: Row) -> HandoffDetail:
    return HandoffDetail(handoff_id=row[0], customer_id=row[1], ticket_id=row[2], priority=row[3], status=row[4],
                         source=row[5], created_at=_at(row[6]), summary=row[7], tried=row[8],
                         proposed_action=row[9], actor=row[10], handled_by=row[11], resolution=row[12])


def _handoff(row: Row) -> Handoff:
    return Handoff(handoff_id=row[0], customer_id=row[1], ticket_id=row[2], priority=row[3], status=row[4],
                   source=row[5], created_at=_at(row[6]))


# --- transaction helpers --------------------------------------------------------------------

def next_id(tx: Tx, prefix: str) -> str:
    """Hand out the next id of a type inside the caller's write transaction."""
    row = tx.one("SELECT next_value FROM id_sequences WHERE prefix = ?", (prefix,))
    if row is None:
        raise DomainError(f"no id sequence for {prefix}: run the backend upgrade", code="backend_not_initialised")
    tx.execute("UPDATE id_sequences SET next_value = ? WHERE prefix = ?", (int(row[0]) + 1, prefix))
    return f"{prefix}-{int(row[0])}"


def _must(row: Row | None, what: str, object_id: str) -> Row:
    if row is None:
        raise NotFound(f"{what} {object_id} not found")
    return row


def _members(tx: Tx, account_id: str) -> list[Row]:
    return tx.query("SELECT customer_id, role FROM account_members WHERE account_id = ? ORDER BY customer_id",
                    (account_id,))


def _record_action(tx: Tx, tool: str, owner: ActionOwner, object_id: str, before: dict[str, Any],
                   after: dict[str, Any], actor: str, now: int, reversible_until: int) -> str:
    action_id = next_id(tx, "ACT")
    tx.execute(
        "INSERT INTO actions (id, tool, customer_id, account_id, object_id, before_state, after_state, actor,"
        " created_at, reversible_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (action_id, tool, owner.customer_id, owner.account_id, object_id, json.dumps(before, sort_keys=True),
         json.dumps(after, sort_keys=True), actor, now, reversible_until),
    )
    return action_id


def _queue_email(tx: Tx, customer_id: str, kind: str, subject: str, body: str, now: int,
                 token_sha256: str | None = None, expires_at: int | None = None) -> str:
    row = _must(tx.one("SELECT email FROM customers WHERE id = ?", (customer_id,)), "customer", customer_id)
    outbox_id = next_id(tx, "M")
    tx.execute(
        "INSERT INTO outbox (id, customer_id, to_address, kind, subject, body, token_sha256, expires_at, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (outbox_id, customer_id, row[0], kind, subject, body, token_sha256, expires_at, now),
    )
    return outbox_id


def _add_message(tx: Tx, ticket_id: str, author: Literal["agent", "system"], body: str, now: int) -> None:
    seq = tx.one("SELECT COALESCE(MAX(seq), 0) FROM ticket_messages WHERE ticket_id = ?", (ticket_id,))
    tx.execute("INSERT INTO ticket_messages (ticket_id, seq, author, body, created_at) VALUES (?, ?, ?, ?, ?)",
               (ticket_id, int(seq[0]) + 1 if seq else 1, author, body, now))


def _set_shipping(tx: Tx, order_id: str, address: Address) -> None:
    tx.execute("UPDATE orders SET ship_line1 = ?, ship_line2 = ?, ship_city = ?, ship_postcode = ?,"
               " ship_country = ? WHERE id = ?",
               (address.line1, address.line2, address.city, address.postcode, address.country, order_id))


def _set_prefs(tx: Tx, customer_id: str, prefs: EmailPreferences) -> None:
    tx.execute("UPDATE customers SET pref_marketing = ?, pref_product_updates = ?, pref_newsletter = ?"
               " WHERE id = ?",
               (int(prefs.marketing), int(prefs.product_updates), int(prefs.newsletter), customer_id))


def _once(tx: Tx, intent: Intent | None, tool: str, object_id: str, model: type[R], now: int,
          act: Callable[[], R]) -> R:
    """Carry out `act` once per intent: a repeated intent answers its first result and changes nothing."""
    if intent is None:
        return act()
    earlier = find_in(tx, intent.key)
    if earlier is not None and earlier.result is not None:
        if earlier.tool != tool or earlier.object_id != object_id:
            raise DomainError("this intent was carried out for another call", code="intent_conflict")
        return model.model_validate(earlier.result)
    result = act()
    record_done_in(tx, intent, tool, object_id, "sql", result.model_dump(mode="json"), now)
    return result


def _postcode_key(value: str) -> str:
    return re.sub(r"[\s-]", "", value).upper()


class SqlSupportBackend(SupportBackend):
    """The demo backend. Call `upgrade()` once before use (idempotent)."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self._clock = clock

    def upgrade(self) -> list[Migration]:
        applied = (upgrade(self.db, "backend", BACKEND_MIGRATIONS) + upgrade(self.db, "intents", INTENT_MIGRATIONS)
                   + upgrade(self.db, "payments", PAYMENT_MIGRATIONS)
                   + upgrade(self.db, "ticket_channels", CHANNEL_MIGRATIONS))
        self.db.write_sync(lambda tx: tx.executemany(
            "INSERT INTO id_sequences (prefix, next_value) VALUES (?, 1) ON CONFLICT (prefix) DO NOTHING",
            [(p,) for p in ID_PREFIXES]))
        return applied

    # --- reads ------------------------------------------------------------------------------

    async def find_customers(self, by: FindBy, value: str, *, limit: int = 10) -> list[CustomerSummary]:
        where = {
            "email": "SELECT id, name, email, phone FROM customers WHERE email = ? ORDER BY id LIMIT ?",
            "phone": "SELECT id, name, email, phone FROM customers WHERE phone = ? ORDER BY id LIMIT ?",
            "order_id": "SELECT c.id, c.name, c.email, c.phone FROM orders o JOIN customers c"
                        " ON c.id = o.customer_id WHERE o.id = ? LIMIT ?",
        }[by]
        rows = await self.db.read(lambda tx: tx.query(where, (value, limit)))
        return [CustomerSummary(customer_id=r[0], name=r[1], email=r[2], phone=r[3]) for r in rows]

    async def get_customer(self, customer_id: str) -> Customer:
        def read(tx: Tx) -> Customer:
            r = _must(tx.one(_CUSTOMER + " WHERE id = ?", (customer_id,)), "customer", customer_id)
            accounts = tx.query("SELECT account_id, role FROM account_members WHERE customer_id = ?"
                                " ORDER BY account_id", (customer_id,))
            return Customer(customer_id=r[0], name=r[1], email=r[2], phone=r[3], address=_address(r, 4),
                            date_of_birth=r[9], card_brand=r[10], email_preferences=_prefs(r, 11),
                            accounts=[Membership(account_id=a, role=role) for a, role in accounts],
                            created_at=_at(r[14]))

        return await self.db.read(read)

    async def get_account(self, account_id: str) -> Account:
        def read(tx: Tx) -> Account:
            r = _must(tx.one("SELECT id, name, currency, credit_minor FROM accounts WHERE id = ?", (account_id,)),
                      "account", account_id)
            return Account(account_id=r[0], name=r[1], currency=r[2], credit_balance=money(r[3]),
                           members=[AccountMember(customer_id=c, role=role) for c, role in _members(tx, account_id)])

        return await self.db.read(read)

    async def get_order(self, order_id: str) -> Order:
        return _order(await self.db.read(lambda tx: _must(tx.one(_ORDER + " WHERE id = ?", (order_id,)),
                                                         "order", order_id)))

    async def list_orders(self, customer_id: str, *, status: OrderStatus | None = None,
                          limit: int = 20) -> list[Order]:
        def read(tx: Tx) -> list[Row]:
            _must(tx.one("SELECT 1 FROM customers WHERE id = ?", (customer_id,)), "customer", customer_id)
            if status is None:
                return tx.query(_ORDER + " WHERE customer_id = ? ORDER BY placed_at DESC, id DESC LIMIT ?",
                                (customer_id, limit))
            return tx.query(_ORDER + " WHERE customer_id = ? AND status = ? ORDER BY placed_at DESC, id DESC"
                            " LIMIT ?", (customer_id, status, limit))

        return [_order(r) for r in await self.db.read(read)]

    async def get_subscription(self, subscription_id: str) -> Subscription:
        row = await self.db.read(lambda tx: _must(tx.one(_SUBSCRIPTION + " WHERE id = ?", (subscription_id,)),
                                                "subscription", subscription_id))
        return _subscription(row)

    async def list_invoices(self, *, customer_id: str | None = None, account_id: str | None = None,
                            status: InvoiceStatus | None = None, limit: int = 20) -> list[Invoice]:
        if (customer_id is None) == (account_id is None):
            raise DomainError("list invoices of exactly one customer or one account", code="invalid_query")
        column, table, owner = (("customer_id", "customers", customer_id) if customer_id is not None
                                else ("account_id", "accounts", account_id))

        def read(tx: Tx) -> list[Row]:
            _must(tx.one(f"SELECT 1 FROM {table} WHERE id = ?", (owner,)), table[:-1], str(owner))  # noqa: S608 - fixed names
            if status is None:
                return tx.query(_INVOICE + f" WHERE {column} = ? ORDER BY issued_at DESC, id DESC LIMIT ?",
                                (owner, limit))
            return tx.query(_INVOICE + f" WHERE {column} = ? AND status = ? ORDER BY issued_at DESC, id DESC"
                            " LIMIT ?", (owner, status, limit))

        return [_invoice(r) for r in await self.db.read(read)]

    async def get_ticket(self, ticket_id: str) -> Ticket:
        def read(tx: Tx) -> Ticket:
            r = _must(tx.one(_TICKET + " WHERE id = ?", (ticket_id,)), "ticket", ticket_id)
            messages = tx.query("SELECT author, body, created_at FROM ticket_messages WHERE ticket_id = ?"
                                " ORDER BY seq DESC LIMIT ?", (ticket_id, _MAX_MESSAGES))
            notes = tx.query("SELECT id, body, actor, created_at FROM ticket_notes WHERE ticket_id = ?"
                             " ORDER BY created_at, id", (ticket_id,))
            return Ticket(**_ticket_summary(r).model_dump(),
                          messages=[TicketMessage(author=a, body=b, created_at=_at(t))
                                    for a, b, t in reversed(messages)],
                          notes=[TicketNote(note_id=n, body=b, author=a, created_at=_at(t)) for n, b, a, t in notes])

        return await self.db.read(read)

    async def list_tickets(self, customer_id: str, *, status: TicketStatus | None = None,
                           limit: int = 20) -> list[TicketSummary]:
        def read(tx: Tx) -> list[Row]:
            _must(tx.one("SELECT 1 FROM customers WHERE id = ?", (customer_id,)), "customer", customer_id)
            if status is None:
                return tx.query(_TICKET + " WHERE customer_id = ? ORDER BY updated_at DESC, id DESC LIMIT ?",
                                (customer_id, limit))
            return tx.query(_TICKET + " WHERE customer_id = ? AND status = ? ORDER BY updated_at DESC, id DESC"
                            " LIMIT ?", (customer_id, status, limit))

        return [_ticket_summary(r) for r in await self.db.read(read)]

    async def refund_eligibility(self, order_id: str) -> RefundEligibility:
        order = await self.get_order(order_id)
        return RefundEligibility(
            order_id=order.order_id, customer_id=order.customer_id, order_status=order.status, total=order.total,
            refunded=order.refunded, refundable_remaining=order.total - order.refunded, currency=order.currency,
            eligible=order.total > order.refunded,
        )

    async def refund_destination(self, order_id: str) -> str:
        def read(tx: Tx) -> str:
            r = _must(tx.one("SELECT c.card_brand, c.card_last4 FROM orders o JOIN customers c"
                             " ON c.id = o.customer_id WHERE o.id = ?", (order_id,)), "order", order_id)
            return f"{r[0]} card ending {r[1]}" if r[1] else "the original payment method"

        return await self.db.read(read)

    async def payment_reference(self, order_id: str) -> str | None:
        row = await self.db.read(lambda tx: tx.one("SELECT reference FROM order_payments WHERE order_id = ?",
                                                   (order_id,)))
        return None if row is None else str(row[0])

    async def get_action(self, action_id: str) -> ReversibleAction:
        return _action(await self.db.read(lambda tx: _must(tx.one(_ACTION + " WHERE id = ?", (action_id,)),
                                                          "action", action_id)))

    async def get_handoff(self, handoff_id: str) -> Handoff:
        return _handoff(await self.db.read(lambda tx: _must(tx.one(_HANDOFF + " WHERE id = ?", (handoff_id,)),
                                                           "hand-off", handoff_id)))

    # --- what the guard chain asks ----------------------------------------------------------

    async def owners(self, kind: ObjectKind, object_id: str) -> frozenset[str]:
        def read(tx: Tx) -> frozenset[str]:
            if kind == "account_id":
                return frozenset(c for c, _ in _members(tx, object_id))
            owner = _owning_row(tx, kind, object_id)
            if owner is None:
                return frozenset()
            customer_id, account_id = owner
            members = _members(tx, account_id) if account_id else []
            return frozenset([customer_id, *(c for c, _ in members)])

        return await self.db.read(read)

    async def customer_for(self, kind: ObjectKind, object_id: str) -> str | None:
        if kind == "account_id":
            return None
        owner = await self.db.read(lambda tx: _owning_row(tx, kind, object_id))
        return owner[0] if owner else None

    async def account_for(self, kind: ObjectKind, object_id: str) -> str | None:
        def read(tx: Tx) -> str | None:
            if kind == "account_id":
                return object_id if tx.one("SELECT 1 FROM accounts WHERE id = ?", (object_id,)) else None
            owner = _owning_row(tx, kind, object_id)
            if owner is None:
                return None
            if owner[1] is not None:
                return owner[1]
            accounts = tx.query("SELECT account_id FROM account_members WHERE customer_id = ? LIMIT 2", (owner[0],))
            return accounts[0][0] if len(accounts) == 1 else None

        return await self.db.read(read)

    async def member_role(self, account_id: str, customer_id: str) -> Role | None:
        row = await self.db.read(lambda tx: tx.one(
            "SELECT role FROM account_members WHERE account_id = ? AND customer_id = ?", (account_id, customer_id)))
        return row[0] if row else None

    async def open_invoice_count(self, account_id: str) -> int:
        row = await self.db.read(lambda tx: tx.one(
            "SELECT COUNT(*) FROM invoices WHERE account_id = ? AND status = 'open'", (account_id,)))
        return int(row[0]) if row else 0

    # --- what the policy's facts ask -----------------------------------------------------------

    async def failed_payment_count(self, kind: ObjectKind, object_id: str) -> int:
        column = kind if kind in ("subscription_id", "account_id", "customer_id") else None
        if column is None:
            raise DomainError(f"objects of kind {kind!r} have no payments", code="unknown_object_kind")
        row = await self.db.read(lambda tx: tx.one(
            f"SELECT COUNT(*) FROM invoices i JOIN payment_failures f ON f.invoice_id = i.id"  # noqa: S608 - fixed names
            f" WHERE i.{column} = ? AND i.status = 'open'", (object_id,)))
        return int(row[0]) if row else 0

    async def refund_count(self, order_id: str) -> int:
        row = await self.db.read(lambda tx: tx.one("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (order_id,)))
        return int(row[0]) if row else 0

    async def ticket_channel(self, ticket_id: str) -> Channel | None:
        row = await self.db.read(lambda tx: tx.one("SELECT channel FROM tickets WHERE id = ?", (ticket_id,)))
        channel = None if row is None else row[0]
        return next((c for c in CHANNELS if c == channel), None)  # anything else: not recorded

    def ticket_outcomes(self, *, since: int | None, until: int | None) -> TicketOutcomes:
        """A closed ticket is resolved at its last update; a recontact is another ticket of the same customer
        opened within 7 days after that."""
        rows = self.db.read_sync(lambda tx: tx.query(
            "SELECT t.status, t.created_at, t.updated_at, CASE WHEN t.status = 'closed' AND EXISTS (SELECT 1 FROM"
            " tickets n WHERE n.customer_id = t.customer_id AND n.id <> t.id AND n.created_at > t.updated_at"
            " AND n.created_at <= t.updated_at + ?) THEN 1 ELSE 0 END FROM tickets t"
            " WHERE t.created_at >= ? AND t.created_at < ?",
            (RECONTACT_SECONDS, since if since is not None else -(2**62), until if until is not None else 2**62)))
        closed = [r for r in rows if r[0] == "closed"]
        return TicketOutcomes(len(rows), len(closed), sum(int(r[3]) for r in closed),
                              tuple(int(r[2]) - int(r[1]) for r in closed))

    # --- writes -----------------------------------------------------------------------------

    async def check_identity(self, customer_id: str, method: VerifyMethod, value: str) -> bool:
        column = {"card_last4": "card_last4", "postcode": "postcode"}[method]
        row = await self.db.read(lambda tx: _must(
            tx.one(f"SELECT {column} FROM customers WHERE id = ?", (customer_id,)),  # noqa: S608 - fixed names
            "customer", customer_id))
        on_file = row[0] or ""
        if method == "postcode":
            on_file, value = _postcode_key(on_file), _postcode_key(value)
        # Compare digests: constant time whatever the lengths, and an empty secret never matches.
        same = hmac.compare_digest(hashlib.sha256(on_file.encode()).digest(), hashlib.sha256(value.encode()).digest())
        return same and bool(on_file)

    async def update_email_preferences(self, customer_id: str, changes: dict[PreferenceName, bool], *,
                                       actor: str, now: int, reversible_until: int) -> PreferencesChanged:
        def write(tx: Tx) -> PreferencesChanged:
            r = _must(tx.one("SELECT pref_marketing, pref_product_updates, pref_newsletter FROM customers"
                             " WHERE id = ?", (customer_id,)), "customer", customer_id)
            before = _prefs(r, 0)
            after = before.model_copy(update={str(name): value for name, value in changes.items()})
            _set_prefs(tx, customer_id, after)
            action_id = _record_action(tx, "update_email_preferences", ActionOwner(customer_id=customer_id),
                                       customer_id, before.model_dump(), after.model_dump(), actor, now,
                                       reversible_until)
            return PreferencesChanged(customer_id=customer_id, email_preferences=after, action_id=action_id,
                                      reversible_until=_at(reversible_until))

        return await self.db.write(write)

    async def change_shipping_address(self, order_id: str, address: Address, *,
                                      actor: str, now: int, reversible_until: int) -> AddressChanged:
        def write(tx: Tx) -> AddressChanged:
            order = _order(_must(tx.one(_ORDER + " WHERE id = ?", (order_id,)), "order", order_id))
            if order.status != "pending":
                raise DomainError(f"order {order_id} has already {order.status}: its address can no longer change",
                                  code="already_shipped")
            _set_shipping(tx, order_id, address)
            after = Address.model_validate(address.model_dump())  # the plain output shape, whatever came in
            action_id = _record_action(tx, "change_shipping_address", ActionOwner(customer_id=order.customer_id),
                                       order_id, order.shipping_address.model_dump(), after.model_dump(), actor,
                                       now, reversible_until)
            return AddressChanged(order_id=order_id, customer_id=order.customer_id, shipping_address=after,
                                  action_id=action_id, reversible_until=_at(reversible_until))

        return await self.db.write(write)

    async def send_password_reset(self, customer_id: str, *, now: int, ttl_seconds: int) -> PasswordResetSent:
        # The link token is handed to the mail transport only; the outbox keeps its SHA-256.
        token = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode()).hexdigest()
        expires_at = now + ttl_seconds
        body = ("Someone asked to reset the password of your account. Use the link in this email to choose a new"
                f" password before {_at(expires_at):%Y-%m-%d %H:%M} UTC. If it was not you, ignore this email.")
        outbox_id = await self.db.write(lambda tx: _queue_email(
            tx, customer_id, "password_reset", "Reset your password", body, now, digest, expires_at))
        return PasswordResetSent(customer_id=customer_id, outbox_id=outbox_id, expires_at=_at(expires_at))

    async def send_customer_email(self, customer_id: str, kind: str, subject: str, body: str, *,
                                  now: int | None = None) -> str:
        if not _EMAIL_KIND.match(kind) or not 0 < len(subject) <= 200 or not 0 < len(body) <= 10000:
            raise DomainError("an email needs a kind like confirmation_code, a subject and a body of sane size",
                              code="invalid_email")
        sent_at = int(self._clock()) if now is None else now
        return await self.db.write(lambda tx: _queue_email(tx, customer_id, kind, subject, body, sent_at))

    async def issue_refund(self, order_id: str, amount: Decimal, reason_code: str, *,
                           actor: str, now: int, intent: Intent | None = None) -> RefundIssued:
        wanted = minor_units(amount)

        def refund(tx: Tx) -> RefundIssued:
            r = _must(tx.one("SELECT customer_id, total_minor, refunded_minor, currency FROM orders WHERE id = ?",
                             (order_id,)), "order", order_id)
            customer_id, total, refunded, currency = r[0], int(r[1]), int(r[2]), r[3]
            remaining = total - refunded
            check_refundable(order_id, money(remaining), currency, money(wanted))
            refund_id = next_id(tx, "R")
            tx.execute("INSERT INTO refunds (id, order_id, amount_minor, currency, reason_code, actor, created_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (refund_id, order_id, wanted, currency, reason_code, actor, now))
            tx.execute("UPDATE orders SET refunded_minor = refunded_minor + ? WHERE id = ?", (wanted, order_id))
            return RefundIssued(refund_id=refund_id, order_id=order_id, customer_id=customer_id, amount=money(wanted),
                                currency=currency, reason_code=reason_code, refunded_total=money(refunded + wanted),
                                refundable_remaining=money(remaining - wanted), created_at=_at(now))

        return await self.db.write(lambda tx: _once(tx, intent, "issue_refund", order_id, RefundIssued, now,
                                                    lambda: refund(tx)))

    async def apply_account_credit(self, account_id: str, amount: Decimal, reason_code: str, *,
                                   actor: str, now: int, reversible_until: int,
                                   intent: Intent | None = None) -> CreditApplied:
        credit = minor_units(amount)

        def credit_account(tx: Tx) -> CreditApplied:
            r = _must(tx.one("SELECT currency, credit_minor FROM accounts WHERE id = ?", (account_id,)),
                      "account", account_id)
            currency, balance = r[0], int(r[1]) + credit
            credit_id = next_id(tx, "CR")
            tx.execute("INSERT INTO account_credits (id, account_id, amount_minor, currency, reason_code, actor,"
                       " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (credit_id, account_id, credit, currency, reason_code, actor, now))
            tx.execute("UPDATE accounts SET credit_minor = ? WHERE id = ?", (balance, account_id))
            action_id = _record_action(tx, "apply_account_credit", ActionOwner(account_id=account_id), credit_id,
                                       {"credit_minor": balance - credit}, {"credit_minor": balance}, actor, now,
                                       reversible_until)
            return CreditApplied(credit_id=credit_id, account_id=account_id, amount=money(credit), currency=currency,
                                 reason_code=reason_code, credit_balance=money(balance), action_id=action_id,
                                 reversible_until=_at(reversible_until))

        return await self.db.write(lambda tx: _once(tx, intent, "apply_account_credit", account_id, CreditApplied,
                                                    now, lambda: credit_account(tx)))

    async def cancel_subscription(self, subscription_id: str, requester_id: str, reason_code: str, *,
                                  actor: str, now: int, intent: Intent | None = None) -> Subscription:
        def cancel(tx: Tx) -> Subscription:
            sub = _subscription(_must(tx.one(_SUBSCRIPTION + " WHERE id = ?", (subscription_id,)),
                                      "subscription", subscription_id))
            _must(tx.one("SELECT 1 FROM customers WHERE id = ?", (requester_id,)), "customer", requester_id)
            related = requester_id == sub.customer_id or (sub.account_id is not None and tx.one(
                "SELECT 1 FROM account_members WHERE account_id = ? AND customer_id = ?",
                (sub.account_id, requester_id)) is not None)
            if not related:
                raise DomainError(f"{requester_id} is neither the customer of subscription {subscription_id}"
                                  " nor a member of its account", code="requester_not_related")
            check_cancellable(sub)
            tx.execute("UPDATE subscriptions SET status = 'cancelled', cancelled_at = ?, cancelled_by = ?,"
                       " cancel_reason = ?, renews_at = NULL WHERE id = ?",
                       (now, requester_id, reason_code, subscription_id))
            return sub.model_copy(update={"status": "cancelled", "cancelled_at": _at(now), "renews_at": None})

        return await self.db.write(lambda tx: _once(tx, intent, "cancel_subscription", subscription_id, Subscription,
                                                    now, lambda: cancel(tx)))

    async def add_ticket_note(self, ticket_id: str, body: str, *, actor: str, now: int) -> NoteAdded:
        def write(tx: Tx) -> NoteAdded:
            r = _must(tx.one("SELECT customer_id FROM tickets WHERE id = ?", (ticket_id,)), "ticket", ticket_id)
            note_id = next_id(tx, "N")
            tx.execute("INSERT INTO ticket_notes (id, ticket_id, body, actor, created_at) VALUES (?, ?, ?, ?, ?)",
                       (note_id, ticket_id, body, actor, now))
            tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket_id))
            return NoteAdded(note_id=note_id, ticket_id=ticket_id, customer_id=r[0], created_at=_at(now))

        return await self.db.write(write)

    async def reply_to_customer(self, ticket_id: str, body: str, *, actor: str, now: int) -> ReplyPosted:
        def write(tx: Tx) -> ReplyPosted:
            r = _must(tx.one("SELECT customer_id, status FROM tickets WHERE id = ?", (ticket_id,)), "ticket", ticket_id)
            check_replyable(ticket_id, r[1])
            _add_message(tx, ticket_id, "agent", body, now)
            tx.execute("UPDATE tickets SET updated_at = ? WHERE id = ?", (now, ticket_id))
            return ReplyPosted(ticket_id=ticket_id, customer_id=r[0], body=body, created_at=_at(now))

        return await self.db.write(write)

    async def set_ticket_status(self, ticket_id: str, status: SettableTicketStatus, *, actor: str,
                                now: int) -> TicketStatusSet:
        def write(tx: Tx) -> TicketStatusSet:
            r = _must(tx.one("SELECT customer_id, status FROM tickets WHERE id = ?", (ticket_id,)), "ticket", ticket_id)
            after = status_after(ticket_id, r[1], status)
            if after != r[1]:
                tx.execute("UPDATE tickets SET status = ?, updated_at = ? WHERE id = ?", (after, now, ticket_id))
            return TicketStatusSet(ticket_id=ticket_id, customer_id=r[0], status=after, previous_status=r[1],
                                   changed_at=_at(now))

        return await self.db.write(write)

    async def create_handoff(self, *, customer_id: str | None, ticket_id: str | None, summary: str, tried: str,
                             proposed_action: str, priority: Priority, source: Literal["agent", "policy"],
                             actor: str, now: int | None = None) -> str:
        at = int(self._clock()) if now is None else now

        def write(tx: Tx) -> str:
            customer = customer_id
            if customer is not None:
                _must(tx.one("SELECT 1 FROM customers WHERE id = ?", (customer,)), "customer", customer)
            if ticket_id is not None:
                r = _must(tx.one("SELECT customer_id FROM tickets WHERE id = ?", (ticket_id,)), "ticket", ticket_id)
                if customer is not None and r[0] != customer:
                    raise DomainError(f"ticket {ticket_id} is not a ticket of {customer}", code="ticket_mismatch")
                customer = r[0]
            handoff_id = next_id(tx, "H")
            tx.execute("INSERT INTO handoffs (id, customer_id, ticket_id, summary, tried, proposed_action, priority,"
                       " source, status, actor, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
                       (handoff_id, customer, ticket_id, summary, tried, proposed_action, priority, source, actor, at))
            if ticket_id is not None:
                _add_message(tx, ticket_id, "system",
                             f"Handed to a human specialist ({handoff_id}, priority {priority}).", at)
                tx.execute("UPDATE tickets SET status = 'escalated', updated_at = ? WHERE id = ?", (at, ticket_id))
            return handoff_id

        return await self.db.write(write)

    async def handoff_detail(self, handoff_id: str) -> HandoffDetail:
        return _handoff_detail(await self.db.read(lambda tx: _must(
            tx.one(_HANDOFF_DETAIL + " WHERE id = ?", (handoff_id,)), "hand-off", handoff_id)))

    async def list_handoffs(self, *, open_only: bool, limit: int = 200) -> list[HandoffDetail]:
        where = " WHERE status IN ('queued', 'taken')" if open_only else ""
        rows = await self.db.read(lambda tx: tx.query(
            f"{_HANDOFF_DETAIL}{where} ORDER BY created_at DESC, id DESC LIMIT ?", (limit,)))
        return [_handoff_detail(r) for r in rows]

    async def work_handoff(self, handoff_id: str, status: Literal["taken", "closed"], *, person: str,
                           resolution: str | None) -> HandoffDetail:
        def write(tx: Tx) -> HandoffDetail:
            row = _must(tx.one("SELECT status FROM handoffs WHERE id = ?", (handoff_id,)), "hand-off", handoff_id)
            if row[0] == "closed":
                raise DomainError(f"hand-off {handoff_id} is closed", code="handoff_closed")
            tx.execute("UPDATE handoffs SET status = ?, handled_by = ?, resolution = COALESCE(?, resolution)"
                       " WHERE id = ? AND status <> 'closed'", (status, person, resolution, handoff_id))
            return _handoff_detail(_must(tx.one(_HANDOFF_DETAIL + " WHERE id = ?", (handoff_id,)), "hand-off",
                                         handoff_id))

        return await self.db.write(write)

    async def record_action(self, tool: ReversibleTool, owner: ActionOwner, object_id: str, before: dict[str, Any],
                            after: dict[str, Any], *, actor: str, now: int, reversible_until: int) -> str:
        """Journal a reversible action another system carried out (e.g. a credit in Stripe)."""
        return await self.db.write(lambda tx: _record_action(tx, tool, owner, object_id, before, after, actor, now,
                                                             reversible_until))

    async def undo_action(self, action_id: str, owner: ActionOwner, *, actor: str, now: int,
                          external: Mapping[str, Reverser] | None = None) -> ActionUndone:
        """Reverse an action of `owner`; one that another system carried out (its tool in `external`) is
        reversed there first, then marked undone here."""

        def check(tx: Tx) -> tuple[ReversibleAction, dict[str, Any], dict[str, Any]]:
            row = tx.one(_ACTION + " WHERE id = ?", (action_id,))
            # Another owner's action is reported exactly like a missing one: ids are guessable.
            if row is None or (row[2], row[3]) != (owner.customer_id, owner.account_id):
                raise NotFound(f"action {action_id} not found")
            action = _action(row)
            if action.undone_at is not None:
                raise DomainError(f"action {action_id} was already undone", code="already_undone")
            if now > int(row[8]):
                raise DomainError(f"the undo window of action {action_id} has closed", code="undo_window_expired")
            return action, json.loads(row[5]), json.loads(row[6])

        def mark(tx: Tx, action: ReversibleAction) -> ActionUndone:
            if tx.execute("UPDATE actions SET undone_at = ?, undone_by = ? WHERE id = ? AND undone_at IS NULL",
                          (now, actor, action_id)) != 1:
                raise DomainError(f"action {action_id} was already undone", code="already_undone")
            return ActionUndone(action_id=action_id, tool=action.tool, customer_id=action.customer_id,
                                account_id=action.account_id, object_id=action.object_id, undone_at=_at(now))

        def write(tx: Tx) -> ActionUndone:
            action, before, after = check(tx)
            _UNDO[action.tool](tx, action, before, after, now)
            return mark(tx, action)

        reverser = None
        if external:
            action, _, _ = await self.db.read(check)
            reverser = external.get(action.tool)
        if reverser is None:
            return await self.db.write(write)
        await reverser(action)
        return await self.db.write(lambda tx: mark(tx, action))


def _owning_row(tx: Tx, kind: ObjectKind, object_id: str) -> tuple[str, str | None] | None:
    """(customer_id, account_id or None) of a customer-owned object; None when unknown."""
    sql = {
        "customer_id": "SELECT id, NULL FROM customers WHERE id = ?",
        "order_id": "SELECT customer_id, NULL FROM orders WHERE id = ?",
        "ticket_id": "SELECT customer_id, NULL FROM tickets WHERE id = ?",
        "subscription_id": "SELECT customer_id, account_id FROM subscriptions WHERE id = ?",
        "invoice_id": "SELECT customer_id, account_id FROM invoices WHERE id = ?",
    }.get(kind)
    if sql is None:
        raise DomainError(f"objects of kind {kind!r} have no owner", code="unknown_object_kind")
    row = tx.one(sql, (object_id,))
    return (row[0], row[1]) if row else None


def _changed_since(action: ReversibleAction) -> DomainError:
    return DomainError(f"{action.object_id} changed after action {action.action_id}: undo the later change first",
                       code="changed_since")


def _undo_address(tx: Tx, action: ReversibleAction, before: dict[str, Any], after: dict[str, Any],
                  now: int) -> None:
    order = _order(_must(tx.one(_ORDER + " WHERE id = ?", (action.object_id,)), "order", action.object_id))
    if order.status != "pending":
        raise DomainError(f"order {order.order_id} has {order.status} since: its address can no longer change",
                          code="already_shipped")
    if order.shipping_address.model_dump() != after:
        raise _changed_since(action)
    _set_shipping(tx, order.order_id, Address.model_validate(before))


def _undo_preferences(tx: Tx, action: ReversibleAction, before: dict[str, Any], after: dict[str, Any],
                      now: int) -> None:
    row = _must(tx.one("SELECT pref_marketing, pref_product_updates, pref_newsletter FROM customers WHERE id = ?",
                       (action.object_id,)), "customer", action.object_id)
    if _prefs(row, 0).model_dump() != after:
        raise _changed_since(action)
    _set_prefs(tx, action.object_id, EmailPreferences.model_validate(before))


def _undo_credit(tx: Tx, action: ReversibleAction, before: dict[str, Any], after: dict[str, Any],
                 now: int) -> None:
    credit = _must(tx.one("SELECT amount_minor FROM account_credits WHERE id = ? AND reversed_at IS NULL",
                          (action.object_id,)), "credit", action.object_id)
    balance = _must(tx.one("SELECT credit_minor FROM accounts WHERE id = ?", (action.account_id,)),
                    "account", str(action.account_id))
    if int(balance[0]) < int(credit[0]):
        raise DomainError(f"credit {action.object_id} has been used and can no longer be taken back",
                          code="credit_used")
    tx.execute("UPDATE account_credits SET reversed_at = ? WHERE id = ?", (now, action.object_id))
    tx.execute("UPDATE accounts SET credit_minor = credit_minor - ? WHERE id = ?", (int(credit[0]), action.account_id))


_UNDO: dict[str, Callable[[Tx, ReversibleAction, dict[str, Any], dict[str, Any], int], None]] = {
    "change_shipping_address": _undo_address,
    "update_email_preferences": _undo_preferences,
    "apply_account_credit": _undo_credit,
}
