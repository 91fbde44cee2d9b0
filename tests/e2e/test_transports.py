"""The server as a separate process: over stdio and over Streamable HTTP on loopback, both protocol eras."""

from __future__ import annotations

import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from deskgate.config import packaged
from deskgate.scopes.tokens import TokenIssuer
from deskgate.server.mcp_app import build_mcp_server, fixed_credential
from deskgate.server.policy_source import PolicyTexts
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from tests.e2e.conftest import CLI, Deployment, _wait_until_up, call, free_port, server_env

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def http_client(base: str, token: str, mode: str) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), mode=mode) as client:
        yield client


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_http_serves_both_protocol_eras_with_a_bearer_token(deployment: Deployment, http_server: str,
                                                                   mode: str) -> None:
    """A real client over HTTP lists the session's tools and calls one, in the 2026 and the handshake era."""
    async with http_client(http_server, deployment.token("tier1-agent"), mode) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "get_order" in names and "issue_refund" not in names
        result = await call(client, "get_order", order_id=deployment.demo.delivered_order)
        assert result["status"] == "ok"
        note = await call(client, "add_ticket_note", ticket_id=deployment.demo.pii_ticket, body=f"via http {mode}")
        assert note["status"] == "ok"
    assert deployment.rows("SELECT body FROM ticket_notes WHERE body = ?", (f"via http {mode}",))


async def test_http_refuses_missing_invalid_revoked_and_query_string_tokens(deployment: Deployment,
                                                                            http_server: str) -> None:
    """401 with WWW-Authenticate for a missing, forged or revoked token; 400 for a token in the URL."""
    token = deployment.token("tier1-agent", sub="revokee")
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx2.AsyncClient(timeout=30) as http:
        for auth in (None, "Bearer " + token[:-4] + "AAAA", "Basic dXNlcjpwYXNz"):
            response = await http.post(f"{http_server}/mcp", json=body,
                                       headers={**headers, **({"Authorization": auth} if auth else {})})
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
        in_url = await http.post(f"{http_server}/mcp?access_token={token}", json=body, headers=headers)
        assert in_url.status_code == 400
        deployment.runtime.state.tokens.revoke_sync("sub", "revokee", "test", int(time.time()))
        revoked = await http.post(f"{http_server}/mcp", json=body,
                                  headers={**headers, "Authorization": f"Bearer {token}"})
        assert revoked.status_code == 401
        assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
    codes = [r.get("code") for r in deployment.audit_records() if r.get("kind") == "call"
             and r.get("stage") == "authenticate"]
    assert "revoked" in codes  # the why is audited, never told to the caller


async def test_stdio_serves_with_the_token_from_the_environment(deployment: Deployment) -> None:
    """Over stdio the token comes from DESKGATE_TOKEN; tools are listed and called for that session."""
    params = StdioServerParameters(command=CLI[0], args=[*CLI[1:], "serve", "--transport", "stdio", "--dev"],
                                   env=server_env(deployment, DESKGATE_TOKEN=deployment.token("tier1-agent")))
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "issue_refund" not in names and "get_ticket" in names
        result = await call(client, "get_ticket", ticket_id=deployment.demo.pii_ticket)
        assert result["status"] == "ok"


async def test_stdio_refuses_to_start_without_a_valid_token(deployment: Deployment) -> None:
    """No token, or an invalid one, stops the stdio server before it reads a message."""
    for token in ("", "not-a-token"):
        done = await anyio.run_process([*CLI, "serve", "--transport", "stdio", "--dev"], input=b"",
                                       env=server_env(deployment, DESKGATE_TOKEN=token), check=False)
        assert done.returncode != 0
        assert b"DESKGATE_TOKEN" in done.stderr


