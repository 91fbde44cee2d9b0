"""Every tool, driven through a real MCP client, with its real effect checked in the backend."""

from __future__ import annotations

import re
import time
from datetime import datetime

import pytest
from mcp.shared.exceptions import MCPError

from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio


def read_calls(d: Deployment) -> list[tuple[str, dict[str, object]]]:
    demo = d.demo
    return [
        ("find_customer", {"order_id": demo.delivered_order}),
        ("find_customer", {"email": demo.customer_email}),
        ("get_customer", {"customer_id": demo.customer_id}),
        ("get_order", {"order_id": demo.delivered_order}),
        ("list_orders", {"customer_id": demo.customer_id}),
        ("get_subscription", {"subscription_id": demo.subscription_id}),
        ("list_invoices", {"account_id": demo.invoice_account_id}),
        ("get_ticket", {"ticket_id": demo.pii_ticket}),
        ("list_tickets", {"customer_id": demo.customer_id}),
        ("get_policy", {}),
        ("check_refund_eligibility", {"order_id": demo.delivered_order}),
    ]


async def test_every_read_tool_answers_ok_through_a_real_client(deployment: Deployment) -> None:
    """Each read-only tool returns status ok with data that validates against its output schema."""
    async with deployment.client(deployment.token("supervisor")) as client:
        for tool, arguments in read_calls(deployment):
            result = await call(client, tool, **arguments)
            assert result["status"] == "ok", (tool, result)
            assert result["data"], tool
            assert result["audit_seq"] > 0


async def test_tools_list_shows_only_the_tools_the_session_may_call(deployment: Deployment) -> None:
    """A tier-1 session does not see refunds or cancellations; a billing agent does."""
    async with deployment.client(deployment.token("tier1-agent")) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "get_order" in names
        assert "issue_refund" not in names and "cancel_subscription" not in names
        result = await call(client, "issue_refund", order_id=deployment.demo.delivered_order, amount="5.00",
                            reason_code="damaged")
        assert result["status"] == "denied" and result["code"] == "unknown_tool"
    async with deployment.client(deployment.token("billing-agent")) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"issue_refund", "cancel_subscription"} <= names
        refund = next(t for t in (await client.list_tools()).tools if t.name == "issue_refund")
        assert refund.annotations is not None and refund.annotations.destructive_hint is True


async def test_a_call_without_a_valid_token_is_refused_and_lists_nothing(deployment: Deployment) -> None:
    """No token and a forged token both get an error from tools/list (never an empty list) and a denied result."""
    for token in (None, deployment.token() + "x"):
        async with deployment.client(token) as client:
            with pytest.raises(MCPError) as refused:
                await client.list_tools()
            assert refused.value.error.data["code"] in ("missing_token", "malformed")
            result = await call(client, "get_order", order_id=deployment.demo.delivered_order)
            assert result["status"] == "denied"
            assert "invalid" in result["reason"] or "required" in result["reason"]


async def test_invalid_arguments_unknown_ids_and_wrong_states_are_clear_errors_that_change_nothing(
        deployment: Deployment) -> None:
    """Bad input gets status error with a reason and no side effect."""
    demo = deployment.demo
    before = deployment.rows("SELECT id, ship_line1 FROM orders ORDER BY id")
    async with deployment.client(deployment.token("supervisor")) as client:
        bad = await call(client, "get_order", order_id="O-1; DROP TABLE orders")
        assert bad["status"] == "error" and bad["code"] == "invalid_arguments"
        assert "DROP" not in bad["reason"]  # the rejected value is never echoed
        extra = await call(client, "get_order", order_id=demo.delivered_order, admin=True)
        assert extra["status"] == "error" and extra["code"] == "invalid_arguments"
        wrong_type = await call(client, "list_orders", customer_id=demo.customer_id, limit="lots")
        assert wrong_type["status"] == "error"
        missing = await call(client, "get_order", order_id="O-999999")
        assert missing["status"] == "error" and missing["code"] == "not_found"
        shipped = await call(client, "change_shipping_address", order_id=demo.shipped_order,
                             address={"line1": "1 New Street", "city": "Berlin", "postcode": "10115",
                                      "country": "DE"})
        assert shipped["status"] in ("error", "denied")
        oversized = await call(client, "add_ticket_note", ticket_id=demo.pii_ticket, body="x" * 200_000)
        assert oversized["status"] == "error"
    assert deployment.rows("SELECT id, ship_line1 FROM orders ORDER BY id") == before


