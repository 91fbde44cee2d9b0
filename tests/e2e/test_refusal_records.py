"""One authentication path: every transport's refused credential is audited once, in one record shape.

With `tokens.bind_manifest` on, the same two refusals - a revoked token, and a token issued for other
tools - are made over Streamable HTTP (`deskgate serve` in its own process), over stdio (another
process, its token file rotated under it) and in memory; the audit log must hold the same record for
each, whichever transport refused it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from deskgate.scopes.tokens import token_fingerprint
from tests.e2e.conftest import CLI, Deployment, call, deployed, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("engine", ["sqlite"], indirect=True)]
REFUSALS = ("revoked", "manifest_changed")
ENVELOPE = {"seq", "ts", "prev", "hash"}  # what the log adds to every record


@pytest.fixture
async def deployment(home: Path, engine: str | None) -> AsyncIterator[Deployment]:
    """conftest's deployment, with tokens bound to the manifest they were issued under."""
    async with deployed(home, engine, "[tokens]\nbind_manifest = true\n") as deployment:
        yield deployment


def bound_token(d: Deployment, sub: str, manifest_hash: str | None = None) -> str:
    runtime = d.runtime
    token, _ = runtime.issuer.issue(sub, runtime.roles.scopes_of("tier1-agent"), 600,
                                    manifest_hash=manifest_hash or runtime.manifest["manifest_hash"])
    return token


def write_token(path: Path, token: str) -> None:
    fresh = path.with_suffix(".new")
    fresh.write_text(token + "\n")
    fresh.chmod(0o600)
    fresh.replace(path)


def refusal_records(d: Deployment) -> list[dict[str, Any]]:
    return [r for r in d.audit_records() if r.get("code") in REFUSALS]


async def test_a_refused_credential_is_audited_once_in_the_same_record_on_every_transport(
        deployment: Deployment, http_server: str, tmp_path: Path) -> None:
    """Revoked, or issued for other tools: over HTTP (an honest 401), over stdio (tools/list names the cause)
    and in memory (the call is denied), each refusal is one record with the same fields - only the
    transport and the code tell them apart - with the token's fingerprint, never the token."""
    revoked = bound_token(deployment, "revokee")
    deployment.runtime.state.tokens.revoke_sync("sub", "revokee", "test", int(time.time()))
    stale = bound_token(deployment, "agent-stale", manifest_hash="0" * 64)
    tokens = {"revoked": revoked, "manifest_changed": stale}

    async with httpx2.AsyncClient(timeout=30) as http:
        for told, token in tokens.items():
            response = await http.post(f"{http_server}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                       headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                                                "Accept": "application/json, text/event-stream"})
            assert response.status_code == 401
            assert f'error_description="{told}"' in response.headers["www-authenticate"]

    path = tmp_path / "token"
    write_token(path, bound_token(deployment, "agent-stdio"))
    params = StdioServerParameters(command=CLI[0], args=[*CLI[1:], "serve", "--transport", "stdio", "--dev"],
                                   env=server_env(deployment, DESKGATE_TOKEN_FILE=str(path)))
    async with Client(params) as client:
        assert (await client.list_tools()).tools
        for cause, token in (("was revoked", revoked), ("was issued before the tools changed", stale)):
            write_token(path, token)
            with pytest.raises(MCPError) as refused:
                await client.list_tools()
            assert cause in refused.value.message and token not in refused.value.message

    for code, token in tokens.items():
        async with deployment.client(token) as client:
            denied = await call(client, "get_policy")
            assert (denied["status"], denied["code"]) == ("denied", code)

    records = refusal_records(deployment)
    assert sorted((r["transport"], r["code"]) for r in records) == sorted(
        (transport, code) for transport in ("http", "stdio", "memory") for code in REFUSALS)
    assert {frozenset(r) - ENVELOPE for r in records} == {
        frozenset({"kind", "stage", "transport", "status", "code", "token_fingerprint"})}
    for record in records:
        assert (record["kind"], record["stage"], record["status"]) == ("call", "authenticate", "denied")
        assert record["token_fingerprint"] == token_fingerprint(tokens[record["code"]])
        assert not any(token in json.dumps(record) for token in tokens.values())
