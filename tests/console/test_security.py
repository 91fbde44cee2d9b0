"""The console's defences, attacked over plain HTTP against a served deskgate.

CSRF, session fixation, login throttling, a disabled person, cookie flags, the CSP and framing
headers; and the decision rules: the same person twice, a requester deciding their own call, an
auditor deciding at all.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx2
import pytest

from deskgate.server.console.app import build_console
from deskgate.server.people.accounts import People, open_people
from deskgate.server.people.factors import totp_code
from tests.e2e.conftest import Deployment, call, deployed
from tests.e2e.test_transports import http_client

from .conftest import (
    CREDIT,
    agent,
    audit_actions,
    browser_client,
    form_token,
    log_in,
    pending_refund,
    set_cookies,
)

pytestmark = pytest.mark.anyio


async def test_a_login_sets_a_strict_http_only_session_cookie_and_pages_carry_csp_and_deny_framing(
        deployment: Deployment, http_server: str, member: Any) -> None:
    """Password + code log in; the cookie is HttpOnly, SameSite=Strict, Path=/; every page says no framing,
    no inline script; the login is audited with the person."""
    anna = member("anna")
    async with browser_client(http_server) as http:
        answer = await log_in(http, http_server, anna)
        assert answer.status_code == 303 and answer.headers["location"].endswith("/console/approvals")
        cookie = next(c for c in set_cookies(answer) if c.startswith("dg_console="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/"} <= flags and "secure" not in flags
        page = await http.get("/console/approvals")
        assert page.status_code == 200 and "anna" in page.text
        for response in (page, await http.get("/console/login"), await http.get("/console/static/console.css")):
            csp = response.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert "frame-ancestors 'none'" in csp and response.headers["x-frame-options"] == "DENY"
            assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in page.text and not re.search(r"\son[a-z]+=", page.text)  # no inline script
    login = [r for r in audit_actions(deployment) if r["action"] == "person.login"]
    assert [(r["actor"], r["channel"]) for r in login] == [("anna", "console")]


async def test_configured_secure_cookies_are_secure_and_host_prefixed(home: Any, engine: str | None,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """With console.secure_cookies (or an https public URL) the cookie is `__Host-`, Secure."""
    async with deployed(home, engine, "[console]\nsecure_cookies = true\n") as d:
        people = open_people(d.runtime.state_db, d.runtime.settings, d.runtime.paths)
        enrolment = people.add("anna", "approver", now=int(time.time()))
        secret = enrolment.totp_uri.split("secret=")[1].split("&")[0]
        app = build_console(d.runtime, public_url="http://127.0.0.1:1")
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            page = await http.get("/login")
            login_cookie = next(c for c in set_cookies(page) if c.startswith("dg_login="))
            http.cookies.set("dg_login", login_cookie.split(";")[0].split("=", 1)[1])
            answer = await http.post("/login", data={"csrf": form_token(page.text), "name": "anna",
                                                     "password": enrolment.password,
                                                     "code": totp_code(secret, time.time())})
        cookie = next(c for c in set_cookies(answer) if c.startswith("__Host-dg_console="))
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=strict", "path=/"} <= flags and "domain" not in cookie.lower()
        assert "secure" in login_cookie.lower()


async def test_a_post_without_the_sessions_csrf_token_changes_nothing(deployment: Deployment, http_server: str,
                                                                     member: Any) -> None:
    """Missing or foreign CSRF tokens: 403 and the approval stays pending; the login form needs its own."""
    anna = member("anna")
    async with agent(http_server, deployment) as client:
        approval_id = await pending_refund(client)
    async with browser_client(http_server) as http:
        await log_in(http, http_server, anna)
        for data in ({"action": "approve"}, {"action": "approve", "csrf": "x" * 43}):
            refused = await http.post(f"/console/approvals/{approval_id}", data=data)
            assert refused.status_code == 403
        async with browser_client(http_server) as other:  # another browser's login token is not this one's
            foreign = form_token((await other.get("/console/login")).text)
        no_cookie = await http.post("/console/login", data={"csrf": foreign, "name": "anna", "password": "x",
                                                             "code": "123456"})
        assert no_cookie.status_code == 403
    assert deployment.runtime.approvals.get_sync(approval_id).state == "pending"


async def test_a_session_id_is_never_one_the_browser_brought(deployment: Deployment, http_server: str,
                                                            member: Any) -> None:
    """Fixation: a planted cookie is replaced at login and never authenticates; the earlier session of the
    same browser ends when it logs in again."""
    anna = member("anna")
    async with browser_client(http_server) as http:
        http.cookies.set("dg_console", "planted-by-attacker", domain="127.0.0.1", path="/")
        answer = await log_in(http, http_server, anna)
        issued = http.cookies.get("dg_console")
        assert answer.status_code == 303 and issued and issued != "planted-by-attacker"
        await log_in(http, http_server, anna)
        assert http.cookies.get("dg_console") != issued
    async with browser_client(http_server) as attacker:
        for stolen in ("planted-by-attacker", issued):
            attacker.cookies.set("dg_console", stolen)
            bounced = await attacker.get("/console/approvals")
            assert bounced.status_code == 303 and bounced.headers["location"].endswith("/console/login")


async def test_failed_logins_lock_the_account_even_for_the_right_factors(deployment: Deployment, http_server: str,
                                                                        member: Any) -> None:
    """Five wrong passwords, then the right password and code are refused too; each failure is audited."""
    anna = member("anna")
    async with browser_client(http_server) as http:
        for _ in range(5):
            wrong = await log_in(http, http_server, anna, password="wrong password", code="123456")
            assert wrong.status_code == 401 and "dg_console" not in http.cookies
        locked = await log_in(http, http_server, anna)
        assert locked.status_code == 401 and "too many failed logins" in locked.text
        assert "dg_console" not in http.cookies
    codes = [r["code"] for r in audit_actions(deployment) if r["action"] == "person.login_failed"]
    assert codes == ["login_failed_password"] * 5 + ["login_throttled"]


async def test_a_disabled_person_is_logged_out_and_cannot_log_in(deployment: Deployment, http_server: str,
                                                                member: Any, people: People) -> None:
    anna = member("anna")
    async with browser_client(http_server) as http:
        await log_in(http, http_server, anna)
        assert (await http.get("/console/approvals")).status_code == 200
        people.set_disabled("anna", True, now=int(time.time()))
        assert (await http.get("/console/approvals")).status_code == 303
        refused = await log_in(http, http_server, anna)
        assert refused.status_code == 401 and "dg_console" not in http.cookies


async def test_logout_ends_the_session_on_the_server(deployment: Deployment, http_server: str, member: Any) -> None:
    anna = member("anna")
    async with browser_client(http_server) as http:
        await log_in(http, http_server, anna)
        session = http.cookies.get("dg_console")
        page = await http.get("/console/approvals")
        assert (await http.post("/console/logout", data={"csrf": form_token(page.text)})).status_code == 303
    async with browser_client(http_server) as replay:
        replay.cookies.set("dg_console", session or "")
        assert (await replay.get("/console/approvals")).status_code == 303


async def decide(http: Any, approval_id: str, action: str, reason: str = "") -> Any:
    page = await http.get("/console/approvals")
    return await http.post(f"/console/approvals/{approval_id}",
                           data={"csrf": form_token(page.text), "action": action, "reason": reason})


async def test_the_same_person_cannot_be_both_approvers_of_a_two_person_call(
        deployment: Deployment, http_server: str, member: Any) -> None:
    """300.00 needs two people: anna's second approval is refused, ben's completes it, the agent's repeat runs."""
    anna, ben = member("anna"), member("ben")
    async with agent(http_server, deployment) as client:
        approval_id = (await call(client, "apply_account_credit", **CREDIT))["approval_id"]
        async with browser_client(http_server) as http:
            await log_in(http, http_server, anna)
            assert (await decide(http, approval_id, "approve")).status_code == 303
            again = await decide(http, approval_id, "approve")
            assert again.status_code == 403 and "already approved" in again.text
        assert deployment.runtime.approvals.get_sync(approval_id).state == "pending"
        async with browser_client(http_server) as http:
            await log_in(http, http_server, ben)
            assert (await decide(http, approval_id, "approve")).status_code == 303
        assert (await call(client, "apply_account_credit", **CREDIT))["status"] == "ok"
    refused = [r for r in audit_actions(deployment) if r["action"] == "approval.refused"]
    assert [(r["actor"], r["code"]) for r in refused] == [("anna", "approval_same_approver")]


