"""Issue 4's scenarios, driven as an agent drives deskgate: a real MCP client against a real runtime.

Every scenario runs on SQLite and on PostgreSQL (the `deployment` fixture) and checks its real side
effects in the support backend. The guard chain runs on a `Clock` the test holds, so rate-limit
windows, the breaker's hour, confirmation expiry and undo windows move only when a test says so:
no scenario depends on when it runs. Approvers and admins act through the real CLI
(`deskgate approvals ...`, `deskgate breakers reset`), as people do.

This module holds the scenario helpers (imported by `test_scenarios_*.py`) and the scenarios that
cut across tools: identity before sensitive changes, undo, and the audit trail of every decision.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from deskgate.config import packaged
from deskgate.server.cli import app as cli
from tests.e2e.conftest import Deployment, call
from tests.people.logins import login_as

pytestmark = pytest.mark.anyio

Args = dict[str, Any]
Result = dict[str, Any]


class Clock:
    """The guard chain's clock: frozen at a real instant, moved only by `advance`."""

    def __init__(self) -> None:
        # Near the real time, because the approval CLI decides on the real clock.
        self.now = int(time.time())

    def __call__(self) -> float:
        return float(self.now)

    def advance(self, seconds: int) -> None:
        self.now += seconds


def policy_file(directory: Path, *edits: tuple[str, str]) -> Path:
    """The shipped policy with text edits (each `old` must occur exactly once), written to `directory`."""
    text = packaged("policy.toml").read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = directory / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


# Concurrency scenarios: the shipped refund limits (6 a day per customer) would answer most of 50
# simultaneous calls with rate_limited before they reach the stage under test.
NO_REFUND_LIMITS = ('limits = [\n    { per = "session", max = 20, window = "1h" },   # limits count executed refunds '
                    '(approved ones too),\n    { per = "customer", max = 6, window = "1d" },   # never previews, '
                    'refusals or replays\n]',
                    'limits = [{ per = "session", max = 1000, window = "1h" }]')


def on_clock(d: Deployment, policy_path: Path | None = None) -> Clock:
    """Serve `d` through a chain rewired on a test clock (and maybe another policy), as `Runtime.open` wires it."""
    clock = Clock()
    d.runtime.wire(policy_path=policy_path, clock=clock)
    return clock


async def confirmed(client: Any, tool: str, **arguments: Any) -> Result:
    """An agent's irreversible action: call, show the preview, repeat the same call with the token."""
    first = await call(client, tool, **arguments)
    assert first["status"] == "confirmation_required", first
    return await call(client, tool, **arguments, confirmation_token=first["confirmation_token"])


async def together(n: int, attempt: Callable[[], Awaitable[Result]]) -> list[Result]:
    """Run `attempt` n times at once and collect every answer."""
    results: list[Result] = []

    async def one() -> None:
        results.append(await attempt())

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return results


def deskgate(*argv: str) -> Any:
    """Run the admin CLI (DESKGATE_HOME and the database URL come from the test's environment)."""
    return CliRunner().invoke(cli, list(argv))


def refunds(d: Deployment) -> list[tuple[Any, ...]]:
    """Refunds of the scenario's orders (the seeded bulk has a refund history of its own)."""
    demo = d.demo
    return d.rows("SELECT id, order_id, amount_minor FROM refunds WHERE order_id IN (?, ?, ?)"
                  " ORDER BY LENGTH(id), id", (demo.delivered_order, demo.pending_order, demo.shipped_order))


def customer_code(d: Deployment, email: str) -> str:
    """The one-time code the customer reads back from the latest confirmation email to `email`."""
    bodies = d.rows("SELECT body FROM outbox WHERE kind = 'confirmation_code' AND to_address = ?"
                   " ORDER BY LENGTH(id), id",
                    (email,))
    assert bodies, f"no confirmation code was sent to {email}"
    match = re.search(r"read this code to the agent: (\d{6})", bodies[-1][0])
    assert match is not None
    return match.group(1)


# The postcodes on file of the seeded scenario's people (verify_identity's demo answers).
POSTCODES = {"C-1": "10115", "C-2": "20095", "C-3": "20097", "C-4": "SW1A 1AA"}