async def test_write_tools_act_on_the_backend(deployment: Deployment) -> None:
    """Notes, preferences, address changes, verification, password reset, hand-offs and undo really happen."""
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        note = await call(client, "add_ticket_note", ticket_id=demo.pii_ticket, body="Called the customer back.")
        assert note["status"] == "ok"
        assert deployment.rows("SELECT body FROM ticket_notes WHERE ticket_id = ?", (demo.pii_ticket,))[-1][0] \
            == "Called the customer back."

        prefs = await call(client, "update_email_preferences", customer_id=demo.customer_id, marketing=False)
        assert prefs["status"] == "ok"
        action_id = prefs["data"]["action_id"]

        refused = await call(client, "initiate_password_reset", customer_id=demo.customer_id)
        assert refused["status"] == "denied"  # not verified yet in this session
        wrong = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode", value="00000")
        assert wrong["status"] == "ok" and wrong["data"]["verified"] is False
        right = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode",
                           value=demo.postcode)
        assert right["data"]["verified"] is True
        outbox_before = len(deployment.rows("SELECT id FROM outbox WHERE kind = 'password_reset'"))
        reset = await call(client, "initiate_password_reset", customer_id=demo.customer_id)
        assert reset["status"] == "ok"
        assert "http" not in str(reset["data"])  # the link goes to the customer only
        assert len(deployment.rows("SELECT id FROM outbox WHERE kind = 'password_reset'")) == outbox_before + 1

        moved = await call(client, "change_shipping_address", order_id=demo.pending_order,
                           address={"line1": "7 Harbour Road", "city": "Hamburg", "postcode": "20095",
                                    "country": "DE"})
        assert moved["status"] == "ok", moved
        assert deployment.rows("SELECT ship_line1 FROM orders WHERE id = ?",
                               (demo.pending_order,))[0][0] == "7 Harbour Road"
        window = deployment.runtime.policy.tools["change_shipping_address"].undo_window
        undo_until = datetime.fromisoformat(moved["data"]["reversible_until"]).timestamp()
        assert undo_until - time.time() <= window  # the policy's window, not a default

        handoff = await call(client, "escalate_to_human", ticket_id=demo.pii_ticket, summary="Wants a refund",
                             tried="Checked eligibility", proposed_action="Refund 20 EUR", priority="normal")
        assert handoff["status"] == "ok"
        assert deployment.rows("SELECT id FROM handoffs WHERE ticket_id = ?", (demo.pii_ticket,))

        undone = await call(client, "undo_action", action_id=action_id, customer_id=demo.customer_id)
        assert undone["status"] == "ok", undone
        status = await call(client, "get_action_status", action_id=action_id)
        assert status["data"]["status"] == "undone"


async def test_a_session_bound_to_one_customer_cannot_reach_another(deployment: Deployment) -> None:
    """Bindings are enforced by the chain on arguments and on results: no other customer's object leaks."""
    demo = deployment.demo
    other = deployment.rows("SELECT id, customer_id FROM orders WHERE customer_id <> ? ORDER BY id LIMIT 1",
                            (demo.customer_id,))[0]
    token = deployment.token("supervisor", customer=demo.customer_id)
    async with deployment.client(token) as client:
        mine = await call(client, "get_order", order_id=demo.delivered_order)
        assert mine["status"] == "ok"
        theirs = await call(client, "get_order", order_id=other[0])
        assert theirs["status"] == "denied" and theirs["code"] == "binding"
        nobody = await call(client, "get_order", order_id="O-99999999")
        assert nobody == {**nobody, "status": "denied", "code": "binding"}  # no existence oracle
        found = await call(client, "find_customer", order_id=other[0])
        assert found["status"] == "denied"
        listing = await call(client, "list_orders", customer_id=other[1])
        assert listing["status"] == "denied"


async def test_every_call_is_audited_with_session_decision_and_digests(deployment: Deployment) -> None:
    """Allowed and denied calls both land in the audit log, with who, what and the outcome."""
    async with deployment.client(deployment.token("tier1-agent", sub="auditee")) as client:
        await call(client, "get_order", order_id=deployment.demo.delivered_order)
        await call(client, "issue_refund", order_id=deployment.demo.delivered_order, amount="1", reason_code="x")
        await call(client, "add_ticket_note", ticket_id=deployment.demo.pii_ticket, body="hello")
    records = [r for r in deployment.audit_records() if r.get("sub") == "auditee"]
    kinds = [(r["kind"], r.get("tool"), r.get("status")) for r in records]
    assert ("call", "get_order", "ok") in kinds
    assert ("call", "issue_refund", "denied") in kinds
    assert ("intent", "add_ticket_note", None) in kinds and ("outcome", "add_ticket_note", "ok") in kinds
    for record in records:
        assert re.fullmatch(r"[0-9a-f]{64}", record["hash"])
        assert record["policy_version"] and record["manifest_hash"]


async def test_unicode_digits_in_ids_and_amounts_are_refused_not_normalised(deployment: Deployment) -> None:
    """Full-width or Arabic-Indic digits, and amounts like '1_0', are invalid input, never read as numbers."""
    refunds = deployment.rows("SELECT COUNT(*) FROM refunds")[0][0]
    async with deployment.client(deployment.token("billing-agent")) as client:
        for order_id in ("O-\uff11", "O-\u0661", "O-1\u200b"):
            result = await call(client, "get_order", order_id=order_id)
            assert result["status"] == "error" and result["code"] == "invalid_arguments", order_id
        for amount in ("\uff11\uff10", "1_0", "1e1", True):
            result = await call(client, "issue_refund", order_id=deployment.demo.delivered_order, amount=amount,
                                reason_code="damaged_item")
            assert result["status"] == "error" and result["code"] == "invalid_arguments", amount
    assert deployment.rows("SELECT COUNT(*) FROM refunds")[0][0] == refunds


async def test_a_keyed_write_that_ran_but_failed_to_answer_is_never_run_again(
        deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injected after the side effect (the answer's redaction fails): the call is answered as executed
    with its result withheld - never as a failure, which would invite a retry - a retry with the same key
    gets that same answer, and the note exists once."""
    arguments = {"ticket_id": deployment.demo.pii_ticket, "body": "exactly once", "idempotency_key": "note-key-0001"}
    redactor = deployment.runtime.redactor

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("injected fault")

    async with deployment.client(deployment.token("tier1-agent")) as client:
        monkeypatch.setattr(redactor, "redact_output", broken)
        first = await call(client, "add_ticket_note", **arguments)
        monkeypatch.undo()
        retry = await call(client, "add_ticket_note", **arguments)
    assert (first["status"], first["code"], first.get("data")) == ("ok", "result_withheld", None)
    assert (retry["status"], retry["code"]) == ("ok", "result_withheld")
    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes WHERE body = 'exactly once'")[0][0] == 1
