"""The approver reads the agent's rationale on the pending-approval card, in words, with its personal data masked."""

from __future__ import annotations

import html
from typing import Any

import pytest

from tests.e2e.conftest import Deployment, call

from .conftest import REFUND, agent, browser_client, log_in

pytestmark = pytest.mark.anyio


async def test_the_pending_approval_card_says_why_the_agent_acts_with_pii_masked(
        deployment: Deployment, http_server: str, member: Any) -> None:
    anna = member("anna")
    rationale = "Headphones arrived broken; the customer (maria.schneider@example.com) sent photos"
    async with agent(http_server, deployment) as client:
        asked = await call(client, "issue_refund", **REFUND, rationale=rationale)
        silent = await call(client, "issue_refund", **{**REFUND, "amount": "60.00"})
    assert asked["status"] == silent["status"] == "pending_approval", (asked, silent)
    async with browser_client(http_server) as http:
        await log_in(http, http_server, anna)
        page = html.unescape((await http.get("/console/approvals")).text)
    card = page.split(f'id="{asked["approval_id"]}"', 1)[1].split("</article>", 1)[0]
    assert "Why the agent acts" in card
    assert "Headphones arrived broken; the customer (m***@example.com) sent photos" in card
    assert "maria.schneider@example.com" not in page
    other = page.split(f'id="{silent["approval_id"]}"', 1)[1].split("</article>", 1)[0]
    assert "the agent gave no rationale" in other
