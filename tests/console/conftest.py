"""A served deskgate (`deskgate serve` in its own process, on loopback), its people, and HTTP helpers.

The test process holds the same deployment (the e2e fixtures): it enrols people in the shared state
store, and its agents call tools over real Streamable HTTP against the served process.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx2
import pytest
from mcp import Client

from deskgate.server.people.accounts import People, open_people
from deskgate.server.people.factors import totp_code
from tests.e2e import conftest as e2e
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_transports import http_client

# The e2e fixtures, shared: a seeded deployment per engine, and `deskgate serve` over HTTP on it.
home, engine, deployment, http_server = e2e.home, e2e.engine, e2e.deployment, e2e.http_server

REFUND = {"order_id": "O-1", "amount": "120.00", "reason_code": "damaged_item"}  # 50.01-500.00: an approver
CREDIT = {"account_id": "A-1", "amount": "300.00", "reason_code": "sla_breach"}  # above 250.00: two people


@dataclass
class Member:
    """A person and their factors, as they hold them: a password and an authenticator app."""

    name: str
    role: str
    password: str
    secret: str
    next_at: float = 0.0

    def code(self) -> str:
        """The next code this person's app shows (each login uses a newer 30 s step: codes are single-use)."""
        self.next_at = max(time.time(), self.next_at)
        code = totp_code(self.secret, self.next_at)
        self.next_at += 30
        return code


@pytest.fixture
def people(deployment: Deployment) -> People:
    return open_people(deployment.runtime.state_db, deployment.runtime.settings, deployment.runtime.paths)


@pytest.fixture
def member(people: People) -> Any:
    def enrol(name: str, role: str = "approver") -> Member:
        enrolment = people.add(name, role, now=int(time.time()))
        secret = parse_qs(urlparse(enrolment.totp_uri).query)["secret"][0]
        return Member(name, role, enrolment.password, secret)

    return enrol


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


async def log_in(http: httpx2.AsyncClient, base: str, who: Member, *, password: str | None = None,
                 code: str | None = None) -> httpx2.Response:
    """Open the login page (its CSRF cookie and field), post the factors; the answer is not followed."""
    page = await http.get(f"{base}/console/login")
    return await http.post(f"{base}/console/login", data={
        "csrf": form_token(page.text), "name": who.name, "password": password or who.password,
        "code": code or who.code()})


@asynccontextmanager
async def browser_client(base: str) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=base, timeout=30) as http:
        yield http


@asynccontextmanager
async def agent(base: str, d: Deployment, sub: str = "agent-1", role: str = "billing-agent") -> AsyncIterator[Client]:
    """An agent session over Streamable HTTP against the served process."""
    async with http_client(base, d.token(role, sub=sub), "auto") as client:
        yield client


async def pending_refund(client: Client) -> str:
    answer = await call(client, "issue_refund", **REFUND)
    assert answer["status"] == "pending_approval", answer
    return str(answer["approval_id"])


def set_cookies(response: httpx2.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def audit_actions(d: Deployment) -> list[dict[str, Any]]:
    return [r for r in d.audit_records() if r.get("kind") == "admin"]