async def verified(client: Any, customer_id: str) -> None:
    """verify_identity for a scenario person in this session, as an agent does before acting for them."""
    checked = await call(client, "verify_identity", customer_id=customer_id, method="postcode",
                         value=POSTCODES[customer_id])
    assert checked["data"]["verified"] is True, checked


def records_of(d: Deployment, request_kind: str = "call", **match: Any) -> list[dict[str, Any]]:
    """Audit records of `request_kind` whose fields equal `match`."""
    return [r for r in d.audit_records()
            if r.get("kind") == request_kind and all(r.get(k) == v for k, v in match.items())]



# --- scenarios --------------------------------------------------------------------------------

NEW_ADDRESS = {"line1": "7 Harbour Road", "city": "Hamburg", "postcode": "20095", "country": "DE"}


async def test_password_reset_and_address_change_wait_for_identity_verified_in_this_very_session(
        deployment: Deployment) -> None:
    """Refused before verify_identity, after a wrong answer, and when only another session verified; allowed
    once this session verified the customer."""
    on_clock(deployment)
    demo = deployment.demo
    resets = "SELECT id FROM outbox WHERE kind = 'password_reset'"
    before = len(deployment.rows(resets))
    async with deployment.client(deployment.token("tier1-agent")) as client:
        reset = await call(client, "initiate_password_reset", customer_id=demo.customer_id)
        assert (reset["status"], reset["code"]) == ("denied", "gate_identity_verified_in_session")
        wrong = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode", value="99999")
        assert wrong["data"]["verified"] is False
        move = await call(client, "change_shipping_address", order_id=demo.pending_order, address=NEW_ADDRESS)
        assert (move["status"], move["code"]) == ("denied", "gate_identity_verified_in_session")
        async with deployment.client(deployment.token("tier1-agent")) as other_session:
            elsewhere = await call(other_session, "verify_identity", customer_id=demo.customer_id,
                                   method="card_last4", value=demo.card_last4)
            assert elsewhere["data"]["verified"] is True
        reset = await call(client, "initiate_password_reset", customer_id=demo.customer_id)
        assert (reset["status"], reset["code"]) == ("denied", "gate_identity_verified_in_session")
        assert len(deployment.rows(resets)) == before
        assert deployment.rows("SELECT ship_line1 FROM orders WHERE id = ?", (demo.pending_order,)) \
            != [(NEW_ADDRESS["line1"],)]

        right = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode",
                           value=demo.postcode)
        assert right["data"]["verified"] is True
        assert (await call(client, "initiate_password_reset", customer_id=demo.customer_id))["status"] == "ok"
        moved = await call(client, "change_shipping_address", order_id=demo.pending_order, address=NEW_ADDRESS)
        assert moved["status"] == "ok", moved
    assert len(deployment.rows(resets)) == before + 1
    assert deployment.rows("SELECT ship_line1 FROM orders WHERE id = ?", (demo.pending_order,)) \
        == [(NEW_ADDRESS["line1"],)]


async def test_undo_within_the_window_reverses_the_change_and_is_audited_and_after_it_is_refused(
        deployment: Deployment) -> None:
    """An address change undone 59 minutes later is reversed, as its own audited action; a credit is not
    undone a day and a second later."""
    clock = on_clock(deployment)
    demo = deployment.demo
    address = "SELECT ship_line1 FROM orders WHERE id = ?"
    credit = "SELECT credit_minor FROM accounts WHERE id = ?"
    original = deployment.rows(address, (demo.pending_order,))
    async with deployment.client(deployment.token("billing-agent", sub="undoer")) as client:
        await call(client, "verify_identity", customer_id=demo.customer_id, method="card_last4", value=demo.card_last4)
        moved = await call(client, "change_shipping_address", order_id=demo.pending_order, address=NEW_ADDRESS)
        credited = await call(client, "apply_account_credit", account_id=demo.account_id, amount="20.00",
                              reason_code="goodwill")
        assert moved["status"] == credited["status"] == "ok"
        clock.advance(59 * 60)
        undone = await call(client, "undo_action", action_id=moved["data"]["action_id"], customer_id=demo.customer_id)
        assert undone["status"] == "ok", undone
        assert deployment.rows(address, (demo.pending_order,)) == original
        status = await call(client, "get_action_status", action_id=moved["data"]["action_id"])
        assert status["data"]["status"] == "undone"

        clock.advance(24 * 3600 + 1 - 59 * 60)
        late = await call(client, "undo_action", action_id=credited["data"]["action_id"], account_id=demo.account_id)
        assert (late["status"], late["code"]) == ("error", "undo_window_expired")
    assert deployment.rows(credit, (demo.account_id,)) == [(2000,)]
    audited = records_of(deployment, "outcome", tool="undo_action", sub="undoer")
    assert [(r["status"], r["decision"]["tier"]) for r in audited] == [("ok", "automate"), ("error", "automate")]
    assert all(r["policy_version"] == r["decision"]["policy_version"] for r in audited)


