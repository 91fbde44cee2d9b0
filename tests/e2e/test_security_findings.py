"""The security review's findings (issue 14), each as a class of attack through a real MCP client.

Every test runs on SQLite and on PostgreSQL (the `deployment` fixture) and failed on the code the
review drove (commit 8d89fa1). The demo: Lena (C-3) is a mere member of Northwind (A-1), whose
Team plan S-1 belongs to its admin Jonas (C-2); Maria (C-1) owns orders O-1..O-3 and ticket T-1;
Contoso (A-2, admin C-4) bills in GBP and has an open invoice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from deskgate.server.policy.approvals import Approvals
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import (
    NO_REFUND_LIMITS,
    Clock,
    confirmed,
    customer_code,
    on_clock,
    policy_file,
    together,
)

pytestmark = pytest.mark.anyio

Result = dict[str, Any]
UNKNOWN = "999999"


def approve(d: Deployment, clock: Clock, approval_id: str) -> None:
    Approvals(d.runtime.state_db).decide_sync(approval_id, "anna", True, "", now=clock.now)


def email_of(d: Deployment, customer_id: str) -> str:
    return str(d.rows("SELECT email FROM customers WHERE id = ?", (customer_id,))[0][0])


async def driven(d: Deployment, clock: Clock, client: Client, tool: str, args: dict[str, Any]) -> list[Result]:
    """Every answer of a call an agent pushes as far as it goes: confirmed (with the customer's code when
    the customer must confirm), approved and repeated."""
    answers = [await call(client, tool, **args)]
    last = answers[-1]
    if last["status"] == "pending_approval":
        approve(d, clock, last["approval_id"])
        answers.append(await call(client, tool, **args))
    elif last["status"] == "confirmation_required":
        extra = {"confirmation_token": last["confirmation_token"]}
        if "customer must confirm" in last["reason"]:
            extra["customer_code"] = customer_code(d, email_of(d, args["requester_id"]))
        answers.append(await call(client, tool, **args, **extra))
    return answers


def effects_of(d: Deployment, answer: Result) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the call's audit record, its intent records) for an answer."""
    records = d.audit_records()
    record = next(r for r in records if r["seq"] == answer["audit_seq"])
    intents = [r for r in records if r["kind"] == "intent" and r["request_id"] == record["request_id"]]
    return record, intents


# --- 1. no refusal after a side effect -------------------------------------------------------------

