"""Scale-out: several `deskgate serve` processes on one PostgreSQL database behave as one server.

Each test starts three `deskgate serve --transport http` processes on their own loopback ports,
sharing one DESKGATE_HOME (the signing and audit keys) and one fresh PostgreSQL schema, and talks
to them through real MCP clients over Streamable HTTP, spreading its calls over the processes.
After the run the servers are stopped and `deskgate audit verify` must pass on the single chain
they all appended to. PostgreSQL only: skipped when DESKGATE_TEST_DATABASE_URL is not set.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from deskgate.config import packaged
from tests.e2e.conftest import PG_URL, Deployment, call
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env
from tests.people.logins import login_as

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="scale-out needs PostgreSQL: set DESKGATE_TEST_DATABASE_URL"),
    # Only the PostgreSQL deployment: processes share state through the database, not a file.
    pytest.mark.parametrize("engine", ["postgresql"], indirect=True),
]
PROCESSES = 3
STOP_TIMEOUT = 30


@asynccontextmanager
async def cluster(d: Deployment, size: int = PROCESSES) -> AsyncIterator[list[str]]:
    """`size` server processes on one database and one home; yields their base URLs once all answer.

    On exit the processes are stopped with SIGTERM, as a supervisor stops a replica, and must exit
    cleanly (exit code 0: audit drained, head signed).
    """
    logs = [d.home.parent / f"server-{i}.log" for i in range(size)]
    procs: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for log in logs:
            port = free_port()
            with log.open("wb") as err:  # a file, not a pipe: nobody drains a pipe while the tests run
                # Popen returns at once; `_wait_until_up` (shared with the transport tests) polls a Popen.
                procs.append(subprocess.Popen(
                    [*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                    env=server_env(d), stdout=subprocess.DEVNULL, stderr=err))
            bases.append(f"http://127.0.0.1:{port}")
        try:
            async with anyio.create_task_group() as tg:
                for base, proc in zip(bases, procs, strict=True):
                    tg.start_soon(_wait_until_up, base, proc)
        except Exception as exc:
            raise RuntimeError("a server did not start:\n" + "\n".join(p.read_text() for p in logs)) from exc
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await anyio.to_thread.run_sync(lambda p=proc: p.wait(timeout=STOP_TIMEOUT))
    assert [p.returncode for p in procs] == [0] * size, "\n".join(log.read_text() for log in logs)


@asynccontextmanager
async def clients(bases: Sequence[str], token: str) -> AsyncIterator[list[Client]]:
    """One MCP client per process, all for the same session."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(http_client(base, token, "auto")) for base in bases]


