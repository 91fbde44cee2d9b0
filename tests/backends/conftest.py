"""Real external systems for the adapters, started here: localstripe (a stateful Stripe emulator from
PyPI) and django-helpdesk (the minimal project in tests/helpdesk_site, on SQLite, `runserver`).

localstripe binds every interface (it has no host option); the tests only ever send it loopback
traffic. One emulator and one helpdesk serve the whole session; each deployment seeds its own
Stripe customers and helpdesk tickets, so tests never see each other's objects by id.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
import stripe

from deskgate.tools.backend.helpdesk_seed import helpdesk_ids, seed_helpdesk
from deskgate.tools.backend.stripe_seed import seed_stripe, stripe_ids
from tests.backends.systems import (
    STRIPE_KEY,
    Helpdesk,
    LocalStripe,
    helpdesk_settings,
    start_helpdesk,
    start_localstripe,
    stripe_settings,
)
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Deployment, deployed

home = e2e.home  # the e2e state-directory fixture, shared


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with start_localstripe(tmp_path_factory.mktemp("localstripe")) as running:
        yield running


@pytest.fixture(scope="session")
def helpdesk(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Helpdesk]:
    """django-helpdesk on a fresh SQLite file: migrated, an API superuser's token, a support and a human queue.
    The migrated database is copied from a template kept in pytest's cache (when it runs), built once."""
    cache = getattr(pytestconfig, "cache", None)  # absent under `-p no:cacheprovider`: migrate in the session dir
    with start_helpdesk(tmp_path_factory.mktemp("helpdesk"), cache and cache.mkdir("helpdesk-site")) as running:
        yield running


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



# What a peer does with one request: None forwards it (and answers Stripe's answer); otherwise
# (status, headers, body) is answered instead. Called again after forwarding with the answer.
Fault = Callable[[str, str], tuple[int, dict[str, str], bytes] | None]


class Peer:
    """A real HTTP server on loopback between deskgate and localstripe, for faults the test chooses:
    answer 500 or 429, hang, or act on a request after Stripe answered it. Not a mock of deskgate."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.before: Fault = lambda method, path: None
        self.after: Callable[[str, str], bool] = lambda method, path: True  # False: drop the answer
        self.requests: list[tuple[str, str]] = []
        self.release = threading.Event()  # hanging requests end when the test ends
        peer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                peer.requests.append((self.command, self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                canned = peer.before(self.command, self.path)
                if canned is None:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                    answer = httpx2.request(self.command, peer.upstream + self.path, headers=headers, content=body,
                                            timeout=30)
                    if not peer.after(self.command, self.path):
                        return
                    canned = (answer.status_code, {"Content-Type": "application/json"}, answer.content)
                status, headers, content = canned
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # a cut-off client
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def hang(self) -> None:
        self.release.wait(60)


@pytest.fixture
def peer(localstripe: LocalStripe) -> Iterator[Peer]:
    faulty = Peer(localstripe.url)
    thread = threading.Thread(target=faulty.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield faulty
    finally:
        faulty.release.set()
        faulty.server.shutdown()
        faulty.server.server_close()


@asynccontextmanager
async def through(home: Path, localstripe: LocalStripe, peer: Peer, **settings: object) -> AsyncIterator[
        StripeDeployment]:
    """The demo with billing on Stripe reached through `peer` (seeded straight into localstripe)."""
    async with deployed(home, None, stripe_settings(peer.url, **settings)) as deployment:
        seed_stripe(localstripe.client(), deployment.runtime.backend_db)
        yield StripeDeployment(deployment, localstripe.client(), stripe_ids(deployment.runtime.backend_db))


@dataclass
class HelpdeskDeployment:
    deployment: Deployment
    helpdesk: Helpdesk
    ids: dict[str, str]  # demo ticket id -> helpdesk ticket id

    def ticket(self, ticket_id: str) -> dict[str, object]:
        with self.helpdesk.http() as http:
            answer: dict[str, object] = http.get(f"tickets/{ticket_id}/").json()
            return answer


@pytest.fixture
async def on_helpdesk(home: Path, helpdesk: Helpdesk, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[
        HelpdeskDeployment]:
    """The demo with tickets on django-helpdesk, seeded as `init --helpdesk` does."""
    monkeypatch.setenv("HELPDESK_TOKEN", helpdesk.token)
    async with deployed(home, None, helpdesk_settings(helpdesk)) as deployment:
        seed_helpdesk(helpdesk.url, helpdesk.token, helpdesk.queue, deployment.runtime.backend_db)
        yield HelpdeskDeployment(deployment, helpdesk, helpdesk_ids(deployment.runtime.backend_db))
