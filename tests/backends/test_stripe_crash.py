"""The server dies after Stripe refunded and before deskgate recorded it; restarted, the retry refunds nothing more.

A loopback peer between the server process and localstripe passes every request on; when Stripe has
answered the refund request, it SIGKILLs the server before the answer reaches it. The server is
started again, and the agent repeats its call (same token, same idempotency key).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import anyio
import httpx2
import pytest

from deskgate.server.store.state import CounterAdd
from deskgate.tools.backend.kinds import Intent
from deskgate.tools.backend.ledger import IntentLedger
from tests.backends.conftest import LocalStripe, Peer, StripeDeployment, through
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
async def test_a_crash_between_the_stripe_refund_and_its_record_never_refunds_twice(
        home: Path, localstripe: LocalStripe, stripe_env: None, peer: Peer) -> None:
    async with through(home, localstripe, peer) as on_stripe:
        deployment = on_stripe.deployment
        env = server_env(deployment, STRIPE_API_KEY="sk_test_deskgate_contract")
        token = deployment.token("billing-agent")
        args = {"order_id": "O-1", "amount": "20.00", "reason_code": "damaged_item",
                "idempotency_key": "refund-o1-crash-test"}
        port = free_port()
        server = _serve(env, port)
        killed = threading.Event()

        def kill_after_refund(method: str, path: str) -> bool:
            if method == "POST" and path.startswith("/v1/refunds") and not killed.is_set():
                server.send_signal(signal.SIGKILL)  # Stripe acted; deskgate never hears it
                killed.set()
                return False
            return True

        peer.after = kill_after_refund
        base = f"http://127.0.0.1:{port}"
        await _wait_until_up(base, server)
        async with http_client(base, token, "auto") as client:
            first = (await client.call_tool("issue_refund", args)).structured_content or {}
        assert first["status"] == "confirmation_required", first
        confirmed = {**args, "confirmation_token": first["confirmation_token"]}
        with anyio.fail_after(60):
            try:
                async with http_client(base, token, "auto") as client:
                    unexpected = await client.call_tool("issue_refund", confirmed)
                raise AssertionError(f"the server answered: {unexpected.structured_content}")
            except (httpx2.TransportError, RuntimeError, ExceptionGroup, anyio.BrokenResourceError):
                pass  # the server died under the call, as intended
        assert killed.wait(20)
        assert server.wait(timeout=20) == -signal.SIGKILL
        assert len(on_stripe.refunds_of("O-1")) == 1

        port = free_port()
        server = _serve(env, port)
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_until_up(base, server)
            async with http_client(base, token, "auto") as client:
                retry = (await client.call_tool("issue_refund", confirmed)).structured_content or {}
        finally:
            server.terminate()
            server.wait(timeout=20)

        [refund] = on_stripe.refunds_of("O-1")
        assert retry["status"] == "ok", retry
        assert retry["data"]["refund_id"] == refund.id and refund.amount == 2000
        records = deployment.audit_records()
        [intent] = [r for r in records if r.get("kind") == "intent" and r.get("tool") == "issue_refund"]
        outcomes = [r for r in records
                    if r.get("kind") == "outcome" and r.get("request_id") == intent["request_id"]]
        assert [(o["status"], o.get("recovered")) for o in outcomes] == [("ok", True)]
        assert outcomes[0]["money"] == {"amount": "20.00", "tool": "issue_refund", "currency": "EUR"}
        assert refund.metadata.to_dict()["deskgate_request"] == intent["request_id"]
        verify = await anyio.run_process([*CLI, "audit", "verify"], env=env, check=False)
        assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()


async def test_at_start_up_an_intent_stripe_never_saw_is_recorded_as_not_executed(on_stripe: StripeDeployment) -> None:
    """A process that died before its request reached Stripe: recovery finds nothing by the intent's metadata,
    records the outcome `not_executed`, refunds nothing, and gives back what the dead call had reserved on
    the limits and money counters (the refund it counted never happened)."""
    d = on_stripe.deployment
    counts = [CounterAdd("spend:sid-lost", 0, 2000, None), CounterAdd("breaker:money:EUR", 0, 2000, None),
              CounterAdd("rate:issue_refund:customer:86400:C-1", 0, 1, 6)]
    assert await d.runtime.state.reservations.reserve("req-lost", counts, 1) == (None, (2000, 2000, 1))
    ledger = IntentLedger(d.runtime.backend_db)
    await ledger.start(Intent(key="lost-intent-" + "1" * 52, request_id="req-lost", seq=3), "issue_refund", "O-1",
                       "stripe", 1)
    [seq] = d.runtime.recover_intents()
    [record] = [r for r in d.audit_records() if r.get("seq") == seq]
    assert (record["kind"], record["request_id"], record["status"], record["code"], record["recovered"]) == (
        "outcome", "req-lost", "error", "not_executed", True)
    assert on_stripe.refunds_of("O-1") == []
    assert await ledger.unsettled("stripe") == []
    assert d.runtime.recover_intents() == []  # settled once
    assert not await d.runtime.state.reservations.held("req-lost")
    assert [await d.runtime.state.counters.get(c.key, 0) for c in counts] == [0, 0, 0]
