"""A small catalogue of real `ToolSpec`s (a read, a reversible write, an irreversible money write) and
its policy, roles and scopes, so manifest tests do not depend on the shipped catalogue's details.

`manifest_of(...)` builds a manifest with any part replaced; `spec_changes` replaces fields of one
tool. Running this file as a script prints the sample manifest's canonical bytes (the cross-process
determinism test runs it under different hash seeds).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, Field

from deskgate.server.manifest.build import build_manifest, canonical_bytes
from deskgate.server.redaction.classes import PiiClass
from deskgate.tools.spec import Catalogue, ToolSpec, pii

SCOPES = {
    "customers:read": "Find and read customer profiles.",
    "orders:read": "Read orders.",
    "notes:write": "Add an internal note to a ticket.",
    "refunds:write": "Refund an order (irreversible).",
    "pii:contact": "See email addresses in clear.",
}
ROLES = {
    "agent": ["customers:read", "orders:read", "notes:write"],
    "billing": ["customers:read", "orders:read", "notes:write", "refunds:write"],
    "supervisor": ["customers:read", "orders:read", "notes:write", "refunds:write", "pii:contact"],
}
POLICY: dict[str, dict[str, Any]] = {
    "issue_refund": {
        "tier": "automate",
        "confirmation": "agent",
        "thresholds": [{"above": Decimal("50.00"), "tier": "assist"}, {"above": Decimal("500.00"), "tier": "escalate"}],
        "limits": [{"per": "session", "max": 20, "window": 3600}],
        "gates": [{"fact": "account_has_open_invoices", "must_be": False, "otherwise": "escalate",
                   "reason": "Open invoices: a billing specialist handles refunds."}],
        "allowed_reason_codes": ["damaged_item", "not_delivered"],
    },
    "add_note": {"tier": "automate", "confirmation": "none", "undo_window": 3600},
}


class FindIn(BaseModel):
    email: str = pii(PiiClass.EMAIL, max_length=254, description="The customer's email address")


class Contact(BaseModel):
    customer_id: str = pii(PiiClass.NONE, description="Customer id, e.g. C-1042")
    name: str = pii(PiiClass.NAME)
    email: str = pii(PiiClass.EMAIL)


class FindOut(BaseModel):
    customers: list[Contact]


class RefundIn(BaseModel):
    order_id: str = pii(PiiClass.NONE, pattern=r"^O-\d{1,9}$", description="Order id, e.g. O-5531")
    amount: Decimal = Field(gt=0, le=Decimal("10000.00"), description="Amount in the order's currency")
    reason_code: str = pii(PiiClass.NONE, max_length=40, description="A reason code from the policy")


class RefundOut(BaseModel):
    refund_id: str = pii(PiiClass.NONE)
    amount: Decimal
    card_last4: str = pii(PiiClass.CARD)


class NoteIn(BaseModel):
    ticket_id: str = pii(PiiClass.NONE, pattern=r"^T-\d{1,9}$", description="Ticket id, e.g. T-880")
    body: str = pii(PiiClass.FREE_TEXT, max_length=2000, description="The note, for colleagues only")


class NoteOut(BaseModel):
    note_id: str = pii(PiiClass.NONE)


async def _find(ctx: Any, args: FindIn) -> FindOut:
    return FindOut(customers=[])


async def _refund(ctx: Any, args: RefundIn) -> RefundOut:
    return RefundOut(refund_id="R-1", amount=args.amount, card_last4="4242")


async def _refund_preview(ctx: Any, args: RefundIn) -> str:
    return f"Refund {args.amount} on order {args.order_id}."


async def _note(ctx: Any, args: NoteIn) -> NoteOut:
    return NoteOut(note_id="N-1")


def sample_specs() -> list[ToolSpec]:
    return [
        ToolSpec(name="find_customer", title="Find a customer",
                 description="Find the customer a conversation is about by email address.",
                 input_model=FindIn, output_model=FindOut, handler=_find, scope="customers:read", read_only=True),
        ToolSpec(name="add_note", title="Add a ticket note",
                 description="Add an internal note to a ticket. Reversible with undo_action.",
                 input_model=NoteIn, output_model=NoteOut, handler=_note, scope="notes:write", read_only=False,
                 reversible_by="undo_action"),
        ToolSpec(name="issue_refund", title="Refund an order",
                 description="Refund part or all of an order. Irreversible: the first call returns a preview.",
                 input_model=RefundIn, output_model=RefundOut, handler=_refund, scope="refunds:write",
                 read_only=False, irreversible=True, money=True, preview=_refund_preview),
    ]


def make_catalogue(specs: Iterable[ToolSpec]) -> Catalogue:
    catalogue = Catalogue()
    for spec in specs:
        catalogue.register(spec)
    return catalogue


def make_manifest(
    specs: Iterable[ToolSpec] | None = None,
    *,
    policy: Mapping[str, Mapping[str, Any]] | None = None,
    roles: Mapping[str, Iterable[str]] | None = None,
    scopes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    table = POLICY if policy is None else policy
    return build_manifest(make_catalogue(sample_specs() if specs is None else specs),
                          policy_for=lambda name: table.get(name, {}),
                          roles=ROLES if roles is None else roles, scopes=SCOPES if scopes is None else scopes)


def with_spec(name: str, **changes: Any) -> list[ToolSpec]:
    """The sample specs with fields of tool `name` replaced."""
    return [dataclasses.replace(s, **changes) if s.name == name else s for s in sample_specs()]


@pytest.fixture
def manifest_of() -> Callable[..., dict[str, Any]]:
    return make_manifest


@pytest.fixture
def sample() -> SimpleNamespace:
    """The sample's plain inputs (read-only use: copy before changing)."""
    return SimpleNamespace(policy=POLICY, roles=ROLES, scopes=SCOPES, catalogue=make_catalogue)


@pytest.fixture
def specs() -> list[ToolSpec]:
    return sample_specs()


@pytest.fixture
def spec_changes() -> Callable[..., list[ToolSpec]]:
    return with_spec


if __name__ == "__main__":
    sys.stdout.buffer.write(canonical_bytes(make_manifest()))
