"""QA sampling over HTTP: this week's automated actions, reviewed once each; the scorecard's QA error rate."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import confirmed

from .conftest import agent, audit_actions, browser_client, form_token, log_in, pending_refund

pytestmark = pytest.mark.anyio


async def test_a_reviewer_marks_sampled_automated_actions_and_the_scorecard_shows_the_error_rate(
        deployment: Deployment, http_server: str, member: Any) -> None:
    spe, aud = member("spe", "specialist"), member("aud", "auditor")
    async with agent(http_server, deployment) as client:
        assert (await confirmed(client, "issue_refund", order_id="O-1", amount="10.00",
                                reason_code="damaged_item"))["status"] == "ok"
        assert (await call(client, "apply_account_credit", account_id="A-1", amount="30.00",
                           reason_code="sla_breach"))["status"] == "ok"
        assert (await call(client, "get_order", order_id="O-1"))["status"] == "ok"  # a read: never sampled
        await pending_refund(client)  # waits for a person: never sampled
    async with browser_client(http_server) as http:
        await log_in(http, http_server, aud)
        page = await http.get("/console/qa")
        sampled = re.findall(r'id="qa-([0-9a-f]+)"', page.text)
        assert len(sampled) == 2 and "2 automated actions" in page.text and 'value="wrong"' not in page.text
        refused = await http.post(f"/console/qa/{sampled[0]}", data={"csrf": form_token(page.text),
                                                                    "verdict": "right"})
        assert refused.status_code == 403
    async with browser_client(http_server) as http:
        await log_in(http, http_server, spe)
        csrf = form_token((await http.get("/console/qa")).text)
        right = await http.post(f"/console/qa/{sampled[0]}", data={"csrf": csrf, "verdict": "right"})
        assert right.status_code == 303
        twice = await http.post(f"/console/qa/{sampled[0]}", data={"csrf": csrf, "verdict": "wrong", "note": "x"})
        assert twice.status_code == 403 and "already reviewed" in twice.text
        silent = await http.post(f"/console/qa/{sampled[1]}", data={"csrf": csrf, "verdict": "wrong"})
        assert silent.status_code == 400
        wrong = await http.post(f"/console/qa/{sampled[1]}", data={"csrf": csrf, "verdict": "wrong",
                                                                  "note": "goodwill credit without an SLA breach"})
        assert wrong.status_code == 303
        unknown = await http.post(f"/console/qa/{'0' * 32}", data={"csrf": csrf, "verdict": "right"})
        assert unknown.status_code == 404
        data = (await http.get("/console/api/scorecard")).json()
        assert data["qa"] == {"reviewed": 2, "wrong": 1, "error_rate": 0.5}
        assert 'id="qa-rate">50.0%' in (await http.get("/console/scorecard")).text
    reviewed = [(r["actor"], r["verdict"]) for r in audit_actions(deployment) if r["action"] == "qa.reviewed"]
    assert reviewed == [("spe", "right"), ("spe", "wrong")]
