"""`seed_stripe`: the demo's billing scenario, put into a Stripe account (`deskgate init --demo --stripe URL`).

The scenario customers and accounts of `DEMO` become Stripe customers (metadata `deskgate_customer`
/ `deskgate_account`) with a test card; each scenario order is paid by a confirmed PaymentIntent
(commerce records it in `order_payments`); the two subscriptions and the open invoice become
Stripe's own (`sub_…`, `in_…`). Where each went is recorded in `provider_refs`, so seeding twice
changes nothing and `stripe_ids()` tells a caller the Stripe ids of the demo's subscriptions and
open invoice. Bulk demo customers stay in the demo only: their orders have no payment in Stripe.
"""

from __future__ import annotations

import functools
from typing import Any

import stripe

from deskgate.server.store.db import Database, Row, Tx
from deskgate.tools.backend.ledger import IntentLedger
from deskgate.tools.backend.seed import DEMO

SYSTEM = "stripe"
# Stripe's documented test cards (other brands get the visa one).
_TEST_CARDS = {"visa": "4242424242424242", "mastercard": "5555555555554444"}


def _card(api: Any, customer: str, brand: str) -> str:
    method = api.payment_methods.create(params={"type": "card", "card": {
        "number": _TEST_CARDS.get(brand, _TEST_CARDS["visa"]), "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    api.payment_methods.attach(method.id, params={"customer": customer})
    api.customers.update(customer, params={"invoice_settings": {"default_payment_method": method.id}})
    return str(method.id)


def seed_stripe(client: stripe.StripeClient, db: Database) -> bool:
    """Put the demo's billing scenario into Stripe; False when it is there already (nothing changes)."""
    ledger = IntentLedger(db)
    if ledger.provider_refs_sync(SYSTEM, "subscription"):
        return False
    api = client.v1
    d = DEMO
    customers: dict[str, str] = {}
    methods: dict[str, str] = {}
    scenario = (d.customer_id, d.account_admin, d.account_member, d.invoice_account_admin)
    rows = db.read_sync(lambda tx: tx.query(
        "SELECT id, name, email, card_brand FROM customers WHERE id IN (?, ?, ?, ?) ORDER BY id", scenario))
    for customer_id, name, email, brand in rows:
        created = api.customers.create(params={"name": name, "email": email,
                                               "metadata": {"deskgate_customer": customer_id}})
        customers[customer_id] = str(created.id)
        methods[customer_id] = _card(api, created.id, brand or "visa")
    ledger.set_provider_refs_sync(SYSTEM, "customer", customers)

    orders = db.read_sync(lambda tx: tx.query(
        "SELECT id, customer_id, total_minor, refunded_minor, currency FROM orders WHERE customer_id IN (?, ?, ?, ?)"
        " ORDER BY id", scenario))
    payments: dict[str, str] = {}
    for order_id, customer_id, total, refunded, currency in orders:
        paid = api.payment_intents.create(params={
            "amount": int(total), "currency": str(currency).lower(), "customer": customers[customer_id],
            "payment_method": methods[customer_id], "confirm": True, "metadata": {"deskgate_order": order_id}})
        if int(refunded):
            api.refunds.create(params={"payment_intent": paid.id, "amount": int(refunded),
                                       "metadata": {"deskgate_order": order_id}})
        payments[order_id] = str(paid.id)
    ledger.set_payment_references_sync(SYSTEM, payments)

    accounts: dict[str, str] = {}
    for account_id, admin in ((d.account_id, d.account_admin), (d.invoice_account_id, d.invoice_account_admin)):
        name = db.read_sync(functools.partial(_account_name, account_id=account_id))
        created = api.customers.create(params={"name": name[0] if name else account_id, "metadata": {
            "deskgate_account": account_id, "deskgate_customer": admin}})
        accounts[account_id] = str(created.id)
        _card(api, created.id, "visa")
    ledger.set_provider_refs_sync(SYSTEM, "account", accounts)

    subscriptions: dict[str, str] = {}
    subs = db.read_sync(lambda tx: tx.query(
        "SELECT id, customer_id, account_id, plan, price_minor, currency, billing_period FROM subscriptions"
        " WHERE id IN (?, ?) ORDER BY id", (d.subscription_id, d.invoice_subscription_id)))
    for sub_id, customer_id, account_id, plan_name, price, currency, period in subs:
        product = api.products.create(params={"name": plan_name})
        plan = api.plans.create(params={"product": product.id, "amount": int(price), "currency": str(currency).lower(),
                                        "interval": period, "nickname": plan_name})
        subscription = api.subscriptions.create(params={
            "customer": accounts[account_id], "items": [{"plan": plan.id}],
            "metadata": {"deskgate_customer": customer_id, "deskgate_account": account_id, "deskgate_plan": plan_name}})
        subscriptions[sub_id] = str(subscription.id)
    ledger.set_provider_refs_sync(SYSTEM, "subscription", subscriptions)

    invoice = db.read_sync(lambda tx: tx.one("SELECT account_id, amount_minor, currency FROM invoices WHERE id = ?",
                                             (d.open_invoice,)))
    if invoice is not None:
        api.invoice_items.create(params={"customer": accounts[invoice[0]], "amount": int(invoice[1]),
                                         "currency": str(invoice[2]).lower()})
        opened = api.invoices.create(params={"customer": accounts[invoice[0]],
                                             "metadata": {"deskgate_account": invoice[0]}})
        ledger.set_provider_refs_sync(SYSTEM, "invoice", {d.open_invoice: str(opened.id)})
    return True


def stripe_ids(db: Database) -> dict[str, str]:
    """The Stripe ids of the demo's subscriptions and open invoice (e.g. {"S-1": "sub_…", "I-3": "in_…"})."""
    ledger = IntentLedger(db)
    return {**ledger.provider_refs_sync(SYSTEM, "subscription"), **ledger.provider_refs_sync(SYSTEM, "invoice")}


def _account_name(tx: Tx, account_id: str) -> Row | None:
    return tx.one("SELECT name FROM accounts WHERE id = ?", (account_id,))