async def test_with_bind_manifest_a_token_from_before_a_tool_change_stops_working(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tokens.bind_manifest: a token carrying another manifest hash is refused; the current one works."""
    home.mkdir(parents=True)
    (home / "deskgate.toml").write_text("[tokens]\nbind_manifest = true\n")
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    runtime = Runtime.open(Paths(home))
    try:
        scopes = runtime.roles.scopes_of("tier1-agent")
        current, _ = runtime.issuer.issue("a", scopes, 600, manifest_hash=runtime.manifest["manifest_hash"])
        stale, _ = runtime.issuer.issue("a", scopes, 600, manifest_hash="0" * 64)
        unbound, _ = runtime.issuer.issue("a", scopes, 600)
        for token, expected in ((current, "ok"), (stale, "denied"), (unbound, "denied")):
            server = build_mcp_server(runtime.chain, fixed_credential(runtime.authenticator, token))
            async with Client(server) as client:
                result = await call(client, "get_policy")
                assert result["status"] == expected, result
    finally:
        await runtime.aclose()


async def test_with_bind_manifest_a_policy_reload_retires_the_tokens_of_the_manifest_it_replaced(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload publishes another manifest: the one authentication path checks the manifest served now, so a
    token bound to the one before stops working on the next call, and one issued for the new one works."""
    from deskgate.server.manifest import lock

    home.mkdir(parents=True)
    (home / "deskgate.toml").write_text("[tokens]\nbind_manifest = true\n")
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    runtime = Runtime.open(Paths(home))
    try:
        scopes = runtime.roles.scopes_of("billing-agent")
        before, _ = runtime.issuer.issue("a", scopes, 600, manifest_hash=runtime.manifest["manifest_hash"])
        shipped = packaged("policy.toml").read_text(encoding="utf-8")
        (home / "policy.toml").write_text(shipped.replace('ttl = "2m"', 'ttl = "1m"', 1))
        lock.pin(runtime.serve_policy(PolicyTexts.of(runtime.paths)).manifest, runtime.paths.manifest_lock)
        published = runtime.reload_policy("test")
        after, _ = runtime.issuer.issue("a", scopes, 600, manifest_hash=published.manifest_hash)
        for token, expected in ((before, ("denied", "manifest_changed")), (after, ("ok", None))):
            server = build_mcp_server(runtime.chain, fixed_credential(runtime.authenticator, token))
            async with Client(server) as client:
                result = await call(client, "get_policy")
                assert (result["status"], result.get("code")) == expected, result
    finally:
        await runtime.aclose()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # reads the file log's checkpoint file
async def test_sigterm_shuts_the_http_server_down_with_a_signed_shutdown_checkpoint(deployment: Deployment) -> None:
    """A terminated server drains its audit log and signs the head before it exits (exit code 0)."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"],
                            env=server_env(deployment), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await _wait_until_up(f"http://127.0.0.1:{port}", proc)
        async with http_client(f"http://127.0.0.1:{port}", deployment.token("tier1-agent"), "auto") as client:
            assert (await call(client, "get_policy"))["status"] == "ok"
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    assert code == 0
    checkpoints = (deployment.home / "audit" / "checkpoints.jsonl").read_text().splitlines()
    assert '"shutdown"' in checkpoints[-1]


async def test_a_server_start_is_audited_and_says_when_the_policy_changed(deployment: Deployment,
                                                                         tmp_path: Path) -> None:
    """Each start records the policy version and manifest hash it serves, and what changed since the last."""
    runtime = deployment.runtime
    runtime.announce_start("http")
    stricter = tmp_path / "policy.toml"
    stricter.write_text(packaged("policy.toml").read_text().replace(
        '{ above = "50.00", tier = "assist" }', '{ above = "20.00", tier = "assist" }', 1))
    runtime.wire(policy_path=stricter)
    runtime.announce_start("stdio")
    starts = [r for r in deployment.audit_records() if r.get("action") == "server.started"]
    assert [s["transport"] for s in starts] == ["http", "stdio"]
    assert "changed" not in starts[0]
    assert set(starts[1]["changed"]) == {"policy_version", "manifest_hash"}
    assert starts[1]["changed"]["policy_version"]["to"] == starts[1]["policy_version"] != starts[0]["policy_version"]


async def test_an_oversized_http_request_body_is_refused_before_it_reaches_the_chain(
        deployment: Deployment, http_server: str) -> None:
    """A body above server.max_request_bytes gets 413 and changes nothing."""
    token = deployment.token("tier1-agent")
    notes = deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0]
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "add_ticket_note", "arguments": {"ticket_id": deployment.demo.pii_ticket,
                                                                "body": "x" * 400_000}}}
    async with httpx2.AsyncClient(timeout=30) as http:
        response = await http.post(f"{http_server}/mcp", json=body, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json", "MCP-Protocol-Version": "2025-11-25"})
    assert response.status_code == 413
    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes")[0][0] == notes


def expired_token(d: Deployment, role: str = "tier1-agent") -> str:
    """A real token, signed an hour ago for ten minutes (the issuer's clock, not a sleep)."""
    runtime = d.runtime
    issuer = TokenIssuer(runtime.keys, runtime.state.tokens, runtime.settings.tokens, clock=lambda: time.time() - 3600)
    token, _ = issuer.issue("agent-past", runtime.roles.scopes_of(role), 600)
    return token


async def test_a_refused_token_is_told_why_expired_revoked_or_malformed_and_never_echoed(
        deployment: Deployment, http_server: str) -> None:
    """RFC 6750: 401 with error="invalid_token" and error_description expired / revoked / malformed."""
    revoked = deployment.token("tier1-agent", sub="revokee")
    deployment.runtime.state.tokens.revoke_sync("sub", "revokee", "test", int(time.time()))
    good = deployment.token("tier1-agent")
    forged = good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB")
    cases = [("expired", expired_token(deployment)), ("revoked", revoked), ("malformed", "not.a-token"),
             ("malformed", forged)]  # a bad signature is told no more than "malformed"
    async with httpx2.AsyncClient(timeout=30) as http:
        for told, token in cases:
            response = await http.post(f"{http_server}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                                "Accept": "application/json, text/event-stream"})
            assert response.status_code == 401
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer error="invalid_token", ')
            assert f'error_description="{told}"' in challenge
            assert f'resource_metadata="{http_server}/.well-known/oauth-protected-resource/mcp"' in challenge
            assert response.json() == {"error": "invalid_token", "error_description": told}
            assert token not in challenge and token not in response.text
            for part in token.split("."):
                assert len(part) < 8 or part not in challenge + response.text
        missing = await http.post(f"{http_server}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                  headers={"Content-Type": "application/json"})
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_server_info_names_the_package_version_in_both_protocol_eras(deployment: Deployment, http_server: str,
                                                                         mode: str) -> None:
    """serverInfo.version is deskgate's own version, never empty (initialize, and the 2026-era stamp)."""
    async with http_client(http_server, deployment.token("tier1-agent"), mode) as client:
        await client.list_tools()
        assert client.server_info is not None
        assert (client.server_info.name, client.server_info.version) == ("deskgate", version("deskgate"))
        assert version("deskgate")
