"""The scope catalogue: every scope a session token can carry, and what it allows.

Tools name exactly one required scope (`ToolSpec.scope`); `pii:*` scopes widen what redaction
lets a session see. Roles (`config/roles.toml`) are bundles of these names and nothing else.
"""

from __future__ import annotations

SCOPES: dict[str, str] = {
    # read-only
    "customers:read": "Find and read customer profiles (contact details masked unless a pii scope says otherwise).",
    "accounts:read": "Read B2B accounts: their members and roles, currency and credit balance.",
    "orders:read": "Read orders, shipments and refund eligibility.",
    "billing:read": "Read subscriptions and invoices.",
    "tickets:read": "Read tickets, their messages and internal notes.",
    "policy:read": "Read the refund, cancellation and credit rules that apply to the session.",
    "actions:read": "Read the status of actions this session requested (approvals, hand-offs).",
    # writes
    "identity:verify": "Step-up identity verification of a customer in this session.",
    "preferences:write": "Change a customer's email preferences.",
    "address:write": "Change the shipping address of an order that has not shipped.",
    "password:reset": "Send a password-reset email to a verified customer.",
    "refunds:write": "Refund an order (irreversible).",
    "credits:write": "Apply an account credit (reversible).",
    "subscriptions:cancel": "Cancel a subscription (irreversible).",
    "notes:write": "Add an internal note to a ticket.",
    "replies:write": "Post a reply the customer reads on a ticket (PII in it masked first).",
    "tickets:status": "Set a ticket's status to pending (waiting on the customer) or solved.",
    "escalations:write": "Hand the conversation to a human with a summary.",
    "actions:undo": "Reverse a reversible action within its window.",
    "actions:supervise": "See and undo the actions and hand-offs of any session, not only the session's own.",
    # visibility of personal data
    "pii:contact": "See customers' email addresses and phone numbers in clear.",
    "pii:address": "See postal addresses in clear.",
    "pii:identity": "See names and dates of birth in clear.",
}


def unknown_scopes(scopes: set[str] | frozenset[str]) -> set[str]:
    return set(scopes) - SCOPES.keys()
