"""Webhooks end to end: `deskgate serve` with `[[webhooks]]`, a real receiver on loopback, real agents.

Every event type arrives, signed as documented and without raw PII; a receiver that hangs holds up
no tool call; one that comes back gets what waited for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from deskgate.server.people.accounts import open_people
from tests.console.conftest import Member, browser_client, form_token, log_in
from tests.e2e.conftest import Deployment, call, deployed
from tests.e2e.test_scenarios import confirmed, policy_file
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio
SECRET = "whsec-test-0123456789abcdef"
EVENTS = ["approval.pending", "approval.decided", "handoff.created", "breaker.tripped", "audit.verify_failed"]


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 that records each POST; `hold` makes it wait before answering."""

    port: int
    got: queue.Queue[tuple[dict[str, str], bytes]] = field(default_factory=queue.Queue)
    hold: threading.Event = field(default_factory=threading.Event)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.hold.wait(60)
                receiver.got.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return

        return Handler

    def next(self, timeout: float = 30) -> tuple[dict[str, str], dict[str, Any]]:
        headers, body = self.got.get(timeout=timeout)
        verify(headers["deskgate-signature"], body)
        return headers, json.loads(body)


def verify(header: str, body: bytes) -> None:
    """The documented recipe: t and v1 from the header, HMAC-SHA256 of "<t>.<raw body>", recent t."""
    parts = dict(item.split("=", 1) for item in header.split(","))
    expected = hmac.new(SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"]) and abs(time.time() - int(parts["t"])) < 300


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver(free_port())
    made.hold.set()
    server = ThreadingHTTPServer(("127.0.0.1", made.port), made.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    made.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def hooked(home: Path, engine: str | None, receiver: Receiver) -> AsyncIterator[tuple[Deployment, str]]:
    """A deployment whose deskgate.toml posts every event to the receiver; served in its own process."""
    overrides = (f'[[webhooks]]\nurl = "http://127.0.0.1:{receiver.port}/hook"\nevents = {json.dumps(EVENTS)}\n'
                 'secret_env = "DESKGATE_WEBHOOK_SECRET"\n')
    async with deployed(home, engine, overrides) as d:
        policy_file(home, ('per_hour = "1500.00"', 'per_hour = "60.00"'))  # the server's own policy.toml
        port = free_port()
        proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                                env=server_env(d, DESKGATE_WEBHOOK_SECRET=SECRET), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        base = f"http://127.0.0.1:{port}"
        try:
            await _wait_until_up(base, proc)
            yield d, base
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def enrol(d: Deployment, name: str) -> Member:
    people = open_people(d.runtime.state_db, d.runtime.settings, d.runtime.paths)
    enrolment = people.add(name, "approver", now=int(time.time()))
    return Member(name, "approver", enrolment.password, enrolment.totp_uri.split("secret=")[1].split("&")[0])


async def test_every_event_type_arrives_signed_in_words_and_without_pii(hooked: tuple[Deployment, str],
                                                                        receiver: Receiver) -> None:
    d, base = hooked
    anna = enrol(d, "anna")
    async with http_client(base, d.token("billing-agent", sub="agent-a"), "auto") as agent:
        assert (await confirmed(agent, "issue_refund", order_id="O-1", amount="40.00",
                                reason_code="damaged_item"))["status"] == "ok"
        trip = await call(agent, "issue_refund", order_id="O-3", amount="30.00", reason_code="damaged_item")
        assert (trip["status"], trip["code"]) == ("pending_approval", "breaker_open")
        handoff = await call(agent, "escalate_to_human", customer_id="C-1", summary="Customer disputes a charge",
                             tried="Looked up the order", proposed_action="Review the charge", priority="high")
        assert handoff["status"] == "ok", handoff
    async with browser_client(base) as http:
        await log_in(http, base, anna)
        page = await http.get("/console/approvals")
        decided = await http.post(f"/console/approvals/{trip['approval_id']}",
                                  data={"csrf": form_token(page.text), "action": "approve"})
        assert decided.status_code == 303
    got = {body["event"]: (headers, body) for headers, body in (receiver.next() for _ in range(4))}
    assert set(got) == {"approval.pending", "breaker.tripped", "handoff.created", "approval.decided"}
    pending = got["approval.pending"][1]
    assert pending["object"]["approval_id"] == trip["approval_id"] and pending["object"]["order_id"] == "O-3"
    assert pending["link"] == f"{base}/console/approvals#{trip['approval_id']}"
    assert pending["text"].startswith("Approval needed: issue_refund 30.00") and base in pending["text"]
    assert got["approval.decided"][1]["object"]["decided_by"] == "anna"
    for _, body in got.values():
        assert {"event", "id", "created", "object", "link", "text"} <= set(body)
        assert "@" not in json.dumps(body)  # no e-mail address, no name: ids and words only

    tamper(d)
    verified = await anyio.run_process([*CLI, "audit", "verify"], env=server_env(d), check=False)
    assert verified.returncode == 1, verified.stdout
    headers, failed = receiver.next()
    assert failed["event"] == "audit.verify_failed" and "does not match its hash" in failed["object"]["problem"]
    assert headers["content-type"] == "application/json"


def tamper(d: Deployment) -> None:
    """Change an early record's amount in place, as an intruder would: same length, the hash no longer matches."""
    if d.database_url:
        d.runtime.state_db.write_sync(lambda tx: tx.execute(
            "UPDATE audit_log SET record = REPLACE(record, '40.00', '49.00') WHERE seq = ("
            "SELECT MIN(seq) FROM audit_log WHERE record LIKE '%40.00%')"))
        return
    path = sorted((d.home / "audit").glob("*.jsonl"))[0]
    text = path.read_text()
    path.write_text(text.replace('"amount":"40.00"', '"amount":"49.00"', 1))


async def test_a_receiver_that_hangs_holds_up_no_call_and_gets_its_events_when_it_answers(
        hooked: tuple[Deployment, str], receiver: Receiver) -> None:
    """While the receiver holds its first request unanswered, agents keep getting answers; then it is delivered."""
    d, base = hooked
    receiver.hold.clear()
    async with http_client(base, d.token("billing-agent", sub="agent-a"), "auto") as agent:
        first = await call(agent, "issue_refund", order_id="O-1", amount="120.00", reason_code="damaged_item")
        assert first["status"] == "pending_approval"
        with anyio.fail_after(60):  # a deadlock guard, not a timing assertion
            for _ in range(5):
                assert (await call(agent, "get_order", order_id="O-1"))["status"] == "ok"
            second = await call(agent, "issue_refund", order_id="O-2", amount="110.00", reason_code="damaged_item")
            assert second["status"] == "pending_approval"
        assert receiver.got.empty()
    receiver.hold.set()
    ids = {receiver.next()[1]["object"]["approval_id"] for _ in range(2)}
    assert ids == {first["approval_id"], second["approval_id"]}


async def test_a_stdio_server_sends_webhooks_too(home: Path, engine: str | None, receiver: Receiver) -> None:
    """An agent platform that spawns `deskgate serve --transport stdio` still tells approvers that a call
    waits for them: the approval.pending event arrives, signed, from the stdio process."""
    overrides = (f'[[webhooks]]\nurl = "http://127.0.0.1:{receiver.port}/hook"\nevents = ["approval.pending"]\n'
                 'secret_env = "DESKGATE_WEBHOOK_SECRET"\n')
    async with deployed(home, engine, overrides) as d:
        params = StdioServerParameters(
            command=CLI[0], args=[*CLI[1:], "serve", "--transport", "stdio", "--dev"],
            env=server_env(d, DESKGATE_WEBHOOK_SECRET=SECRET,
                           DESKGATE_TOKEN=d.token("billing-agent", sub="agent-s")))
        async with Client(params) as agent:
            pending = await call(agent, "issue_refund", order_id="O-1", amount="120.00", reason_code="damaged_item")
            assert pending["status"] == "pending_approval", pending
            _, body = receiver.next()
    assert body["event"] == "approval.pending" and body["object"]["approval_id"] == pending["approval_id"]
