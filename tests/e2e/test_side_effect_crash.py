"""A server killed between each side effect of a call and the call's audit record: the records show it.

Stages 4-5 cause effects of their own before the tool runs - a policy hand-off, an approval row, the
customer's one-time code e-mail - and stage 7 runs the tool. Each is preceded by a durable intent
record, so a SIGKILL right after the effect (`tests/e2e/die_after.py`) leaves the chain verifying and
an intent naming every effect that happened, though the call's own record was never written.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
REFUND = {"reason_code": "damaged_item"}


def effects(d: Deployment) -> dict[str, int]:
    """How many of each effect exist, counted where each lives (backend tables, the state store)."""
    demo = d.demo
    return {
        "handoff": d.rows("SELECT COUNT(*) FROM handoffs WHERE source = 'policy'")[0][0],
        "approval": d.runtime.state_db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM approvals"))[0],
        "customer_code": d.rows("SELECT COUNT(*) FROM outbox WHERE kind = 'confirmation_code'")[0][0],
        "tool": d.rows("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (demo.delivered_order,))[0][0],
    }


def calls(d: Deployment, effect: str) -> list[tuple[str, dict[str, Any]]]:
    """The agent's calls up to the one whose effect kills the server (the last)."""
    demo = d.demo
    order = {"order_id": demo.delivered_order, **REFUND}
    return {
        "handoff": [("issue_refund", {**order, "amount": "600.00"})],
        "approval": [("issue_refund", {**order, "amount": "60.00"})],
        "customer_code": [("verify_identity", {"customer_id": demo.account_admin, "method": "postcode",
                                               "value": "20095"}),
                          ("cancel_subscription", {"subscription_id": demo.subscription_id,
                                                   "requester_id": demo.account_admin, "reason_code": "not_using"})],
        "tool": [("issue_refund", {**order, "amount": "10.00"}), ("issue_refund", {**order, "amount": "10.00"})],
    }[effect]


@pytest.mark.parametrize("effect", ["handoff", "approval", "customer_code", "tool"])
async def test_a_kill_right_after_a_side_effect_leaves_an_intent_record_of_it(deployment: Deployment,
                                                                             effect: str) -> None:
    """The server dies the moment the effect is done: `audit verify` passes, and every effect that exists
    has an intent record naming it, by the session that caused it; the call itself has no other record."""
    before = effects(deployment)
    port = free_port()
    python = CLI[0]
    proc = subprocess.Popen([python, "-m", "tests.e2e.die_after", effect, "serve", "--transport", "http",
                             "--port", str(port), "--dev"], cwd=ROOT, env=server_env(deployment, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    token = deployment.token("billing-agent", sub="doomed")
    try:
        await _wait_until_up(base, proc)
        *first, (tool, args) = calls(deployment, effect)
        answered: list[dict[str, Any]] = []
        with anyio.fail_after(60):
            try:
                async with http_client(base, token, "auto") as client:
                    extra: dict[str, Any] = {}
                    for earlier_tool, earlier_args in first:  # a preview or a verification: the server lives
                        earlier = await call(client, earlier_tool, **earlier_args)
                        extra = {"confirmation_token": earlier["confirmation_token"]} if earlier.get(
                            "confirmation_token") else {}
                    answered.append(await call(client, tool, **args, **extra))
            except (httpx2.TransportError, RuntimeError, ExceptionGroup):
                pass  # the server died under the call: that is the point
        assert answered == []
        assert proc.wait(timeout=30) == -9  # SIGKILL, right after the effect
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)

    verify = await anyio.run_process([*CLI, "audit", "verify"], env=server_env(deployment), check=False)
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    happened = effects(deployment)[effect] - before[effect]
    assert happened == 1
    records = [r for r in deployment.audit_records() if r.get("sub") == "doomed"]
    intents = [r for r in records if r["kind"] == "intent" and r.get("effect", "tool") == effect]
    assert len(intents) >= happened and all(r["tool"] == tool for r in intents)
    killed = intents[-1]["request_id"]
    assert [r["kind"] for r in records if r.get("request_id") == killed] == ["intent"] * len(
        [r for r in records if r.get("request_id") == killed])