async def test_every_decision_is_audited_with_the_policy_version_and_its_reason(deployment: Deployment,
                                                                               tmp_path: Path) -> None:
    """Allowed, denied, confirmation issued, pending, approved, escalated and a breaker trip each leave a
    record naming the policy version and why."""
    on_clock(deployment, policy_file(tmp_path, ('per_hour = "1500.00"', 'per_hour = "120.00"')))
    demo = deployment.demo
    order = demo.delivered_order
    refund = {"order_id": order, "reason_code": "damaged_item"}
    async with deployment.client(deployment.token("billing-agent", sub="audited")) as client:
        version = (await call(client, "get_policy"))["data"]["rules"]["policy_version"]
        assert (await call(client, "add_ticket_note", ticket_id=demo.pii_ticket, body="Checked."))["status"] == "ok"
        assert (await call(client, "initiate_password_reset", customer_id=demo.customer_id))["status"] == "denied"
        assert (await confirmed(client, "issue_refund", **refund, amount="10.00"))["status"] == "ok"
        approval_id = (await call(client, "issue_refund", **refund, amount="100.00"))["approval_id"]
        login_as("anna")
        assert deskgate("approvals", "approve", approval_id, "--yes").exit_code == 0
        assert (await call(client, "issue_refund", **refund, amount="100.00"))["status"] == "ok"
        assert (await call(client, "issue_refund", **refund, amount="900.00"))["status"] == "escalated"
        tripped = await call(client, "apply_account_credit", account_id=demo.account_id, amount="30.00",
                             reason_code="goodwill")
        assert tripped["code"] == "breaker_open"

    records = [r for r in deployment.audit_records() if r.get("sub") == "audited" and r["kind"] != "intent"]
    assert records and all(r["policy_version"] == version for r in records)
    seen = {(r.get("tool"), r["status"], r["decision"]["tier"], r["decision"]["code"]) for r in records}
    assert {
        ("add_ticket_note", "ok", "automate", "allowed"),
        ("initiate_password_reset", "denied", "deny", "gate_identity_verified_in_session"),
        ("issue_refund", "confirmation_required", "automate", "allowed"),
        ("issue_refund", "ok", "automate", "allowed"),
        ("issue_refund", "pending_approval", "assist", "threshold"),
        ("issue_refund", "ok", "assist", "threshold"),
        ("issue_refund", "escalated", "escalate", "threshold"),
        ("apply_account_credit", "pending_approval", "assist", "breaker_open"),
    } <= seen
    for record in records:
        decision = record["decision"]
        assert decision["policy_version"] == version and decision["reasons"], record
        if record["status"] != "ok":
            assert record["reason"] and record["code"], record
    issued = [r for r in records if r["status"] == "confirmation_required"]
    assert [r.get("confirmation_issued") for r in issued] == [True]
    approved = next(r for r in records if r["decision"].get("approval_id") == approval_id and r["status"] == "ok")
    assert approved["decision"]["approved_by"] == ["anna"]
    approval = records_of(deployment, "admin", action="approval.approve", approval_id=approval_id)
    assert [(r["principal"], r["policy_version"], r["state"]) for r in approval] == [("anna", version, "approved")]
    trip = next(r for r in records if r["decision"]["code"] == "breaker_open")
    assert [e["event"] for e in trip["decision"]["events"]] == ["breaker_trip"]
    assert trip["decision"]["events"][0]["policy_version"] == version
