"""What the guide says to log is logged: the agent's rationale, the ticket of every call about one, and the
final message the customer read - each redacted - through a real MCP client, read back from the audit log."""

from __future__ import annotations

from typing import Any

import pytest

from deskgate.tools.catalogue import build_catalogue
from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

EMAIL = "maria.schneider@example.com"
CARD = "4111 1111 1111 1111"


def records_of(d: Deployment, sub: str) -> list[dict[str, Any]]:
    return [r for r in d.audit_records() if r.get("sub") == sub]


def test_every_write_tool_takes_an_optional_bounded_rationale() -> None:
    for spec in build_catalogue():
        schema = spec.input_schema()["properties"]
        if spec.read_only:
            assert "rationale" not in schema, spec.name
            continue
        assert "rationale" not in spec.input_schema().get("required", []), spec.name
        [text] = [v for v in schema["rationale"]["anyOf"] if v.get("type") == "string"]
        assert text["maxLength"] == 500, spec.name


async def test_a_rationale_is_audited_with_its_personal_data_masked(deployment: Deployment) -> None:
    demo = deployment.demo
    rationale = f"Customer {EMAIL} asked twice for an update on the refund"
    async with deployment.client(deployment.token("tier1-agent", sub="why")) as client:
        note = await call(client, "add_ticket_note", ticket_id=demo.pii_ticket, body="Asked for photos.",
                          rationale=rationale)
    assert note["status"] == "ok", note
    records = [r for r in records_of(deployment, "why") if r.get("tool") == "add_ticket_note"]
    assert {r["kind"] for r in records} == {"intent", "outcome"}
    for record in records:
        audited = record["args"]["rationale"]
        assert "asked twice for an update on the refund" in audited and "m***@example.com" in audited
    assert EMAIL not in deployment.audit_text()


@pytest.mark.parametrize("rationale", ["x" * 501, "", "approved by\u202e nagem", "ok\u200b"])
async def test_an_oversized_or_unicode_tricked_rationale_is_refused_and_nothing_happens(
        deployment: Deployment, rationale: str) -> None:
    demo = deployment.demo
    notes = deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0]
    async with deployment.client(deployment.token("tier1-agent")) as client:
        answer = await call(client, "add_ticket_note", ticket_id=demo.pii_ticket, body="x", rationale=rationale)
    assert (answer["status"], answer["code"]) == ("error", "invalid_arguments"), answer
    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0] == notes


async def test_a_confirmed_call_is_the_same_call_only_with_the_same_rationale(deployment: Deployment) -> None:
    """The rationale is part of what was previewed: a repeat that rewrites it is another call."""
    demo = deployment.demo
    refund = {"order_id": demo.delivered_order, "amount": "10.00", "reason_code": "damaged_item",
              "rationale": "Headphones arrived broken"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        first = await call(client, "issue_refund", **refund)
        token = first["confirmation_token"]
        changed = await call(client, "issue_refund", **{**refund, "rationale": "Goodwill"}, confirmation_token=token)
    assert first["status"] == "confirmation_required", first
    assert changed["status"] == "denied" and changed["code"].startswith("confirmation"), changed
    assert deployment.rows("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (demo.delivered_order,))[0][0] == 0


async def test_every_record_of_a_call_about_a_ticket_carries_its_ticket_id(deployment: Deployment) -> None:
    """The ticket named by the call, else the one the session is bound to - allowed, denied and invalid calls."""
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent", sub="named")) as client:
        await call(client, "get_ticket", ticket_id=demo.pii_ticket)
        await call(client, "add_ticket_note", ticket_id=demo.cancel_ticket, body="Checked")
        await call(client, "escalate_to_human", ticket_id=demo.cancel_ticket, summary="s", tried="t",
                   proposed_action="p")
        await call(client, "get_order", order_id=demo.delivered_order)
    async with deployment.client(deployment.token("tier1-agent", sub="bound", ticket=demo.pii_ticket)) as client:
        await call(client, "get_customer", customer_id=demo.customer_id)
        await call(client, "update_email_preferences", customer_id=demo.customer_id, marketing=False)
        await call(client, "get_ticket", ticket_id=demo.cancel_ticket)          # denied: outside the binding
        await call(client, "get_order", order_id="not an id")                   # invalid arguments
    named = [(r["tool"], r["kind"], r.get("ticket_id")) for r in records_of(deployment, "named")]
    assert named == [("get_ticket", "call", demo.pii_ticket),
                     ("add_ticket_note", "intent", demo.cancel_ticket),
                     ("add_ticket_note", "outcome", demo.cancel_ticket),
                     ("escalate_to_human", "intent", demo.cancel_ticket),
                     ("escalate_to_human", "outcome", demo.cancel_ticket),
                     ("get_order", "call", None)]
    bound = [(r["tool"], r.get("status"), r.get("ticket_id")) for r in records_of(deployment, "bound")
             if r["kind"] != "intent"]
    assert bound == [("get_customer", "ok", demo.pii_ticket), ("update_email_preferences", "ok", demo.pii_ticket),
                     ("get_ticket", "denied", demo.cancel_ticket), ("get_order", "error", demo.pii_ticket)]


async def test_a_reply_is_audited_once_as_the_final_customer_output_with_pii_masked(deployment: Deployment) -> None:
    demo = deployment.demo
    body = f"Refunded to card {CARD}; we wrote to {EMAIL} as well. Anything else?"
    async with deployment.client(deployment.token("tier1-agent", sub="replier")) as client:
        reply = await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body=body,
                           rationale="Tell the customer the refund went out")
    async with deployment.client(deployment.token("tier1-agent", sub="outsider", customer="C-3")) as client:
        refused = await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body=body)
    assert reply["status"] == "ok" and refused["code"] == "binding"
    records = records_of(deployment, "replier")
    [final] = [r for r in records if "final_customer_output" in r]
    assert (final["kind"], final["status"], final["ticket_id"]) == ("outcome", "ok", demo.pii_ticket)
    text = final["final_customer_output"]
    assert text.startswith("Refunded to card ") and text.endswith("Anything else?")
    assert "1111" in text and "m***@example.com" in text
    assert all("final_customer_output" not in r for r in records_of(deployment, "outsider"))
    audit = deployment.audit_text()
    assert CARD not in audit and CARD.replace(" ", "") not in audit and EMAIL not in audit
