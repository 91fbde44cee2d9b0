"""Redaction end to end: what a session sees depends on its scopes; the audit log never holds raw PII."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

CARD = "4111 1111 1111 1111"


async def test_a_tier1_session_sees_contact_details_masked(deployment: Deployment) -> None:
    """Without pii:contact the customer's email and phone come back masked, ids intact."""
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        customer = (await call(client, "get_customer", customer_id=demo.customer_id))["data"]
    assert customer["customer_id"] == demo.customer_id
    assert customer["email"] != demo.customer_email and "***" in customer["email"]
    assert customer["email"].endswith(demo.customer_email.split("@")[1])
    assert customer["phone"] != demo.customer_phone and customer["phone"].endswith(demo.customer_phone[-3:])


async def test_a_session_with_the_pii_scope_sees_them_in_clear(deployment: Deployment) -> None:
    """pii:contact clears email and phone; card data stays masked whatever the scope."""
    demo = deployment.demo
    scopes = set(deployment.runtime.roles.scopes_of("tier1-agent")) | {"pii:contact"}
    async with deployment.client(deployment.token(None, scopes=scopes)) as client:
        customer = (await call(client, "get_customer", customer_id=demo.customer_id))["data"]
    assert customer["email"] == demo.customer_email
    assert customer["phone"] == demo.customer_phone
    assert demo.card_last4 not in json.dumps({k: v for k, v in customer.items() if k != "card_last4"})


async def test_customer_written_ticket_text_is_redacted_and_marked_as_data(deployment: Deployment) -> None:
    """The demo ticket's card number, IBAN and contact details never reach the agent; its text is marked."""
    async with deployment.client(deployment.token("supervisor")) as client:
        ticket = (await call(client, "get_ticket", ticket_id=deployment.demo.pii_ticket))["data"]
    text = json.dumps(ticket)
    raw = " ".join(r[0] for r in deployment.rows("SELECT body FROM ticket_messages WHERE ticket_id = ?",
                                                 (deployment.demo.pii_ticket,)))
    assert any(ch.isdigit() for ch in raw)
    for secret in _sensitive_numbers(raw):
        assert secret not in text, "a card/IBAN-like number from the ticket reached the agent"
    customer_messages = [m for m in ticket["messages"] if m["author"] == "customer"]
    assert customer_messages and all("customer" in m["body"].lower() for m in customer_messages)


async def test_the_audit_log_never_holds_a_raw_email_card_or_token_that_passed_through(
        deployment: Deployment) -> None:
    """Arguments and results with PII and secrets are redacted before any audit record is written."""
    demo = deployment.demo
    token = deployment.token("supervisor")
    async with deployment.client(token) as client:
        await call(client, "find_customer", email=demo.customer_email)
        await call(client, "get_customer", customer_id=demo.customer_id)
        await call(client, "add_ticket_note", ticket_id=demo.pii_ticket,
                   body=f"Customer read out card {CARD} and wrote from {demo.customer_email}, token {token}")
        await call(client, "get_ticket", ticket_id=demo.pii_ticket)
        await call(client, "find_customer", phone=demo.customer_phone)
    audit = deployment.audit_text()
    assert audit.count('"kind":"call"') + audit.count('"kind":"outcome"') >= 5
    for raw in (demo.customer_email, CARD, CARD.replace(" ", ""), token, token.split(".")[2],
                demo.customer_phone):
        assert raw not in audit, "raw PII or a token reached the audit log"
    assert "fp:" in audit  # correlation survives as keyed fingerprints


def _sensitive_numbers(text: str) -> list[str]:
    """Runs of 12+ digits (ignoring spaces): card numbers and IBAN bodies in the demo ticket."""
    found, run = [], ""
    for ch in text + " x":
        if ch.isdigit():
            run += ch
        elif ch != " " and run:
            if len(run) >= 12:
                found.append(run)
            run = ""
    return found