async def test_no_write_of_a_bound_session_is_refused_after_its_side_effect_ran(deployment: Deployment) -> None:
    """Every write tool whose result names a customer or an account, called by a session bound to Lena with
    her own objects, her account's and others' (the admin as requester included): a call either is refused
    before any effect - no tool intent, no code e-mailed, nothing changed - or runs and is answered and
    audited `ok`. Naming the admin as requester is refused up front: no code reaches the admin."""
    clock = on_clock(deployment)
    demo = deployment.demo
    lena, maria = demo.account_member, demo.customer_id
    lena_ticket = demo.cancel_ticket
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("cancel_subscription", {"subscription_id": demo.subscription_id, "requester_id": demo.account_admin,
                                 "reason_code": "not_using"}),
        ("cancel_subscription", {"subscription_id": demo.subscription_id, "requester_id": lena,
                                 "reason_code": "not_using"}),
        ("apply_account_credit", {"account_id": demo.account_id, "amount": "10.00", "reason_code": "goodwill"}),
        ("apply_account_credit", {"account_id": demo.account_id, "amount": "60.00", "reason_code": "goodwill"}),
        ("apply_account_credit", {"account_id": demo.invoice_account_id, "amount": "10.00",
                                  "reason_code": "goodwill"}),
        ("issue_refund", {"order_id": demo.delivered_order, "amount": "10.00", "reason_code": "damaged_item"}),
        ("update_email_preferences", {"customer_id": lena, "newsletter": True}),
        ("update_email_preferences", {"customer_id": maria, "newsletter": True}),
        ("verify_identity", {"customer_id": lena, "method": "postcode", "value": "20097"}),
        ("verify_identity", {"customer_id": maria, "method": "postcode", "value": demo.postcode}),
        ("change_shipping_address", {"order_id": demo.pending_order, "address": {
            "line1": "Torstrasse 1", "city": "Berlin", "postcode": "10119", "country": "DE"}}),
        ("initiate_password_reset", {"customer_id": maria}),
        ("add_ticket_note", {"ticket_id": lena_ticket, "body": "customer called back"}),
        ("add_ticket_note", {"ticket_id": demo.pii_ticket, "body": "not mine"}),
        ("escalate_to_human", {"ticket_id": lena_ticket, "summary": "wants to cancel", "tried": "checked role",
                               "proposed_action": "call the admin"}),
        ("escalate_to_human", {"customer_id": maria, "summary": "s", "tried": "t", "proposed_action": "p"}),
    ]
    answers: list[tuple[str, Result]] = []
    async with deployment.client(deployment.token("billing-agent", sub="lena-desk", customer=lena)) as client:
        for tool, args in attempts:
            answers += [(tool, a) for a in await driven(deployment, clock, client, tool, args)]
        credit = next(a for t, a in answers if t == "apply_account_credit" and a["status"] == "ok")
        undo = await call(client, "undo_action", action_id=credit["data"]["action_id"], account_id=demo.account_id)
        answers.append(("undo_action", undo))

    for tool, answer in answers:
        record, intents = effects_of(deployment, answer)
        assert record["status"] == answer["status"], (tool, answer)
        ran = [i for i in intents if i.get("effect", "tool") == "tool"]
        if ran:  # the side effect may have happened: the call is answered and audited as executed
            assert answer["status"] == "ok", (tool, answer)
            assert record["kind"] == "outcome"
    by_tool = {(t, a["status"]) for t, a in answers}
    assert ("cancel_subscription", "denied") in by_tool and ("cancel_subscription", "ok") not in by_tool
    first = answers[0][1]
    assert (first["status"], first["code"]) == ("denied", "binding")
    assert deployment.rows("SELECT status FROM subscriptions WHERE id = ?", (demo.subscription_id,)) == [("active",)]
    assert deployment.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'confirmation_code'")[0][0] == 0
    assert {t for t, a in answers if a["status"] == "ok"} >= {
        "apply_account_credit", "update_email_preferences", "verify_identity", "add_ticket_note",
        "escalate_to_human", "undo_action"}
    assert deployment.rows("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (demo.delivered_order,))[0][0] == 0
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.invoice_account_id,)) == [(0,)]


async def test_the_admin_of_the_account_bound_to_the_session_still_cancels_and_is_answered_ok(
        deployment: Deployment) -> None:
    """The up-front checks refuse only what a result would reveal: Jonas, bound to himself, cancels S-1."""
    on_clock(deployment)
    demo = deployment.demo
    args = {"subscription_id": demo.subscription_id, "requester_id": demo.account_admin, "reason_code": "not_using"}
    async with deployment.client(deployment.token("billing-agent", customer=demo.account_admin)) as client:
        first = await call(client, "cancel_subscription", **args)
        done = await call(client, "cancel_subscription", **args, confirmation_token=first["confirmation_token"],
                          customer_code=customer_code(deployment, email_of(deployment, demo.account_admin)))
    assert (done["status"], done["data"]["status"]) == ("ok", "cancelled")


# --- 2. atomic money reservations --------------------------------------------------------------------

