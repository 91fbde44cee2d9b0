"""`deskgate policy reload` and SIGHUP: a pinned policy reaches every server process, without a restart.

Two `deskgate serve --transport http` processes share one state store - a SQLite home, or one
PostgreSQL database - and real MCP clients talk to both. A reload of a policy that is not pinned, or
not valid, changes nothing on either; a pinned one is applied by both from their next call, and the
audit log records the policy version that decided each call.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from deskgate.config import packaged
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio

SHIPPED = packaged("policy.toml").read_text(encoding="utf-8")
REFUND_OFF = SHIPPED.replace("[tools.issue_refund]\n", "[tools.issue_refund]\nenabled = false\n", 1)
STOP_TIMEOUT = 30


@asynccontextmanager
async def servers(d: Deployment, size: int = 2) -> AsyncIterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """`size` server processes on the deployment's home and store; stopped (exit 0) at the end."""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    logs = [d.home.parent / f"server-{i}.log" for i in range(size)]
    try:
        for log in logs:
            port = free_port()
            with log.open("wb") as err:
                procs.append((f"http://127.0.0.1:{port}", subprocess.Popen(
                    [*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                    env=server_env(d), stdout=subprocess.DEVNULL, stderr=err)))
        for base, proc in procs:
            await _wait_until_up(base, proc)
        yield procs
    finally:
        for _, proc in procs:
            proc.terminate()
        for _, proc in procs:
            await anyio.to_thread.run_sync(lambda p=proc: p.wait(timeout=STOP_TIMEOUT))
    assert [p.returncode for _, p in procs] == [0] * size, "\n".join(log.read_text() for log in logs)


async def cli(d: Deployment, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process([*CLI, *args], env=server_env(d), check=False)


async def seen_by_each(procs: list[tuple[str, Any]], token: str) -> list[tuple[bool, dict[str, Any]]]:
    """Per process: is issue_refund listed, and what does a call of it answer."""
    answers = []
    for base, _ in procs:
        async with http_client(base, token, "auto") as client:
            listed = "issue_refund" in {t.name for t in (await client.list_tools()).tools}
            result = await call(client, "issue_refund", order_id="O-1", amount="10.00", reason_code="damaged_item")
        answers.append((listed, result))
    return answers


def write_policy(home: Path, text: str) -> None:
    (home / "policy.toml").write_text(text)


async def test_a_pinned_policy_reaches_every_process_and_an_unpinned_or_invalid_one_changes_nothing(
        deployment: Deployment) -> None:
    d = deployment
    token = d.token("billing-agent")
    async with servers(d) as procs:
        before = await seen_by_each(procs, token)
        assert [listed for listed, _ in before] == [True, True]
        assert {r["status"] for _, r in before} == {"confirmation_required"}

        # 1. Not pinned: refused with the diff; nothing changes anywhere.
        write_policy(d.home, REFUND_OFF)
        refused = await cli(d, "policy", "reload")
        assert refused.returncode == 1, refused.stderr
        assert b"issue_refund" in refused.stderr and b"tool_removed" in refused.stderr
        assert [listed for listed, _ in await seen_by_each(procs, token)] == [True, True]

        # 2. Invalid: refused naming the file and line; nothing changes anywhere.
        write_policy(d.home, REFUND_OFF.replace("[tools.issue_refund]\n", "[tools.issue_refund]\nenabeld = false\n"))
        invalid = await cli(d, "policy", "reload")
        assert invalid.returncode == 2 and b"policy.toml:" in invalid.stderr and b"enabeld" in invalid.stderr
        assert [listed for listed, _ in await seen_by_each(procs, token)] == [True, True]

        # 3. Pinned: both processes apply it on their next call; the tool answers like an unknown one.
        write_policy(d.home, REFUND_OFF)
        assert (await cli(d, "manifest", "pin", "--yes")).returncode == 0
        done = await cli(d, "policy", "reload", "--json")
        assert done.returncode == 0, done.stderr
        after = await seen_by_each(procs, token)
        assert [listed for listed, _ in after] == [False, False]
        assert {(r["status"], r["code"]) for _, r in after} == {("denied", "unknown_tool")}

    records = d.audit_records()
    reloads = [r for r in records if r.get("action", "").startswith("policy.reload")]
    assert [r["action"] for r in reloads] == ["policy.reload_refused", "policy.reload_refused", "policy.reloaded"]
    published = reloads[-1]["policy_version"]
    calls = [r for r in records if r.get("tool") == "issue_refund" and r.get("kind") in ("call", "outcome")]
    assert {r["policy_version"] for r in calls[-2:]} == {published}
    assert published not in {r["policy_version"] for r in calls[:-2]}


async def test_sighup_to_one_server_reloads_the_policy_on_every_process(deployment: Deployment) -> None:
    d = deployment
    token = d.token("billing-agent")
    async with servers(d) as procs:
        write_policy(d.home, REFUND_OFF)
        assert (await cli(d, "manifest", "pin", "--yes")).returncode == 0
        procs[0][1].send_signal(signal.SIGHUP)
        with anyio.fail_after(30):  # the signal is handled on the server's own time: wait for its record
            while True:
                if any(r.get("action") == "policy.reloaded" for r in d.audit_records()):
                    break
                await anyio.sleep(0.1)  # polling another process's progress, not synchronisation
        assert [listed for listed, _ in await seen_by_each(procs, token)] == [False, False]


async def test_a_server_started_after_a_reload_serves_the_published_policy(deployment: Deployment) -> None:
    """The published policy is the deployment's: a new process serves it even if its home's file differs."""
    d = deployment
    write_policy(d.home, REFUND_OFF)
    assert (await cli(d, "manifest", "pin", "--yes")).returncode == 0
    assert (await cli(d, "policy", "reload")).returncode == 0
    (d.home / "policy.toml").unlink()  # this home's file now says: the shipped policy
    async with servers(d, size=1) as procs:
        assert [listed for listed, _ in await seen_by_each(procs, d.token("billing-agent"))] == [False]


async def test_a_process_that_cannot_build_the_published_policy_refuses_calls(deployment: Deployment) -> None:
    """A published row this process cannot serve (another catalogue, damage): fail closed, never the old policy."""
    from deskgate.server.policy_source import PUBLISHED_HASH

    d = deployment
    d.runtime.state.meta.set_sync(PUBLISHED_HASH, "0" * 64)
    async with d.client(d.token("billing-agent")) as client:
        result = await call(client, "get_policy")
    assert (result["status"], result["code"]) == ("error", "policy_unavailable")
