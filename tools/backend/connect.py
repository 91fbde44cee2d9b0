"""`connect_demo`: put the seeded demo into real systems and point deskgate at them (`deskgate init --demo
--stripe URL --helpdesk URL`).

The demo's billing scenario goes to Stripe (`stripe_seed.py`), its scenario tickets to django-helpdesk
(`helpdesk_seed.py`), and `$DESKGATE_HOME/deskgate.toml` gets the `[backends]` section naming them -
with the names of the environment variables that hold their secrets, never the secrets. Running it
again changes nothing; a `[backends]` section that says something else is left alone and refused.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass

import stripe

from deskgate.server.durable import atomic_replace
from deskgate.server.errors import ConfigError
from deskgate.server.settings import BackendsSection, Paths
from deskgate.server.store.db import Database
from deskgate.tools.backend.helpdesk_seed import seed_helpdesk
from deskgate.tools.backend.stripe_seed import seed_stripe

STRIPE_KEY_ENV = "STRIPE_API_KEY"
HELPDESK_TOKEN_ENV = "HELPDESK_TOKEN"  # noqa: S105 - the name of an environment variable, not a secret


@dataclass(frozen=True, slots=True)
class HelpdeskTarget:
    url: str
    queue: int
    human_queue: int


def _secret(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{what}: set the environment variable {name}")
    return value


def backends_section(stripe_url: str | None, helpdesk: HelpdeskTarget | None) -> str:
    lines: list[str] = []
    if stripe_url is not None:
        lines += ["[backends.billing]", 'kind = "stripe"', f'api_base = "{stripe_url}"',
                  f'api_key_env = "{STRIPE_KEY_ENV}"', ""]
    if helpdesk is not None:
        lines += ["[backends.tickets]", 'kind = "helpdesk"', f'url = "{helpdesk.url}"',
                  f'token_env = "{HELPDESK_TOKEN_ENV}"', f"queue = {helpdesk.queue}",
                  f"human_queue = {helpdesk.human_queue}", ""]
    return "\n".join(lines)


def connect_demo(paths: Paths, db: Database, *, stripe_url: str | None, helpdesk: HelpdeskTarget | None) -> list[str]:
    """Seed the systems named and write the `[backends]` section; returns what was done, line by line."""
    section = backends_section(stripe_url, helpdesk)
    wanted = BackendsSection.model_validate(tomllib.loads(section).get("backends", {}))
    text = paths.overrides.read_text(encoding="utf-8") if paths.overrides.exists() else ""
    existing = tomllib.loads(text).get("backends") if text else None
    if existing is not None and BackendsSection.model_validate(existing) != wanted:
        raise ConfigError("already has a [backends] section that says otherwise; edit it by hand",
                          file=str(paths.overrides))
    done: list[str] = []
    if stripe_url is not None:
        client = stripe.StripeClient(_secret(STRIPE_KEY_ENV, "--stripe"), base_addresses={"api": stripe_url},
                                     max_network_retries=0)
        done.append("stripe:          " + ("seeded" if seed_stripe(client, db) else "already seeded, unchanged"))
    if helpdesk is not None:
        seeded = seed_helpdesk(helpdesk.url, _secret(HELPDESK_TOKEN_ENV, "--helpdesk"), helpdesk.queue, db)
        done.append("helpdesk:        " + ("seeded" if seeded else "already seeded, unchanged"))
    if existing is None:
        joined = (text.rstrip("\n") + "\n\n" if text.strip() else "") + section
        atomic_replace(paths.overrides, joined.encode(), mode=0o600)
        done.append(f"backends:        written to {paths.overrides}")
    return done
