"""`deskgate report --json` after a real agent session (a real MCP client, both engines): escalations by the
agent and by policy, approvals and how they ended, money by reason code, agent and tier, failed
authentications by their reason, and the ticket outcomes the demo's ticket system reports.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deskgate.scopes.mcp_auth import McpTokenVerifier
from deskgate.server.cli import app as cli
from deskgate.server.policy.approvals import Approvals
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import NO_REFUND_LIMITS, confirmed, on_clock, policy_file

pytestmark = pytest.mark.anyio

DAY = 86400


def recent_tickets(d: Deployment, now: int) -> None:
    """Three tickets of the last days: C-1's closed after a day and followed by another within 7 days,
    C-2's closed after a day."""
    rows = [("T-901", "C-1", "closed", now - 3 * DAY, now - 2 * DAY), ("T-902", "C-1", "open", now - DAY, now - DAY),
            ("T-903", "C-2", "closed", now - 2 * DAY, now - DAY)]
    d.runtime.backend_db.write_sync(lambda tx: tx.executemany(
        "INSERT INTO tickets (id, customer_id, subject, status, priority, created_at, updated_at)"
        " VALUES (?, ?, 'help', ?, 'normal', ?, ?)", rows))


async def test_the_report_counts_escalations_approvals_money_failed_logins_and_outcomes(
        deployment: Deployment, tmp_path: Path) -> None:
    clock = on_clock(deployment, policy_file(tmp_path, NO_REFUND_LIMITS))
    now = int(time.time())
    recent_tickets(deployment, now)
    approvals = Approvals(deployment.runtime.state_db)
    refund = {"order_id": deployment.demo.delivered_order, "reason_code": "damaged_item"}
    async with deployment.client(deployment.token("billing-agent", sub="agent-7")) as client:
        automated = await confirmed(client, "issue_refund", **refund, amount="10.00")
        escalated = await call(client, "issue_refund", **refund, amount="600.00")
        handed = await call(client, "escalate_to_human", customer_id="C-1", summary="s", tried="t",
                            proposed_action="p")
        asked = await call(client, "issue_refund", **refund, amount="60.00")
        approvals.decide_sync(asked["approval_id"], "anna", True, "", now=clock.now + 90)
        approved = await call(client, "issue_refund", **refund, amount="60.00")
        refused = await call(client, "issue_refund", **refund, amount="70.00")
        approvals.decide_sync(refused["approval_id"], "anna", False, "no", now=clock.now + 30)
        clock.advance(-5 * 3600)  # asked five hours ago: past the 4h approval lifetime, never decided
        await call(client, "issue_refund", **refund, amount="80.00")
    assert [a["status"] for a in (automated, escalated, handed, approved)] == [
        "ok", "escalated", "ok", "ok"], (automated, escalated, handed, approved)
    assert await McpTokenVerifier(deployment.runtime.authenticator).verify_token("not-a-token") is None

    result = CliRunner().invoke(cli, ["report", "--json", "--since", "4d"])
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["escalations_by_source"] == {"agent": 1, "policy": 1}
    assert card["failed_authentications"] == {"malformed": 1} and "?" not in card["calls"]
    assert {k: card["approvals"][k] for k in ("requested", "approved", "denied", "expired", "pending")} == {
        "requested": 3, "approved": 1, "denied": 1, "expired": 1, "pending": 0}
    assert card["approvals"]["time_to_decision_s"] == {"p50": 30.0, "p95": 90.0, "count": 2}
    money = card["money"]
    assert money["by_tier"] == [{"tier": "approved", "currency": "EUR", "amount": "60.00"},
                                {"tier": "automated", "currency": "EUR", "amount": "10.00"}]
    assert money["by_reason_code"] == [{"reason_code": "damaged_item", "currency": "EUR", "amount": "70.00"}]
    assert money["by_agent"] == [{"agent": "agent-7", "currency": "EUR", "amount": "70.00"}]
    outcomes = card["ticket_outcomes"]
    assert (outcomes["tickets"], outcomes["resolved"], outcomes["recontact_within_7d"]) == (3, 2, 1)
    assert (outcomes["resolved_rate"], outcomes["recontact_rate"]) == (0.6667, 0.5)
    assert outcomes["time_to_resolution_s"]["p50"] == DAY
    text = CliRunner().invoke(cli, ["report", "--since", "4d"])
    assert text.exit_code == 0 and "escalations by the agent / by policy" in text.output
