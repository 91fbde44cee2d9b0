"""Issue 4's scenarios, driven as an agent drives deskgate: a real MCP client against a real runtime.

Every scenario runs on SQLite and on PostgreSQL (the `deployment` fixture) and checks its real side
effects in the support backend. The guard chain runs on a `Clock` the test holds, so rate-limit
windows, the breaker's hour, confirmation expiry and undo windows move only when a test says so:
no scenario depends on when it runs. Approvers and admins act through the real CLI
(`deskgate approvals ...`, `deskgate breakers reset`), as people do.

This module holds the scenario helpers (imported by `test_scenarios_*.py`) and the scenarios that
cut across tools: identity before sensitive changes, undo, and the audit trail of every decision.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from deskgate.config import packaged
from deskgate.server.chain import ChainSettings, GuardChain
from deskgate.server.cli import app as cli
from deskgate.server.manifest.sources import build_served_manifest
from deskgate.server.policy.approvals import Approvals
from deskgate.server.policy.model import load_policy
from deskgate.server.policy_stage import PolicyStage
from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

Args = dict[str, Any]
Result = dict[str, Any]


class Clock:
    """The guard chain's clock: frozen at a real instant, moved only by `advance`."""

    def __init__(self) -> None:
        # Near the real time, because the approval CLI decides on the real clock.
        self.now = int(time.time())

    def __call__(self) -> float:
        return float(self.now)

    def advance(self, seconds: int) -> None:
        self.now += seconds


def policy_file(directory: Path, *edits: tuple[str, str]) -> Path:
    """The shipped policy with text edits (each `old` must occur exactly once), written to `directory`."""
    text = packaged("policy.toml").read_text(encoding="utf-8")
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = directory / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


# Concurrency scenarios: the shipped refund limits (6 a day per customer) would answer most of 50
# simultaneous calls with rate_limited before they reach the stage under test.
NO_REFUND_LIMITS = ('limits = [\n    { per = "session", max = 20, window = "1h" },   # every attempt counts, previews '
                    'and refusals too\n    { per = "customer", max = 6, window = "1d" },\n]',
                    'limits = [{ per = "session", max = 1000, window = "1h" }]')


def on_clock(d: Deployment, policy_path: Path | None = None) -> Clock:
    """Serve `d` through a chain wired as `Runtime.open` wires it, on a test clock (and maybe another policy)."""
    rt, clock = d.runtime, Clock()
    policy = load_policy(rt.catalogue, policy_path) if policy_path else rt.policy
    manifest_hash = build_served_manifest(rt.catalogue, policy, rt.roles)["manifest_hash"]
    stage = PolicyStage(policy, catalogue=rt.catalogue, state=rt.state, approvals=Approvals(rt.state_db),
                        keys=rt.keys, issuer=rt.settings.tokens.issuer, manifest_hash=manifest_hash)
    rt.chain = GuardChain(
        verifier=rt.verifier, catalogue=rt.catalogue, backend=rt.backend, state=rt.state, policy=stage,
        redactor=rt.redactor, audit=rt.audit, clock=clock,
        settings=ChainSettings(max_argument_bytes=rt.settings.server.max_argument_bytes,
                               reads_fail_closed=rt.settings.audit.reads_fail_closed, manifest_hash=manifest_hash))
    return clock


async def confirmed(client: Any, tool: str, **arguments: Any) -> Result:
    """An agent's irreversible action: call, show the preview, repeat the same call with the token."""
    first = await call(client, tool, **arguments)
    assert first["status"] == "confirmation_required", first
    return await call(client, tool, **arguments, confirmation_token=first["confirmation_token"])


async def together(n: int, attempt: Callable[[], Awaitable[Result]]) -> list[Result]:
    """Run `attempt` n times at once and collect every answer."""
    results: list[Result] = []

    async def one() -> None:
        results.append(await attempt())

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return results


def deskgate(*argv: str) -> Any:
    """Run the admin CLI (DESKGATE_HOME and the database URL come from the test's environment)."""
    return CliRunner().invoke(cli, list(argv))


def refunds(d: Deployment, order_id: str | None = None) -> list[tuple[Any, ...]]:
    if order_id is None:
        return d.rows("SELECT id, order_id, amount_minor FROM refunds ORDER BY LENGTH(id), id")
    return d.rows("SELECT id, order_id, amount_minor FROM refunds WHERE order_id = ?"
                  " ORDER BY LENGTH(id), id", (order_id,))


def customer_code(d: Deployment, email: str) -> str:
    """The one-time code the customer reads back from the latest confirmation email to `email`."""
    bodies = d.rows("SELECT body FROM outbox WHERE kind = 'confirmation_code' AND to_address = ?"
                   " ORDER BY LENGTH(id), id",
                    (email,))
    assert bodies, f"no confirmation code was sent to {email}"
    match = re.search(r"read this code to the agent: (\d{6})", bodies[-1][0])
    assert match is not None
    return match.group(1)


def records_of(d: Deployment, request_kind: str = "call", **match: Any) -> list[dict[str, Any]]:
    """Audit records of `request_kind` whose fields equal `match`."""
    return [r for r in d.audit_records()
            if r.get("kind") == request_kind and all(r.get(k) == v for k, v in match.items())]


async def test_probe(deployment: Deployment, tmp_path: Path) -> None:
    """probe."""
    on_clock(deployment, policy_file(tmp_path, ('per_hour = "1500.00"', 'per_hour = "60.00"')))
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent", max_refund="30.00")) as client:
        args = {"order_id": demo.delivered_order, "amount": "10.00", "reason_code": "damaged_item"}
        first = await call(client, "issue_refund", **args)
        print(first)
        ok = await call(client, "issue_refund", **args, confirmation_token=first["confirmation_token"])
        print(ok)
        for _ in range(2):
            print(await call(client, "issue_refund", **args, confirmation_token=first["confirmation_token"]))
        print(await call(client, "issue_refund", **{**args, "amount": "10.01"}))