async def test_approved_payouts_repeated_at_once_never_pass_the_session_cap(deployment: Deployment,
                                                                            tmp_path: Path) -> None:
    """Four approved credits of about 60 in a session capped at 100, repeated at the same moment: one runs,
    the others are refused `session_cap`, and the account holds exactly one credit."""
    clock = on_clock(deployment)
    demo = deployment.demo
    amounts = ("60.00", "60.01", "60.02", "60.03")
    async with deployment.client(deployment.token("billing-agent", max_refund="100.00")) as client:
        for amount in amounts:
            pending = await call(client, "apply_account_credit", account_id=demo.account_id, amount=amount,
                                 reason_code="sla_breach")
            approve(deployment, clock, pending["approval_id"])
        queue = list(amounts)
        results = await together(len(amounts), lambda: call(
            client, "apply_account_credit", account_id=demo.account_id, amount=queue.pop(), reason_code="sla_breach"))
    assert sorted((r["status"], r.get("code")) for r in results) == [
        ("denied", "session_cap")] * 3 + [("ok", None)]
    paid = next(r for r in results if r["status"] == "ok")["data"]["amount"]
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [
        (int(paid.replace(".", "")),)]


async def test_confirmed_payouts_redeemed_at_once_never_pass_the_session_cap(deployment: Deployment,
                                                                             tmp_path: Path) -> None:
    """Five confirmation tokens for 40.00 each, redeemed together in a session capped at 100: two run."""
    on_clock(deployment, policy_file(tmp_path, NO_REFUND_LIMITS))
    args = {"order_id": deployment.demo.delivered_order, "amount": "40.00", "reason_code": "damaged_item"}
    async with deployment.client(deployment.token("billing-agent", max_refund="100.00")) as client:
        tokens = [(await call(client, "issue_refund", **args))["confirmation_token"] for _ in range(5)]
        results = await together(5, lambda: call(client, "issue_refund", **args, confirmation_token=tokens.pop()))
    assert sorted((r["status"], r.get("code")) for r in results) == [
        ("denied", "session_cap")] * 3 + [("ok", None)] * 2
    assert deployment.rows("SELECT SUM(amount_minor) FROM refunds WHERE order_id = ?", (args["order_id"],)) == [
        (8000,)]


# --- 3. actions and hand-offs belong to who started them -------------------------------------------------

async def _started_by_agent_a(d: Deployment, client: Client) -> dict[str, str]:
    """A reversible credit (keyed only by an account), an agent hand-off and a policy hand-off with no owner."""
    demo = d.demo
    credit = await call(client, "apply_account_credit", account_id=demo.account_id, amount="10.00",
                        reason_code="goodwill")
    handoff = await call(client, "escalate_to_human", ticket_id=demo.pii_ticket, summary="s", tried="t",
                         proposed_action="p")
    ownerless = await call(client, "apply_account_credit", account_id=demo.account_id, amount="600.00",
                           reason_code="goodwill")
    assert ownerless["status"] == "escalated"
    assert d.rows("SELECT customer_id, ticket_id FROM handoffs WHERE id = ?", (ownerless["escalation_id"],)) == [
        (None, None)]
    return {"ACT": credit["data"]["action_id"], "H": handoff["data"]["handoff_id"], "H0": ownerless["escalation_id"]}


