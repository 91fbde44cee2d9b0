"""The Audit page over HTTP: search by subject, customer, tool and status; verify; export what was found."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest

from deskgate.server.audit.records import canonical
from tests.e2e.conftest import Deployment, call

from .conftest import agent, audit_actions, browser_client, form_token, log_in, pending_refund

pytestmark = pytest.mark.anyio


async def test_an_auditor_finds_a_customers_calls_verifies_the_chain_and_exports_them(
        deployment: Deployment, http_server: str, member: Any) -> None:
    aud = member("aud", "auditor")
    async with agent(http_server, deployment, sub="agent-1") as first:
        await pending_refund(first)
        assert (await call(first, "get_order", order_id="O-2"))["status"] == "ok"
    async with agent(http_server, deployment, sub="agent-2") as second:
        assert (await call(second, "get_customer", customer_id="C-3"))["status"] == "ok"
    async with browser_client(http_server) as http:
        await log_in(http, http_server, aud)
        sessions = await http.get("/console/sessions")
        sid = next(t.sid for t in deployment.runtime.state.tokens.list_sync(include_expired=False, now=0)
                   if t.sub == "agent-2")
        row_start = sessions.text.split("agent-2")[0][-400:]
        timeline = re.search(r'href="(/console/audit\?sid=[^"]+)" class="timeline"', row_start)
        assert timeline is not None
        own = await http.get(html.unescape(timeline.group(1)))
        assert own.text.count("get_customer") == 1 and "issue_refund" not in own.text and sid[:8] in own.text
        by_sub = await http.get("/console/audit", params={"sub": "agent-2"})
        assert by_sub.status_code == 200 and by_sub.text.count("get_customer") == 1
        assert "issue_refund" not in by_sub.text
        pending = await http.get("/console/audit", params={"status": "pending_approval", "tool": "issue_refund"})
        assert "1 records" in pending.text and "AP-" in pending.text
        about = await http.get("/console/audit", params={"customer": "C-3"})
        assert "get_customer" in about.text and "get_order" not in about.text
        bad = await http.get("/console/audit", params={"since": "yesterday"})
        assert bad.status_code == 400

        verified = await http.post("/console/audit/verify", data={"csrf": form_token(by_sub.text)})
        assert verified.status_code == 200 and 'id="verified">OK:' in verified.text.replace("\n", "")
        assert (await http.post("/console/audit/verify", data={})).status_code == 403

        export = await http.get("/console/audit/export", params={"tool": "issue_refund"})
        assert export.headers["content-disposition"].startswith("attachment")
        lines = export.text.splitlines()
        assert lines and all(json.loads(line)["tool"] == "issue_refund" for line in lines)
        assert all(canonical(json.loads(line)).decode() == line for line in lines)  # hashes re-checkable
    actions = [(r["actor"], r["action"]) for r in audit_actions(deployment)]
    assert ("aud", "audit.verified") in actions and ("aud", "audit.exported") in actions