async def spread(clients_: Sequence[Client], n: int, tool: str, arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """`n` concurrent calls of the same tool, call i on process i mod len(clients_)."""
    results: list[dict[str, Any]] = [{} for _ in range(n)]

    async def one(i: int) -> None:
        results[i] = await call(clients_[i % len(clients_)], tool, **arguments)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return results


async def cli(d: Deployment, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process([*CLI, *args], env=server_env(d), check=False)


async def assert_one_verified_chain(d: Deployment) -> dict[str, Any]:
    """`deskgate audit verify` passes on the shared table: seqs 1..N, no fork, no gap, head signed."""
    # The test's own runtime appends to the same chain; closing it signs the head of the whole table.
    await d.runtime.audit.aclose()
    done = await cli(d, "audit", "verify", "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], report["problems"]
    seqs = [r[0] for r in d.runtime.state_db.read_sync(lambda tx: tx.query("SELECT seq FROM audit_log ORDER BY seq"))]
    assert seqs == list(range(1, len(seqs) + 1)) and report["last_seq"] == len(seqs) == report["records"]
    assert report["checkpoints"] >= 1 and report["unsigned"] == 0
    return report


def outcomes(results: list[dict[str, Any]]) -> Counter[tuple[str, str | None]]:
    return Counter((r["status"], r.get("code")) for r in results)


async def test_a_token_revoked_through_the_cli_is_refused_by_every_process_at_once(deployment: Deployment) -> None:
    """Each process has verified (and cached) the token; right after `token revoke` all three answer 401."""
    token, issued = deployment.runtime.issuer.issue("agent-revoked", deployment.runtime.roles.scopes_of("tier1-agent"),
                                                    1800)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "Authorization": f"Bearer {token}"}
    async with cluster(deployment) as bases:
        async with clients(bases, token) as per_process:
            for client in per_process:
                assert (await call(client, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
        revoked = await cli(deployment, "token", "revoke", "--session", issued.sid, "--reason", "scale-out test")
        assert revoked.returncode == 0, revoked.stderr
        async with httpx2.AsyncClient(timeout=30) as http:
            for base in bases:
                response = await http.post(f"{base}/mcp", json=body, headers=headers)
                assert response.status_code == 401
                assert 'error="invalid_token"' in response.headers["www-authenticate"]
    await assert_one_verified_chain(deployment)


async def test_fifty_concurrent_redemptions_of_one_confirmation_across_processes_refund_once(
        deployment: Deployment) -> None:
    """One preview, then 50 confirmed repeats at once over three processes: one refund, every other refused."""
    # A deployment policy with the refund rate limits lifted, so all 50 repeats reach the redemption race.
    shipped = packaged("policy.toml").read_text()
    lifted = shipped.replace('{ per = "session", max = 20, window = "1h" },',
                             '{ per = "session", max = 1000, window = "1h" },')
    lifted = lifted.replace('{ per = "customer", max = 6, window = "1d" },',
                            '{ per = "customer", max = 1000, window = "1d" },')
    assert lifted.count("max = 1000") == 2
    deployment.home.joinpath("policy.toml").write_text(lifted)
    order = deployment.demo.delivered_order
    arguments = {"order_id": order, "amount": "20.00", "reason_code": "damaged_item"}
    async with cluster(deployment) as bases, clients(bases, deployment.token("billing-agent")) as per_process:
        preview = await call(per_process[0], "issue_refund", **arguments)
        assert preview["status"] == "confirmation_required", preview
        results = await spread(per_process, 50, "issue_refund",
                               {**arguments, "confirmation_token": preview["confirmation_token"]})
    seen = outcomes(results)
    assert seen[("ok", None)] == 1, seen
    assert seen[("denied", "confirmation_replayed")] == 49, seen
    refunds = deployment.rows("SELECT amount_minor, actor FROM refunds WHERE order_id = ?", (order,))
    assert refunds == [(2000, "agent-1")]
    await assert_one_verified_chain(deployment)


async def test_one_idempotency_key_spread_over_processes_has_one_side_effect(deployment: Deployment) -> None:
    """15 concurrent calls with one key over three processes: one note; repeats see its result; other
    arguments under the same key are refused."""
    body = "Scale-out: called back, replacement confirmed."
    arguments = {"ticket_id": deployment.demo.pii_ticket, "body": body, "idempotency_key": "scale-out-note-0001"}
    async with cluster(deployment) as bases, clients(bases, deployment.token("tier1-agent")) as per_process:
        results = await spread(per_process, 15, "add_ticket_note", arguments)
        settled = [await call(client, "add_ticket_note", **arguments) for client in per_process]
        conflict = await call(per_process[1], "add_ticket_note", **{**arguments, "body": "something else"})
    assert set(outcomes(results)) <= {("ok", None), ("denied", "idempotency_in_progress")}, outcomes(results)
    notes = deployment.rows("SELECT id FROM ticket_notes WHERE body = ?", (body,))
    assert len(notes) == 1
    answered = [r["data"] for r in results + settled if r["status"] == "ok"]
    assert len(settled) == PROCESSES and all(r["status"] == "ok" for r in settled)
    assert all(data == answered[0] for data in answered)  # every process replays the one stored result
    assert (conflict["status"], conflict["code"]) == ("denied", "idempotency_conflict")
    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes WHERE body = ?", ("something else",)) == [(0,)]
    await assert_one_verified_chain(deployment)


async def test_the_money_breaker_holds_across_processes(deployment: Deployment) -> None:
    """70 concurrent 50.00 credits from 7 sessions over three processes: payouts stop at the hourly
    1500.00, the breaker trips once, and then every process sends money actions to an approver."""
    account, sessions, per_session, cents = deployment.demo.account_id, 7, 10, 5000
    arguments = {"account_id": account, "amount": "50.00", "reason_code": "goodwill"}
    credited = "SELECT COUNT(*) FROM account_credits WHERE account_id = ? AND actor LIKE 'breaker-%'"
    results: list[dict[str, Any]] = []
    async with cluster(deployment) as bases:

        async def session(n: int) -> None:
            async with clients(bases, deployment.token("billing-agent", sub=f"breaker-{n}")) as per_process:
                results.extend(await spread(per_process, per_session, "apply_account_credit", arguments))

        async with anyio.create_task_group() as tg:
            for n in range(sessions):
                tg.start_soon(session, n)
        async with clients(bases, deployment.token("billing-agent", sub="breaker-late")) as per_process:
            late = [await call(client, "apply_account_credit", **arguments) for client in per_process]
    seen = outcomes(results)
    assert set(seen) <= {("ok", None), ("pending_approval", "breaker_open")}, seen
    executed, held = seen[("ok", None)], seen[("pending_approval", "breaker_open")]
    assert held > 0 and executed + held == sessions * per_session
    assert all((r["status"], r.get("code")) == ("pending_approval", "breaker_open") for r in late)
    assert deployment.rows(credited, (account,)) == [(executed,)]
    # Exact whatever the clock: the hour in which it tripped holds exactly the limit, no hour more.
    windows = dict(deployment.runtime.state_db.read_sync(lambda tx: tx.query(
        "SELECT window_start, value FROM counters WHERE key = 'breaker:money:EUR'")))
    tripped_at = deployment.runtime.state_db.read_sync(lambda tx: tx.one(
        "SELECT tripped_at FROM breakers WHERE name = 'money'"))
    assert tripped_at is not None
    assert windows[tripped_at[0] - tripped_at[0] % 3600] == 150000
    assert all(value <= 150000 for value in windows.values()) and sum(windows.values()) == executed * cents
    report = await assert_one_verified_chain(deployment)
    trips = [e for r in deployment.audit_records() for e in r.get("decision", {}).get("events", [])
             if e.get("event") == "breaker_trip"]
    assert len(trips) == 1 and report["records"] > 70


async def test_an_approval_decided_while_the_agent_talks_to_another_process_runs_once(
        deployment: Deployment) -> None:
    """Asked on process 1, approved with the CLI, run on process 2, reported on process 3; a repeat
    after it ran asks for a new approval and pays nothing."""
    order = deployment.demo.delivered_order
    arguments = {"order_id": order, "amount": "80.00", "reason_code": "damaged_item"}
    async with cluster(deployment) as bases, clients(bases, deployment.token("billing-agent")) as per_process:
        asked = await call(per_process[0], "issue_refund", **arguments)
        assert asked["status"] == "pending_approval", asked
        approval_id = asked["approval_id"]
        waiting = await call(per_process[1], "issue_refund", **arguments)
        assert (waiting["status"], waiting["approval_id"]) == ("pending_approval", approval_id)
        login_as("supervisor-1")
        decided = await cli(deployment, "approvals", "approve", approval_id, "--yes")
        assert decided.returncode == 0, decided.stderr
        ran = await call(per_process[1], "issue_refund", **arguments)
        assert ran["status"] == "ok", ran
        status = await call(per_process[2], "get_action_status", action_id=approval_id)
        assert status["data"]["status"] == "done"
        again = await call(per_process[2], "issue_refund", **arguments)
        assert again["status"] == "pending_approval" and again["approval_id"] != approval_id
    assert deployment.rows("SELECT amount_minor FROM refunds WHERE order_id = ?", (order,)) == [(8000,)]
    await assert_one_verified_chain(deployment)
    admin = [r for r in deployment.audit_records() if r.get("action") == "approval.approve"]
    assert [(r["approval_id"], r["principal"]) for r in admin] == [(approval_id, "supervisor-1")]
