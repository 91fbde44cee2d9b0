"""The support systems the tools act on, one per domain.

    base.py       `SupportBackend`: everything the tools and the chain ask (the union of the domains)
    identity.py   `IdentityBackend`: customers, accounts, identity checks, their mail
    commerce.py   `CommerceBackend`: orders, shipping, the payment reference of each order
    billing.py    `BillingBackend`: refunds, credits, subscriptions, invoices
    tickets.py    `TicketsBackend`: tickets, notes, hand-offs to humans
    journal.py    `ActionJournal`: reversible actions and their undo
    kinds.py      shared vocabulary: object kinds, `Intent` (what makes a money write exactly-once)
    composed.py   `ComposedBackend`: the `SupportBackend` built from one backend per domain
    build.py      `build_backend`: the composition `[backends]` in deskgate.toml asks for; secrets by name
    ledger.py     `IntentLedger`: started/done money intents (crash recovery) and orders' payment references
    sql.py        `SqlSupportBackend`: the demo backend on SQLite or PostgreSQL, every domain
    schema.py     its tables and indexes (migrations of component "backend")
    seed.py       `seed_demo`: deterministic demo data and the fixed scenario objects `DEMO`
    demo_data.py  the word lists and ticket texts the seed draws from
    ids.py        the id formats each system declares (a leaf module: the models are built from it)
"""