async def test_nobody_decides_a_call_their_own_token_made(deployment: Deployment, http_server: str, member: Any,
                                                          people: People) -> None:
    """A token whose subject is the person, or a session the person issued, is theirs: 403, still pending."""
    anna = member("anna")
    async with agent(http_server, deployment, sub="anna") as client:
        own_subject = await pending_refund(client)
    token = deployment.token("billing-agent", sub="agent-9")
    (sid,) = [t.sid for t in deployment.runtime.state.tokens.list_sync(include_expired=False, now=int(time.time()))
              if t.sub == "agent-9"]  # by subject: two tokens issued in one second list in no fixed order
    people.link_token("anna", sid, now=int(time.time()))
    async with http_client(http_server, token, "auto") as client:
        issued_by_anna = await pending_refund(client)
    async with browser_client(http_server) as http:
        await log_in(http, http_server, anna)
        for approval_id in (own_subject, issued_by_anna):
            refused = await decide(http, approval_id, "approve")
            assert refused.status_code == 403 and "own request" in refused.text
            assert deployment.runtime.approvals.get_sync(approval_id).state == "pending"


@pytest.mark.parametrize("role", ["auditor", "specialist"])
async def test_an_auditor_or_specialist_sees_the_queue_but_cannot_decide(
        deployment: Deployment, http_server: str, member: Any, role: str) -> None:
    """No decide form is offered, and a forged POST is refused by the operation itself."""
    viewer = member("vera", role)
    async with agent(http_server, deployment) as client:
        approval_id = await pending_refund(client)
    async with browser_client(http_server) as http:
        await log_in(http, http_server, viewer)
        page = await http.get("/console/approvals")
        assert approval_id in page.text and 'value="approve"' not in page.text
        refused = await http.post(f"/console/approvals/{approval_id}",
                                  data={"csrf": form_token(page.text), "action": "approve"})
        assert refused.status_code == 403 and f"a {role} may not do this" in refused.text
    assert deployment.runtime.approvals.get_sync(approval_id).state == "pending"