async def test_get_action_status_shows_a_session_only_what_it_started(deployment: Deployment) -> None:
    """Agent A's action and hand-offs: A sees them; another session of A, another agent and a session bound
    to a member of the credited account see exactly what an unknown id gets; a supervisor sees them."""
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as a:
        ids = await _started_by_agent_a(deployment, a)
        for action_id in ids.values():
            assert (await call(a, "get_action_status", action_id=action_id))["status"] == "ok"

    others = {"same subject, other session": deployment.token("billing-agent", sub="agent-a"),
              "other agent": deployment.token("billing-agent", sub="agent-b"),
              "bound to a member of A-1": deployment.token("tier1-agent", customer=deployment.demo.account_member)}
    for who, token in others.items():
        async with deployment.client(token) as client:
            for prefix, action_id in ids.items():
                seen = await call(client, "get_action_status", action_id=action_id)
                unknown_id = f"{prefix.rstrip('0')}-{UNKNOWN}"
                unknown = await call(client, "get_action_status", action_id=unknown_id)
                assert seen["status"] != "ok", (who, action_id)
                assert (seen["status"], seen.get("code"), seen["reason"].replace(action_id, "?")) == (
                    unknown["status"], unknown.get("code"), unknown["reason"].replace(unknown_id, "?")), who
    async with deployment.client(deployment.token("supervisor", sub="lead-sam")) as supervisor:
        for action_id in ids.values():
            assert (await call(supervisor, "get_action_status", action_id=action_id))["status"] == "ok"
    # deskgate's own record of who started each (the backend knows nothing of sessions)
    owners = deployment.runtime.state_db.read_sync(lambda tx: tx.query(
        "SELECT action_id, sub, tool FROM action_owners ORDER BY action_id"))
    assert {(ids["ACT"], "agent-a", "apply_account_credit"), (ids["H"], "agent-a", "escalate_to_human"),
            (ids["H0"], "agent-a", "apply_account_credit")} <= set(owners)


async def test_a_policy_sharing_actions_by_subject_shows_them_to_every_session_of_that_subject(
        deployment: Deployment, tmp_path: Path) -> None:
    """`[actions] shared_with = "subject"`: another session of agent A sees A's actions; agent B still not."""
    on_clock(deployment, policy_file(tmp_path, ('shared_with = "session"', 'shared_with = "subject"')))
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as a:
        ids = await _started_by_agent_a(deployment, a)
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as again, \
            deployment.client(deployment.token("billing-agent", sub="agent-b")) as b:
        for action_id in ids.values():
            assert (await call(again, "get_action_status", action_id=action_id))["status"] == "ok"
            assert (await call(b, "get_action_status", action_id=action_id))["code"] == "not_found"


# --- 4. undo_action passes the original tool's scope, ownership and policy -----------------------------------

async def test_undo_needs_the_original_scope_and_the_same_session_unless_a_supervisor_undoes(
        deployment: Deployment, tmp_path: Path) -> None:
    """A's credit: another agent, another session of A, a tier-1 session of A (no credits:write, even when
    the policy shares actions by subject) cannot undo it; nothing changes; a supervisor can."""
    demo = deployment.demo
    on_clock(deployment)
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as a:
        credit = await call(a, "apply_account_credit", account_id=demo.account_id, amount="30.00",
                            reason_code="goodwill")
    undo = {"action_id": credit["data"]["action_id"], "account_id": demo.account_id}
    for token in (deployment.token("tier1-agent", sub="agent-b"), deployment.token("billing-agent", sub="agent-b"),
                  deployment.token("billing-agent", sub="agent-a")):
        async with deployment.client(token) as other:
            refused = await call(other, "undo_action", **undo)
            assert (refused["status"], refused["code"]) == ("error", "not_found")
            assert refused["reason"] == f"action {undo['action_id']} not found"
    on_clock(deployment, policy_file(tmp_path, ('shared_with = "session"', 'shared_with = "subject"')))
    async with deployment.client(deployment.token("tier1-agent", sub="agent-a")) as tier1:
        refused = await call(tier1, "undo_action", **undo)
        assert (refused["status"], refused["code"]) == ("denied", "scope")
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(3000,)]
    async with deployment.client(deployment.token("supervisor", sub="lead-sam")) as supervisor:
        assert (await call(supervisor, "undo_action", **undo))["status"] == "ok"
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(0,)]


