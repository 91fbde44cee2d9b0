"""When the audit log cannot be written, the chain fails closed: writes never run, reads follow the setting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mcp import Client

from deskgate.server.mcp_app import build_mcp_server, fixed_credential
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from deskgate.tools.backend.seed import DEMO, seed_demo
from tests.e2e.conftest import Deployment, call

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("engine", ["sqlite"], indirect=True)]


def break_audit_log(home: Path) -> None:
    """The audit directory disappears and a plain file takes its place: nothing can be appended."""
    shutil.rmtree(home / "audit")
    (home / "audit").write_text("not a directory")


async def test_without_an_audit_log_writes_do_not_run_and_reads_fail_closed(deployment: Deployment) -> None:
    """Default (audit.reads_fail_closed = true): both answer audit_unavailable; the note is never written."""
    token = deployment.token("tier1-agent")
    notes = deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0]
    break_audit_log(deployment.home)
    async with deployment.client(token) as client:
        write = await call(client, "add_ticket_note", ticket_id=deployment.demo.pii_ticket, body="unaudited")
        read = await call(client, "get_order", order_id=deployment.demo.delivered_order)
    assert (write["status"], write["code"]) == ("error", "audit_unavailable")
    assert "nothing was done" in write["reason"]
    assert (read["status"], read["code"]) == ("error", "audit_unavailable")
    assert "data" not in read
    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0] == notes


async def test_reads_may_be_answered_without_audit_when_configured_but_writes_never(
        engine: str | None, home: Path) -> None:
    """With audit.reads_fail_closed = false a read is answered (no audit_seq); a write still does not run."""
    home.mkdir(parents=True)
    (home / "deskgate.toml").write_text("[audit]\nreads_fail_closed = false\n")
    runtime = Runtime.open(Paths(home))
    try:
        seed_demo(runtime.backend_db, customers=10, seed=42)
        token, _ = runtime.issuer.issue("agent", runtime.roles.scopes_of("tier1-agent"), 600)
        notes = runtime.backend_db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM ticket_notes"))
        break_audit_log(home)
        async with Client(build_mcp_server(runtime.chain, fixed_credential(runtime.authenticator, token))) as client:
            read = await call(client, "get_order", order_id=DEMO.delivered_order)
            write = await call(client, "add_ticket_note", ticket_id=DEMO.pii_ticket, body="unaudited")
        assert read["status"] == "ok" and "audit_seq" not in read
        assert (write["status"], write["code"]) == ("error", "audit_unavailable")
        assert runtime.backend_db.read_sync(lambda tx: tx.one("SELECT COUNT(*) FROM ticket_notes")) == notes
    finally:
        await runtime.aclose()
