"""Real external systems for the adapters: localstripe (a stateful Stripe emulator from PyPI), started here.

localstripe binds every interface (it has no host option); the tests only ever send it loopback
traffic. One emulator serves the whole session; each deployment seeds its own Stripe customers,
so tests never see each other's objects.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
import stripe

from deskgate.tools.backend.stripe_seed import seed_stripe, stripe_ids
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Deployment, deployed
from tests.e2e.test_transports import free_port

home = e2e.home  # the e2e state-directory fixture, shared
STRIPE_KEY = "sk_test_deskgate_contract"  # localstripe accepts any test-mode key


@dataclass(frozen=True)
class LocalStripe:
    url: str

    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": self.url}, max_network_retries=0)


def _wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    async def poll() -> None:
        with anyio.fail_after(30):
            async with httpx2.AsyncClient() as http:
                while proc.poll() is None:
                    try:
                        await http.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {STRIPE_KEY}"})
                        return
                    except httpx2.TransportError:
                        await anyio.sleep(0.1)  # readiness polling of a starting process, not synchronisation
        raise RuntimeError("localstripe exited")

    anyio.run(poll)


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    port = free_port()
    exe = Path(sys.executable).with_name("localstripe")
    proc = subprocess.Popen([str(exe), "--port", str(port), "--from-scratch"], cwd=tmp_path_factory.mktemp("ls"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, proc)
        yield LocalStripe(url)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def stripe_settings(url: str, **extra: object) -> str:
    lines = ["[backends.billing]", 'kind = "stripe"', f'api_base = "{url}"', 'api_key_env = "STRIPE_API_KEY"']
    lines += [f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@dataclass
class StripeDeployment:
    deployment: Deployment
    stripe: stripe.StripeClient
    ids: dict[str, str]  # demo id -> Stripe id (subscriptions, open invoice)

    def payment_of(self, order_id: str) -> str:
        rows = self.deployment.rows("SELECT reference FROM order_payments WHERE order_id = ?", (order_id,))
        return str(rows[0][0])

    def refunds_of(self, order_id: str) -> list[stripe.Refund]:
        page = self.stripe.v1.refunds.list(params={"payment_intent": self.payment_of(order_id), "limit": 100})
        return list(page.data)


@pytest.fixture
def stripe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_KEY)


@pytest.fixture
async def on_stripe(home: Path, localstripe: LocalStripe, stripe_env: None) -> AsyncIterator[StripeDeployment]:
    """The demo with billing on localstripe (SQLite state): seeded into Stripe as `init --stripe` does."""
    async with deployed(home, None, stripe_settings(localstripe.url)) as deployment:
        client = localstripe.client()
        seed_stripe(client, deployment.runtime.backend_db)
        yield StripeDeployment(deployment, client, stripe_ids(deployment.runtime.backend_db))

