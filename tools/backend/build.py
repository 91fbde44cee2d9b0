"""Build the `SupportBackend` of a deployment from its `[backends]` settings.

Every domain defaults to the embedded demo (`kind = "sql"`); `stripe` can serve billing and
`helpdesk` tickets. A secret is read from the environment variable the settings name, or from
the OS keyring service they name (user: the domain) - never from the settings file.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keyring
import keyring.errors

from deskgate.server.errors import ConfigError
from deskgate.server.settings import BackendSection, BackendsSection
from deskgate.tools.backend.billing import BillingBackend
from deskgate.tools.backend.composed import ComposedBackend, Domains
from deskgate.tools.backend.ledger import IntentLedger
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.backend.tickets import TicketsBackend


def read_secret(section: BackendSection, domain: str, *, env: Callable[[str], str | None] = os.environ.get) -> str:
    """The domain's secret from the named environment variable or keyring service; the error names
    where it looked, never a value."""
    name = section.api_key_env or section.token_env
    if name is not None:
        value = env(name)
        if value:
            return value
        raise ConfigError(f"backends.{domain}: the environment variable {name} is not set")
    if section.keyring is not None:
        try:
            value = keyring.get_password(section.keyring, domain)
        except keyring.errors.KeyringError:
            value = None
        if value:
            return value
        raise ConfigError(f"backends.{domain}: no secret for user {domain!r} in keyring service {section.keyring!r}")
    raise ConfigError(f"backends.{domain}: name the secret's environment variable (api_key_env / token_env) or a "
                      "keyring service (keyring)")


def build_backend(settings: BackendsSection, demo: SqlSupportBackend, ledger: IntentLedger) -> ComposedBackend:
    """One backend per domain as configured; the demo for every domain left on `sql`."""
    billing: BillingBackend = demo
    tickets: TicketsBackend = demo
    if settings.billing.kind == "stripe":
        from deskgate.tools.backend.stripe_billing import StripeBilling

        billing = StripeBilling.from_settings(settings.billing, read_secret(settings.billing, "billing"),
                                              commerce=demo, identity=demo, journal=demo, ledger=ledger)
    if settings.tickets.kind == "helpdesk":
        from deskgate.tools.backend.helpdesk import HelpdeskTickets

        tickets = HelpdeskTickets.from_settings(settings.tickets, read_secret(settings.tickets, "tickets"),
                                                identity=demo)
    return ComposedBackend(Domains(identity=demo, commerce=demo, billing=billing, tickets=tickets, journal=demo))
