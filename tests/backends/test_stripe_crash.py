"""The server dies after Stripe refunded and before deskgate recorded it; restarted, the retry refunds nothing more.

A loopback proxy between the server process and localstripe passes every request on; when the refund
request has been answered by Stripe, it SIGKILLs the server before the answer reaches it. The
server is started again, and the agent repeats its call (same token, same idempotency key).
"""

from __future__ import annotations

import http.server
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from deskgate.tools.backend.stripe_seed import seed_stripe, stripe_ids
from tests.backends.conftest import LocalStripe, StripeDeployment, stripe_settings
from tests.e2e.conftest import deployed
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio


class KillAfterRefund:
    """A forwarding proxy on loopback that kills `victim` once Stripe has answered a refund request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.victim: subprocess.Popen[bytes] | None = None
        self.killed = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                answer = httpx2.request(self.command, proxy.upstream + self.path, headers=headers, content=body,
                                        timeout=30)
                if self.command == "POST" and self.path.startswith("/v1/refunds") and proxy.victim is not None \
                        and not proxy.killed.is_set():
                    proxy.victim.send_signal(signal.SIGKILL)  # Stripe acted; deskgate never hears it
                    proxy.killed.set()
                    return
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_DELETE = _forward

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def running(proxy: KillAfterRefund) -> Iterator[KillAfterRefund]:
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()


def _serve(deployment_env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                            env=deployment_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
async def test_a_crash_between_the_stripe_refund_and_its_record_never_refunds_twice(
        home: Path, localstripe: LocalStripe, stripe_env: None) -> None:
    with running(KillAfterRefund(localstripe.url)) as proxy:
        async with deployed(home, None, stripe_settings(proxy.url)) as deployment:
            seed_stripe(localstripe.client(), deployment.runtime.backend_db)
            on_stripe = StripeDeployment(deployment, localstripe.client(), stripe_ids(deployment.runtime.backend_db))
            env = server_env(deployment, STRIPE_API_KEY="sk_test_deskgate_contract")
            token = deployment.token("billing-agent")
            args = {"order_id": "O-1", "amount": "20.00", "reason_code": "damaged_item",
                    "idempotency_key": "refund-o1-crash-test"}

            port = free_port()
            server = _serve(env, port)
            proxy.victim = server
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
            assert proxy.killed.wait(20)
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