async def test_undo_passes_the_original_tools_tier_breaker_and_limits(deployment: Deployment,
                                                                     tmp_path: Path) -> None:
    """Undoing a 60.00 credit is assist like the credit was; with the money breaker open, undoing any credit
    is; and an undo that runs counts against the credit tool's limit (3 an hour here: two credits and one
    approved undo fill it, so the next credit call is refused)."""
    demo = deployment.demo
    clock = on_clock(deployment, policy_file(
        tmp_path, ('per_hour = "1500.00"', 'per_hour = "100.00"'),
        ('limits = [{ per = "session", max = 20, window = "1h" }]\n\n[[tools.apply_account_credit.gates]]',
         'limits = [{ per = "session", max = 3, window = "1h" }]\n\n[[tools.apply_account_credit.gates]]')))
    credit = {"account_id": demo.account_id, "reason_code": "goodwill"}
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as a:
        large = (await driven(deployment, clock, a, "apply_account_credit", {**credit, "amount": "60.00"}))[-1]
        assert large["status"] == "ok"
        held = await call(a, "undo_action", action_id=large["data"]["action_id"], account_id=demo.account_id)
        assert (held["status"], held["code"]) == ("pending_approval", "threshold")

        small = await call(a, "apply_account_credit", **credit, amount="30.00")
        trip = await call(a, "apply_account_credit", **credit, amount="20.00")
        assert (small["status"], trip["code"]) == ("ok", "breaker_open")
        undo_small = {"action_id": small["data"]["action_id"], "account_id": demo.account_id}
        undone = await driven(deployment, clock, a, "undo_action", undo_small)
        assert [(r["status"], r.get("code")) for r in undone] == [("pending_approval", "breaker_open"), ("ok", None)]
        limited = await call(a, "apply_account_credit", **credit, amount="5.00")
        assert (limited["status"], limited["code"]) == ("denied", "rate_limited")
        assert "apply_account_credit" in limited["reason"]
    assert deployment.rows("SELECT credit_minor FROM accounts WHERE id = ?", (demo.account_id,)) == [(6000,)]


# --- 5. what the caller chose never enters the audit log in clear ---------------------------------------

async def test_unknown_tool_names_and_undeclared_argument_names_reach_the_audit_log_only_as_fingerprints(
        deployment: Deployment) -> None:
    """A tool named with a card number, an e-mail or a person's name, and such names as extra arguments:
    refused, and no record holds them - only a keyed fingerprint, the same for the same name."""
    chosen = ["4111 1111 1111 1111", "jane.doe@example.com", "Zebulon Quistgaard 1985-03-14"]
    async with deployment.client(deployment.token("tier1-agent", sub="chooser")) as client:
        for name in chosen:
            for _ in range(2):
                unknown = await call(client, f"refund_{name}")
                assert (unknown["status"], unknown["code"]) == ("denied", "unknown_tool")
            extra = await call(client, "get_order", order_id=deployment.demo.delivered_order, **{name: "x"})
            assert (extra["status"], extra["code"]) == ("error", "invalid_arguments")
            assert name not in extra["reason"] and "(undeclared argument)" in extra["reason"]
    text = deployment.audit_text()
    for fragment in ("4111 1111", "jane.doe", "Zebulon", "Quistgaard", "1985-03-14"):
        assert fragment not in text, fragment
    records = [r for r in deployment.audit_records() if r.get("sub") == "chooser"]
    unknown = [r for r in records if r["tool"] == "(unknown)"]
    assert len(unknown) == 6 and len({r["tool_fp"] for r in unknown}) == 3
    assert all(r["tool_fp"].startswith("fp:") for r in unknown)
    names = [r["arg_names"] for r in records if r["tool"] == "get_order"]
    assert len(names) == 3 and all(n[0].startswith("fp:") and n[1] == "order_id" for n in names)


# --- 8. no existence oracle for a bound session ----------------------------------------------------------