async def test_only_an_admin_issues_or_revokes_tokens(deployment: Deployment, http_server: str, member: Any) -> None:
    """An approver sees no issue form, and forged POSTs to issue or revoke are refused; nothing is issued."""
    apo = member("apo")
    known = deployment.runtime.state.tokens.list_sync(include_expired=True, now=int(time.time()))
    deployment.token("billing-agent", sub="agent-1")
    async with browser_client(http_server) as http:
        await log_in(http, http_server, apo)
        page = await http.get("/console/sessions")
        assert page.status_code == 200 and 'id="issue"' not in page.text
        csrf = form_token(page.text)
        issued = await http.post("/console/sessions", data={"csrf": csrf, "sub": "x", "role": "billing-agent"})
        assert issued.status_code == 403 and "may not do this" in issued.text
        jti = deployment.runtime.state.tokens.list_sync(include_expired=False, now=int(time.time()))[-1].jti
        revoked = await http.post(f"/console/sessions/{jti}/revoke", data={"csrf": csrf})
        assert revoked.status_code == 403
    after = deployment.runtime.state.tokens.list_sync(include_expired=True, now=int(time.time()))
    assert len(after) == len(known) + 1 and not any(t.revoked for t in after)


async def test_escalations_are_worked_only_by_roles_that_may_and_a_closed_one_stays_closed(
        deployment: Deployment, http_server: str, member: Any) -> None:
    """An auditor cannot take; closing needs a reply; after closing, neither take nor close changes it."""
    aud, spe = member("aud", "auditor"), member("spe", "specialist")
    async with agent(http_server, deployment) as client:
        handoff_id = (await call(client, "issue_refund", order_id="O-1", amount="900.00",
                                 reason_code="damaged_item"))["escalation_id"]
    async with browser_client(http_server) as http:
        await log_in(http, http_server, aud)
        page = await http.get("/console/escalations")
        assert handoff_id in page.text and 'value="take"' not in page.text
        refused = await http.post(f"/console/escalations/{handoff_id}", data={"csrf": form_token(page.text),
                                                                              "action": "take"})
        assert refused.status_code == 403
    async with browser_client(http_server) as http:
        await log_in(http, http_server, spe)
        csrf = form_token((await http.get("/console/escalations")).text)
        no_reply = await http.post(f"/console/escalations/{handoff_id}", data={"csrf": csrf, "action": "close"})
        assert no_reply.status_code == 400 and "needs a reply" in no_reply.text
        closed = await http.post(f"/console/escalations/{handoff_id}",
                                 data={"csrf": csrf, "action": "close", "reply": "Done by phone."})
        assert closed.status_code == 303
        for action in ("take", "close"):
            again = await http.post(f"/console/escalations/{handoff_id}",
                                    data={"csrf": csrf, "action": action, "reply": "again"})
            assert again.status_code == 400 and "is closed" in again.text
    detail = await deployment.runtime.backend.handoff_detail(handoff_id)
    assert (detail.status, detail.handled_by, detail.resolution) == ("closed", "spe", "Done by phone.")
