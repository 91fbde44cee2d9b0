"""A server under concurrent write load, killed with SIGKILL again and again: nothing acknowledged is lost."""

from __future__ import annotations

import signal
import subprocess

import anyio
import httpx2
import pytest

from tests.e2e.conftest import Deployment
from tests.e2e.test_transports import CLI, _wait_until_up, free_port, http_client, server_env

pytestmark = pytest.mark.anyio

CYCLES = 5
WRITERS = 8
ACKS_BEFORE_KILL = 24


async def _load_then_kill(deployment: Deployment, cycle: int, acked: dict[int, str]) -> None:
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                            env=server_env(deployment), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        await _wait_until_up(base, proc)
        enough = anyio.Event()
        # One session per cycle: the policy's per-session note limit is not what this test is about.
        token = deployment.token("tier1-agent", sub="crash-writer")
        count = 0

        async def writer(n: int) -> None:
            nonlocal count
            async with http_client(base, token, "auto") as client:
                for i in range(1000):
                    body = f"crash-{cycle}-{n}-{i}"
                    result = await client.call_tool("add_ticket_note",
                                                    {"ticket_id": deployment.demo.pii_ticket, "body": body})
                    outcome = result.structured_content or {}
                    assert outcome.get("status") == "ok", outcome
                    acked[int(outcome["audit_seq"])] = body  # the client saw this answer
                    count += 1
                    if count >= ACKS_BEFORE_KILL:
                        enough.set()

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for n in range(WRITERS):
                    tg.start_soon(_swallow_disconnects, writer, n)
                await enough.wait()
                proc.send_signal(signal.SIGKILL)  # mid-load: other calls are in flight right now
                proc.wait(timeout=20)
                tg.cancel_scope.cancel()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)


async def _swallow_disconnects(writer: object, n: int) -> None:
    """A writer whose server died under it stops; only the answers it already received count."""
    try:
        await writer(n)  # type: ignore[operator]
    except (httpx2.TransportError, RuntimeError, ExceptionGroup, anyio.BrokenResourceError, anyio.ClosedResourceError):
        return


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the file log's crash safety is the point
async def test_sigkill_under_load_loses_no_acknowledged_call_and_the_chain_verifies(
        deployment: Deployment) -> None:
    """After every kill and restart the chain verifies and every answered call's record is in it."""
    acked: dict[int, str] = {}
    for cycle in range(CYCLES):
        await _load_then_kill(deployment, cycle, acked)
        verify = await anyio.run_process([*CLI, "audit", "verify"], env=server_env(deployment), check=False)
        assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
    assert len(acked) >= CYCLES * ACKS_BEFORE_KILL
    records = {r["seq"]: r for r in deployment.audit_records()}
    for seq in acked:
        record = records.get(seq)
        assert record is not None, f"acknowledged call {seq} is missing from the audit log"
        assert (record["kind"], record["tool"], record["status"]) == ("outcome", "add_ticket_note", "ok")
    notes = {row[0] for row in deployment.rows("SELECT body FROM ticket_notes")}
    assert set(acked.values()) <= notes
