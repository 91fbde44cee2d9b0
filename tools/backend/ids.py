"""Identifier formats, declared by each system a backend adapter speaks to.

The demo's ids are short and prefixed (`C-1042`); Stripe's are its own (`sub_…`, `in_…`, `re_…`);
django-helpdesk numbers its tickets. An id argument or result field accepts the formats of the
systems that can own its kind (`tools/models.py` builds the patterns from here), and
`ComposedBackend` refuses an id that is not in the format of the system configured for its
domain before any system is asked. A new adapter adds its formats here.

This module is a leaf: it imports nothing of deskgate, so the models can be built from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_STRIPE_ID = "[A-Za-z0-9]{8,64}"

# system -> id kind -> regular expression (without anchors)
ID_FORMATS: dict[str, dict[str, str]] = {
    "sql": {
        "customer_id": "C-[0-9]{1,9}", "account_id": "A-[0-9]{1,9}", "order_id": "O-[0-9]{1,9}",
        "ticket_id": "T-[0-9]{1,9}", "subscription_id": "S-[0-9]{1,9}", "invoice_id": "I-[0-9]{1,9}",
        "refund_id": "R-[0-9]{1,9}", "handoff_id": "H-[0-9]{1,9}", "credit_id": "CR-[0-9]{1,9}",
        "note_id": "N-[0-9]{1,9}", "outbox_id": "M-[0-9]{1,9}", "action_id": "ACT-[0-9]{1,9}",
    },
    "stripe": {
        "subscription_id": f"sub_{_STRIPE_ID}", "invoice_id": f"in_{_STRIPE_ID}", "refund_id": f"re_{_STRIPE_ID}",
        # A credit is a negative invoice item on the account's customer (see stripe_billing.py).
        "credit_id": f"ii_{_STRIPE_ID}",
    },
    # django-helpdesk numbers tickets and follow-ups; a hand-off is named by its follow-up (the note).
    "helpdesk": {"ticket_id": "[1-9][0-9]{0,8}", "note_id": "[1-9][0-9]{0,8}", "handoff_id": "H-[0-9]{1,9}"},
}


def systems_for(kind: str) -> list[str]:
    return [system for system, formats in ID_FORMATS.items() if kind in formats]


def pattern_for(kind: str, systems: Iterable[str] | None = None) -> str:
    """An anchored pattern accepting `kind` ids of `systems` (all that declare the kind by default)."""
    chosen = systems_for(kind) if systems is None else [s for s in systems if kind in ID_FORMATS[s]]
    formats = [ID_FORMATS[s][kind] for s in chosen]
    return f"^{formats[0]}$" if len(formats) == 1 else "^(?:" + "|".join(formats) + ")$"


def matches(kind: str, system: str, value: str) -> bool:
    formats = ID_FORMATS.get(system, {})
    return kind not in formats or re.fullmatch(formats[kind], value) is not None