async def test_unknown_and_foreign_answer_alike_on_every_lookup_tool(deployment: Deployment) -> None:
    """For a session bound to Lena, every lookup of Maria's data and of data that does not exist gets the
    same answer - find_customer by e-mail, phone and order included, and another session's actions."""
    on_clock(deployment)
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent", sub="agent-a")) as a:
        ids = await _started_by_agent_a(deployment, a)
        approval = await call(a, "issue_refund", order_id=demo.delivered_order, amount="70.00",
                              reason_code="damaged_item")
    pairs: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("find_customer", {"email": demo.customer_email}, {"email": "nobody.here@example.org"}),
        ("find_customer", {"phone": demo.customer_phone}, {"phone": "+4915199999999"}),
        ("find_customer", {"order_id": demo.delivered_order}, {"order_id": f"O-{UNKNOWN}"}),
        ("get_customer", {"customer_id": demo.customer_id}, {"customer_id": f"C-{UNKNOWN}"}),
        ("get_order", {"order_id": demo.delivered_order}, {"order_id": f"O-{UNKNOWN}"}),
        ("list_orders", {"customer_id": demo.customer_id}, {"customer_id": f"C-{UNKNOWN}"}),
        ("get_subscription", {"subscription_id": demo.invoice_subscription_id}, {"subscription_id": f"S-{UNKNOWN}"}),
        ("list_invoices", {"account_id": demo.invoice_account_id}, {"account_id": f"A-{UNKNOWN}"}),
        ("get_ticket", {"ticket_id": demo.pii_ticket}, {"ticket_id": f"T-{UNKNOWN}"}),
        ("list_tickets", {"customer_id": demo.customer_id}, {"customer_id": f"C-{UNKNOWN}"}),
        ("check_refund_eligibility", {"order_id": demo.delivered_order}, {"order_id": f"O-{UNKNOWN}"}),
        ("get_action_status", {"action_id": ids["ACT"]}, {"action_id": f"ACT-{UNKNOWN}"}),
        ("get_action_status", {"action_id": ids["H"]}, {"action_id": f"H-{UNKNOWN}"}),
        ("get_action_status", {"action_id": ids["H0"]}, {"action_id": f"H-{UNKNOWN}"}),  # names no owner
        ("get_action_status", {"action_id": approval["approval_id"]}, {"action_id": "AP-0123456789AB"}),
    ]
    async with deployment.client(deployment.token("billing-agent", customer=demo.account_member)) as lena:
        for tool, foreign, unknown in pairs:
            theirs, nothing = await call(lena, tool, **foreign), await call(lena, tool, **unknown)
            assert {k: v for k, v in theirs.items() if k != "audit_seq"} == {
                k: v for k, v in nothing.items() if k != "audit_seq"}, (tool, theirs, nothing)
            assert (theirs["status"], theirs["code"]) == ("denied", "binding"), tool
        mine = await call(lena, "find_customer", email=email_of(deployment, demo.account_member))
        assert mine["status"] == "ok"


# --- 9. the money breaker per currency --------------------------------------------------------------------

async def test_the_money_breaker_counts_each_currency_apart_and_names_the_one_that_tripped(
        deployment: Deployment, tmp_path: Path) -> None:
    """100 per hour: 80 EUR and 40 GBP pay out (they never add up); 30 EUR more trips it, saying EUR."""
    on_clock(deployment, policy_file(tmp_path, ('per_hour = "1500.00"', 'per_hour = "100.00"')))
    demo = deployment.demo
    eur = {"order_id": demo.delivered_order, "reason_code": "damaged_item"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        for amount in ("40.00", "40.00"):
            assert (await confirmed(client, "issue_refund", **eur, amount=amount))["status"] == "ok"
        gbp = await call(client, "apply_account_credit", account_id=demo.invoice_account_id, amount="40.00",
                         reason_code="goodwill")
        assert (gbp["status"], gbp["data"]["currency"]) == ("ok", "GBP")
        tripped = await call(client, "issue_refund", **eur, amount="30.00")
        assert (tripped["status"], tripped["code"]) == ("pending_approval", "breaker_open")
    events = [e for r in deployment.audit_records() if r.get("kind") in ("call", "outcome")
              for e in r.get("decision", {}).get("events", [])]
    assert len(events) == 1 and events[0]["currency"] == "EUR"
    assert events[0]["reason"].startswith("EUR hour total 80.00 + 30.00 passes 100.00")
