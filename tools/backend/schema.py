"""Schema of the demo support backend (component "backend"), portable across SQLite and PostgreSQL.

Conventions: ids are prefixed text (`C-1042`), handed out from `id_sequences` inside the writing
transaction; money is BIGINT minor units (cents) beside a currency column; times are BIGINT unix
seconds; flags are INTEGER 0/1. Every lookup a tool or the guard chain makes has an index, so a
read stays O(log n) from a thousand customers to a million.
"""

from __future__ import annotations

from deskgate.server.store.migrations import Migration

BACKEND_MIGRATIONS = [
    Migration(1, "demo support backend", """
CREATE TABLE backend_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE id_sequences (
    prefix TEXT PRIMARY KEY,
    next_value BIGINT NOT NULL
);
CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    address_line1 TEXT NOT NULL,
    address_line2 TEXT,
    city TEXT NOT NULL,
    postcode TEXT NOT NULL,
    country TEXT NOT NULL,
    date_of_birth TEXT NOT NULL,
    card_brand TEXT,
    card_last4 TEXT,
    pref_marketing INTEGER NOT NULL,
    pref_product_updates INTEGER NOT NULL,
    pref_newsletter INTEGER NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX customers_email ON customers (email);
CREATE INDEX customers_phone ON customers (phone);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    currency TEXT NOT NULL,
    credit_minor BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE account_members (
    account_id TEXT NOT NULL REFERENCES accounts (id),
    customer_id TEXT NOT NULL REFERENCES customers (id),
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    PRIMARY KEY (account_id, customer_id)
);
CREATE INDEX account_members_customer ON account_members (customer_id);
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    account_id TEXT REFERENCES accounts (id),
    plan TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled')),
    price_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    billing_period TEXT NOT NULL CHECK (billing_period IN ('month', 'year')),
    started_at BIGINT NOT NULL,
    renews_at BIGINT,
    cancelled_at BIGINT,
    cancelled_by TEXT,
    cancel_reason TEXT
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);
CREATE INDEX subscriptions_account ON subscriptions (account_id);
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    account_id TEXT REFERENCES accounts (id),
    subscription_id TEXT REFERENCES subscriptions (id),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('paid', 'open')),
    issued_at BIGINT NOT NULL,
    due_at BIGINT NOT NULL,
    paid_at BIGINT
);
CREATE INDEX invoices_customer ON invoices (customer_id, issued_at);
CREATE INDEX invoices_account ON invoices (account_id, status, issued_at);
CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'delivered')),
    summary TEXT NOT NULL,
    total_minor BIGINT NOT NULL,
    refunded_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    ship_line1 TEXT NOT NULL,
    ship_line2 TEXT,
    ship_city TEXT NOT NULL,
    ship_postcode TEXT NOT NULL,
    ship_country TEXT NOT NULL,
    placed_at BIGINT NOT NULL,
    shipped_at BIGINT,
    delivered_at BIGINT,
    CHECK (refunded_minor >= 0 AND refunded_minor <= total_minor)
);
CREATE INDEX orders_customer ON orders (customer_id, placed_at);
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL REFERENCES orders (id),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX refunds_order ON refunds (order_id);
CREATE TABLE account_credits (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    reversed_at BIGINT
);
CREATE INDEX account_credits_account ON account_credits (account_id);
CREATE TABLE tickets (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    subject TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'pending', 'escalated', 'closed')),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX tickets_customer ON tickets (customer_id, updated_at);
CREATE TABLE ticket_messages (
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    seq BIGINT NOT NULL,
    author TEXT NOT NULL CHECK (author IN ('customer', 'agent', 'system')),
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (ticket_id, seq)
);
CREATE TABLE ticket_notes (
    id TEXT PRIMARY KEY,
    ticket_id TEXT NOT NULL REFERENCES tickets (id),
    body TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX ticket_notes_ticket ON ticket_notes (ticket_id);
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (id),
    to_address TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    token_sha256 TEXT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX outbox_customer ON outbox (customer_id, created_at);
CREATE TABLE handoffs (
    id TEXT PRIMARY KEY,
    customer_id TEXT REFERENCES customers (id),
    ticket_id TEXT REFERENCES tickets (id),
    summary TEXT NOT NULL,
    tried TEXT NOT NULL,
    proposed_action TEXT NOT NULL,
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    source TEXT NOT NULL CHECK (source IN ('agent', 'policy')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'taken', 'closed')),
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX handoffs_customer ON handoffs (customer_id);
CREATE INDEX handoffs_ticket ON handoffs (ticket_id);
CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    customer_id TEXT REFERENCES customers (id),
    account_id TEXT REFERENCES accounts (id),
    object_id TEXT NOT NULL,
    before_state TEXT NOT NULL,
    after_state TEXT NOT NULL,
    actor TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    reversible_until BIGINT NOT NULL,
    undone_at BIGINT,
    undone_by TEXT,
    CHECK ((customer_id IS NULL) <> (account_id IS NULL))
);
CREATE INDEX actions_customer ON actions (customer_id);
CREATE INDEX actions_account ON actions (account_id)"""),
    # >= 100: the console's escalations inbox (people take and close hand-offs; the agent reads the reply).
    Migration(100, "hand-offs worked by people", """
ALTER TABLE handoffs ADD COLUMN handled_by TEXT;
ALTER TABLE handoffs ADD COLUMN resolution TEXT"""),
]

# Component "payments": what the billing side records of payments beyond invoices, for the policy's facts.
PAYMENT_MIGRATIONS = [
    Migration(1, "failed invoice payments", """
CREATE TABLE payment_failures (
    invoice_id TEXT PRIMARY KEY REFERENCES invoices (id),
    failed_at BIGINT NOT NULL
)"""),
]

# Component "ticket_channels": the channel a demo ticket came in by (chat, phone, email; NULL: not recorded).
CHANNEL_MIGRATIONS = [
    Migration(1, "ticket channels", "ALTER TABLE tickets ADD COLUMN channel TEXT"),
]
