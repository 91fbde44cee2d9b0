"""The console in a real headless Chromium, against `deskgate serve`, with an agent over Streamable HTTP.

An approver logs in with password and TOTP, sees the pending call the agent's real MCP call created,
approves it, and the agent's repeat runs; denies another with a reason, and the agent reads it -
in `get_action_status` and in the answer to its repeat - while the console shows the repeat.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
import httpx2
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_scenarios import confirmed
from tests.e2e.test_transports import http_client

from . import browser as chromium
from .browser import screenshot, wait_for
from .conftest import CREDIT, REFUND, Member, agent, pending_refund

pytestmark = pytest.mark.anyio
browser = chromium.browser  # the fixture


def log_in(driver: webdriver.Chrome, base: str, who: Member) -> None:
    driver.get(f"{base}/console/")
    wait_for(driver, "form.login")
    driver.find_element(By.ID, "name").send_keys(who.name)
    driver.find_element(By.ID, "password").send_keys(who.password)
    driver.find_element(By.ID, "code").send_keys(who.code())
    driver.find_element(By.ID, "login").click()
    wait_for(driver, "h1 .count")


def decide(driver: webdriver.Chrome, approval_id: str, action: str, reason: str = "") -> None:
    card = wait_for(driver, f"article[id='{approval_id}']")
    if reason:
        card.find_element(By.NAME, "reason").send_keys(reason)
    card.find_element(By.CSS_SELECTOR, f"button[value='{action}']").click()
    # The notice of an earlier decision may still be on the page: first wait for this POST's new page.
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(card))
    wait_for(driver, "p.notice")


async def test_an_approver_logs_in_sees_the_agents_call_in_words_approves_and_the_repeat_runs(
        deployment: Deployment, http_server: str, member: Any, browser: webdriver.Chrome) -> None:
    anna = member("anna")
    async with agent(http_server, deployment, sub="billing-bot-2") as other:  # another call waiting beside it
        assert (await call(other, "apply_account_credit", **CREDIT))["status"] == "pending_approval"
    async with agent(http_server, deployment) as client:
        approval_id = await pending_refund(client)
        await anyio.to_thread.run_sync(log_in, browser, http_server, anna)
        card = wait_for(browser, f"article[id='{approval_id}']").text
        for words in ("Refund an order", "120.00 EUR", "O-1", "agent-1", "damaged item", "expires in"):
            assert words in card, (words, card)
        assert "@" not in card  # no e-mail address, the customer's name masked
        screenshot(browser, "approvals.png")
        await anyio.to_thread.run_sync(decide, browser, approval_id, "approve")
        assert approval_id in browser.find_element(By.CSS_SELECTOR, "p.notice").text
        ran = await call(client, "issue_refund", **REFUND)
        assert ran["status"] == "ok", ran
    record = [r for r in deployment.audit_records() if r.get("action") == "approval.approve"][-1]
    assert (record["actor"], record["approval_id"], record["channel"]) == ("anna", approval_id, "console")


async def test_a_denial_reason_reaches_the_agent_and_its_repeat_is_shown_as_a_repeat(
        deployment: Deployment, http_server: str, member: Any, browser: webdriver.Chrome) -> None:
    ben = member("ben")
    reason = "Already compensated with a voucher on the ticket."
    async with agent(http_server, deployment) as client:
        approval_id = await pending_refund(client)
        await anyio.to_thread.run_sync(log_in, browser, http_server, ben)
        await anyio.to_thread.run_sync(decide, browser, approval_id, "deny", reason)
        status = await call(client, "get_action_status", action_id=approval_id)
        assert (status["data"]["status"], status["data"]["reason"]) == ("denied", reason)
        repeat = await call(client, "issue_refund", **REFUND)
        assert (repeat["status"], repeat["code"], repeat["approval_id"]) == ("denied", "approval_denied", approval_id)
        assert reason.rstrip(".") in repeat["reason"]
    await anyio.to_thread.run_sync(browser.refresh)
    row = wait_for(browser, f"tr[id='decided-{approval_id}']").text
    assert "denied" in row and reason in row and "repeated 1\u00d7 after denial" in row
    assert wait_for(browser, "p.empty").text == "Nothing waits for a decision."


async def test_the_scorecard_draws_its_charts_from_the_same_numbers_as_its_json(
        deployment: Deployment, http_server: str, member: Any, browser: webdriver.Chrome) -> None:
    """Automated, approved, escalated and denied calls by real agents; the page's SVG charts have bars, and the
    API answers the same numbers to the same logged-in person."""
    anna = member("anna")
    async with agent(http_server, deployment) as client:
        assert (await confirmed(client, "issue_refund", **{**REFUND, "amount": "5.00"}))["status"] == "ok"
        credit = await call(client, "apply_account_credit", account_id="A-1", amount="30.00", reason_code="sla_breach")
        assert credit["status"] == "ok", credit
        approval_id = await pending_refund(client)
        assert (await call(client, "issue_refund", **{**REFUND, "amount": "900.00"}))["status"] == "escalated"
        await anyio.to_thread.run_sync(log_in, browser, http_server, anna)
        await anyio.to_thread.run_sync(decide, browser, approval_id, "approve")
        ran = await call(client, "issue_refund", **REFUND)
        assert ran["status"] == "ok", ran
    async with agent(http_server, deployment, role="tier1-agent") as tier1:
        assert (await call(tier1, "issue_refund", **REFUND))["status"] == "denied"
    await anyio.to_thread.run_sync(browser.get, f"{http_server}/console/scorecard")
    figures = browser.find_elements(By.CSS_SELECTOR, "figure.chart")
    assert len(figures) == 5
    assert all(f.find_elements(By.CSS_SELECTOR, "svg rect") for f in figures[:4])
    assert "Actions executed, by tool and tier" in browser.page_source
    screenshot(browser, "scorecard.png")
    await anyio.to_thread.run_sync(browser.get, f"{http_server}/console/api/scorecard")
    data = json.loads(browser.find_element(By.TAG_NAME, "pre").text)
    assert data["resolution_mix"] == {"automated": 2, "approved": 1, "escalated": 1, "denied": 1}
    assert data["executed_by_tool_and_tier"] == {"apply_account_credit": {"automate": 1},
                                                 "issue_refund": {"assist": 1, "automate": 1}}
    assert {(r["currency"], r["reason_code"], r["amount"]) for r in data["paid_out"]} == {
        ("EUR", "damaged_item", "125.00"), ("EUR", "sla_breach", "30.00")}
    assert data["approval_time_to_decision_s"]["count"] == 1


async def test_an_admin_issues_a_token_copies_it_once_and_revokes_it_and_cannot_approve_its_calls(
        deployment: Deployment, http_server: str, member: Any, browser: webdriver.Chrome) -> None:
    """The token works for a real agent until revoked; a call it makes is the issuing admin's own request."""
    ada = member("ada", "admin")
    await anyio.to_thread.run_sync(log_in, browser, http_server, ada)

    def issue() -> str:
        browser.get(f"{http_server}/console/sessions")
        browser.find_element(By.ID, "sub").send_keys("agent-7")
        Select(browser.find_element(By.ID, "role")).select_by_visible_text("billing-agent")
        browser.find_element(By.ID, "max_refund").send_keys("200.00")
        browser.find_element(By.ID, "issue").click()
        return str(wait_for(browser, "#issued-token").get_attribute("value"))

    token = await anyio.to_thread.run_sync(issue)
    async with http_client(http_server, token, "auto") as client:
        approval_id = await pending_refund(client)
    await anyio.to_thread.run_sync(browser.get, f"{http_server}/console/approvals")
    await anyio.to_thread.run_sync(decide_refused, browser, approval_id)
    await anyio.to_thread.run_sync(browser.get, f"{http_server}/console/sessions")
    assert "issued-token" not in browser.page_source and token not in browser.page_source  # shown once
    row = wait_for(browser, "tr[id^='token-']")
    assert "agent-7" in row.text and "payout cap 200.00" in row.text
    await anyio.to_thread.run_sync(lambda: row.find_element(By.CSS_SELECTOR, "button.deny").click())
    # The row is on the page before the click too: wait for its text to change, not for it to exist.
    await anyio.to_thread.run_sync(lambda: WebDriverWait(browser, 30).until(
        expected_conditions.text_to_be_present_in_element((By.CSS_SELECTOR, "tr[id^='token-']"), "revoked")))
    async with httpx2.AsyncClient() as http:
        refused = await http.post(f"{http_server}/mcp", headers={"Authorization": f"Bearer {token}",
                                  "Accept": "application/json, text/event-stream"},
                                  json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert refused.status_code == 401
    issued = [r for r in deployment.audit_records() if r.get("action") == "token.issued"]
    assert [(r["actor"], r["sub"], r["role"]) for r in issued] == [("ada", "agent-7", "billing-agent")]
    assert token not in deployment.audit_text()


def decide_refused(driver: webdriver.Chrome, approval_id: str) -> None:
    card = wait_for(driver, f"article[id='{approval_id}']")
    card.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
    assert "own request" in wait_for(driver, "p.error").text


async def test_a_specialist_takes_and_closes_an_escalation_and_the_agent_reads_the_reply(
        deployment: Deployment, http_server: str, member: Any, browser: webdriver.Chrome) -> None:
    """A policy escalation and an agent's hand-off (its e-mail address masked on the page); take, then close with
    a reply: the agent sees taken, then closed with the reply."""
    spe = member("spe", "specialist")
    reply = "Refunded 900.00 by bank transfer after checking the invoice."
    async with agent(http_server, deployment) as client:
        escalated = await call(client, "issue_refund", **{**REFUND, "amount": "900.00"})
        handoff_id = escalated["escalation_id"]
        asked = await call(client, "escalate_to_human", customer_id="C-1", priority="normal",
                           summary="Customer wants the invoice sent to jane.roe@example.com",
                           tried="Looked up the order", proposed_action="Send the invoice")
        assert asked["status"] == "ok", asked
        await anyio.to_thread.run_sync(log_in, browser, http_server, spe)
        await anyio.to_thread.run_sync(browser.get, f"{http_server}/console/escalations")
        page = await anyio.to_thread.run_sync(lambda: wait_for(browser, f"article[id='{handoff_id}']").text)
        assert "Policy escalated issue_refund" in page and "high" in page
        assert "jane.roe@example.com" not in browser.page_source
        await anyio.to_thread.run_sync(decide_handoff, browser, handoff_id, "take", "")
        assert (await call(client, "get_action_status", action_id=handoff_id))["data"]["status"] == "taken"
        await anyio.to_thread.run_sync(decide_handoff, browser, handoff_id, "close", reply)
        status = (await call(client, "get_action_status", action_id=handoff_id))["data"]
        assert (status["status"], status["reason"]) == ("closed", reply)
    row = wait_for(browser, f"tr[id='closed-{handoff_id}']").text
    assert "spe" in row and reply in row
    actions = [(r["actor"], r["action"]) for r in deployment.audit_records() if r.get("kind") == "admin"]
    assert ("spe", "handoff.take") in actions and ("spe", "handoff.close") in actions


def decide_handoff(driver: webdriver.Chrome, handoff_id: str, action: str, reply: str) -> None:
    card = wait_for(driver, f"article[id='{handoff_id}']")
    if reply:
        card.find_element(By.NAME, "reply").send_keys(reply)
    card.find_element(By.CSS_SELECTOR, f"button[value='{action}']").click()
    # The notice of an earlier decision may still be on the page: first wait for this POST's new page.
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(card))
    wait_for(driver, "p.notice")
