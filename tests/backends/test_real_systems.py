"""`deskgate init --demo --stripe URL --helpdesk URL`, then every tool through a real MCP client over HTTP.

Billing is on localstripe, tickets on django-helpdesk, commerce and identity on the embedded demo:
the same scenarios as on the demo alone, with the effects checked in the real systems.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.backends.conftest import STRIPE_KEY, Helpdesk, LocalStripe
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client

pytestmark = pytest.mark.anyio


def _env(home: Path, helpdesk: Helpdesk) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKGATE_")}
    env.update(DESKGATE_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               STRIPE_API_KEY=STRIPE_KEY, HELPDESK_TOKEN=helpdesk.token)
    return env


def _rows(home: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "backend.db") as db:
        return db.execute(sql, params).fetchall()


def _code(home: Path, email: str) -> str:
    [(body,)] = _rows(home, "SELECT body FROM outbox WHERE kind = 'confirmation_code' AND to_address = ?"
                            " ORDER BY created_at DESC, LENGTH(id) DESC, id DESC LIMIT 1", email)
    match = re.search(r"read this code to the agent: (\d{6})", body)
    assert match is not None
    return match.group(1)


@pytest.mark.slow
async def test_init_seeds_stripe_and_the_helpdesk_and_every_tool_works_on_them(
        tmp_path: Path, localstripe: LocalStripe, helpdesk: Helpdesk) -> None:
    home = tmp_path / "home"
    env = _env(home, helpdesk)
    init = [*CLI, "init", "--demo", "--customers", "20", "--stripe", localstripe.url, "--helpdesk", helpdesk.url,
            "--helpdesk-queues", f"{helpdesk.queue},{helpdesk.human_queue}"]
    first = await anyio.run_process(init, env=env, check=False)
    assert first.returncode == 0, first.stderr.decode()
    again = await anyio.run_process(init, env=env, check=False)
    assert again.returncode == 0 and b"stripe:          already seeded, unchanged" in again.stderr
    settings = (home / "deskgate.toml").read_text()
    assert 'kind = "stripe"' in settings and 'kind = "helpdesk"' in settings and STRIPE_KEY not in settings
    ids = dict(_rows(home, "SELECT local_id, provider_id FROM provider_refs WHERE kind IN ('subscription',"
                           " 'ticket', 'invoice')"))
    token = (await anyio.run_process([*CLI, "token", "issue", "--sub", "e2e-agent", "--role", "supervisor"],
                                     env=env)).stdout.decode().strip()

    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    seen: dict[str, dict[str, Any]] = {}
    try:
        await _wait_until_up(base, server)
        async with http_client(base, token, "auto") as client:

            async def ok(tool: str, **arguments: Any) -> dict[str, Any]:
                answer = (await client.call_tool(tool, arguments)).structured_content or {}
                if answer.get("status") == "confirmation_required":
                    extra = {"confirmation_token": answer["confirmation_token"]}
                    if tool == "cancel_subscription":
                        extra["customer_code"] = _code(home, "jonas.weber@northwind.example")
                    answer = (await client.call_tool(tool, {**arguments, **extra})).structured_content or {}
                assert answer.get("status") == "ok", (tool, answer)
                seen[tool] = answer["data"]
                return answer["data"]

            await ok("find_customer", email="maria.schneider@example.com")
            await ok("get_customer", customer_id="C-1")
            await ok("get_order", order_id="O-1")
            await ok("list_orders", customer_id="C-1")
            await ok("get_subscription", subscription_id=ids["S-1"])
            assert [i["invoice_id"] for i in (await ok("list_invoices", account_id="A-2", status="open"))["invoices"]
                    ] == [ids["I-3"]]
            await ok("get_ticket", ticket_id=ids["T-1"])
            await ok("list_tickets", customer_id="C-1")
            await ok("get_policy")
            await ok("check_refund_eligibility", order_id="O-1", amount="20.00")
            await ok("verify_identity", customer_id="C-1", method="postcode", value="10115")
            prefs = await ok("update_email_preferences", customer_id="C-1", newsletter=True)
            await ok("change_shipping_address", order_id="O-2", address={
                "line1": "7 Harbour Road", "city": "Hamburg", "postcode": "20095", "country": "DE"})
            await ok("initiate_password_reset", customer_id="C-1")
            refund = await ok("issue_refund", order_id="O-1", amount="20.00", reason_code="damaged_item")
            credit = await ok("apply_account_credit", account_id="A-1", amount="10.00", reason_code="goodwill")
            await ok("verify_identity", customer_id="C-2", method="postcode", value="20095")
            cancelled = await ok("cancel_subscription", subscription_id=ids["S-1"], requester_id="C-2",
                                 reason_code="not_using")
            await ok("add_ticket_note", ticket_id=ids["T-1"], body="Asked for a photo of the damage.")
            await ok("get_account", account_id="A-1")
            await ok("reply_to_customer", ticket_id=ids["T-1"], body="Your refund of 20.00 is on its way.")
            await ok("set_ticket_status", ticket_id=ids["T-1"], status="solved")
            handoff = await ok("escalate_to_human", ticket_id=ids["T-2"], summary="Wants S-1 cancelled",
                               tried="Explained the admin rule", proposed_action="Call the admin")
            await ok("get_action_status", action_id=handoff["handoff_id"])
            await ok("undo_action", action_id=prefs["action_id"], customer_id="C-1")
            await ok("undo_action", action_id=credit["action_id"], account_id="A-1")
            listed = {t.name for t in (await client.list_tools()).tools}
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert set(seen) == listed, listed - set(seen)  # every tool the session can see, each answered ok

    api = localstripe.client().v1
    pi = _rows(home, "SELECT reference FROM order_payments WHERE order_id = 'O-1'")[0][0]
    [stripe_refund] = api.refunds.list(params={"payment_intent": pi}).data
    assert (stripe_refund.id, stripe_refund.amount) == (refund["refund_id"], 2000)
    assert api.subscriptions.retrieve(ids["S-1"]).status == "canceled" and cancelled["status"] == "cancelled"
    with helpdesk.http() as http:
        assert http.get(f"tickets/{ids['T-2']}/").json()["queue"] == helpdesk.human_queue
    verify = await anyio.run_process([*CLI, "audit", "verify"], env=env, check=False)
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
