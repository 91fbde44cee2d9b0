"""Long stdio sessions: DESKGATE_TOKEN_FILE is read again when it changes, and a dead credential says so.

Every test drives `deskgate serve --transport stdio` through the MCP SDK's stdio client, as Claude
Desktop launches it; the admin's side (issuing, revoking, rotating the file) happens meanwhile.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from tests.e2e.conftest import Deployment, call
from tests.e2e.test_transports import CLI, expired_token, server_env

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("engine", ["sqlite"], indirect=True)]


def write_token(path: Path, token: str, *, replace: bool = True) -> None:
    """As an admin or a platform would: a new file renamed over the old one, or the same file rewritten."""
    if replace:
        fresh = path.with_suffix(".new")
        fresh.write_text(token + "\n")
        fresh.chmod(0o600)
        os.replace(fresh, path)
    else:
        path.write_text(token + "\n")


def stdio(d: Deployment, **env: str) -> StdioServerParameters:
    return StdioServerParameters(command=CLI[0], args=[*CLI[1:], "serve", "--transport", "stdio", "--dev"],
                                 env=server_env(d, **env))


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools()).tools}


async def refusal(client: Client) -> tuple[str, dict[str, object]]:
    """What tools/list and tools/call answer for a dead credential: the error message and the denial."""
    with pytest.raises(MCPError) as listed:
        await client.list_tools()
    denied = await call(client, "get_policy")
    assert denied["status"] == "denied"
    assert denied["reason"] == listed.value.message  # the same cause and fix, whichever request comes
    return listed.value.message, denied


async def test_a_rotated_token_file_is_read_again_without_a_restart(deployment: Deployment, tmp_path: Path) -> None:
    """Renamed over or rewritten in place, the new token is the session of the very next request."""
    path = tmp_path / "token"
    write_token(path, deployment.token("tier1-agent"))
    async with Client(stdio(deployment, DESKGATE_TOKEN_FILE=str(path))) as client:
        assert "issue_refund" not in await tool_names(client)
        write_token(path, deployment.token("billing-agent"))
        assert "issue_refund" in await tool_names(client)
        assert (await call(client, "get_policy"))["status"] == "ok"
        write_token(path, deployment.token("tier1-agent", sub="agent-rewritten"), replace=False)
        assert "issue_refund" not in await tool_names(client)


async def test_a_dead_credential_answers_every_request_with_its_cause_and_fix_never_an_empty_list(
        deployment: Deployment, tmp_path: Path) -> None:
    """Revoked, expired, malformed, unreadable or exposed: tools/list is an error and tools/call is denied,
    each naming the cause, the file and the fix; a new token in the file makes the same process work again."""
    path = tmp_path / "token"
    write_token(path, deployment.token("tier1-agent", sub="agent-long"))
    async with Client(stdio(deployment, DESKGATE_TOKEN_FILE=str(path))) as client:
        assert "get_order" in await tool_names(client)

        deployment.runtime.state.tokens.revoke_sync("sub", "agent-long", "test", int(time.time()))
        message, denied = await refusal(client)
        assert "was revoked" in message and str(path) in message and "no restart needed" in message
        assert denied["code"] == "revoked"

        write_token(path, expired := expired_token(deployment))
        message, denied = await refusal(client)
        assert "has expired" in message and "deskgate token issue" in message and denied["code"] == "expired"
        assert expired not in message

        write_token(path, "not-a-token")
        message, _ = await refusal(client)
        assert "is not a valid deskgate session token" in message and "not-a-token" not in message

        path.unlink()
        message, _ = await refusal(client)
        assert "cannot be read" in message and str(path) in message

        write_token(path, deployment.token("tier1-agent"))
        path.chmod(0o644)
        message, denied = await refusal(client)
        assert f"chmod 600 {path}" in message and denied["code"] == "token_file_exposed"

        path.chmod(0o600)
        assert "get_order" in await tool_names(client)
        assert (await call(client, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
    codes = [r.get("code") for r in deployment.audit_records() if r.get("stage") == "authenticate"]
    assert {"revoked", "expired", "malformed"} <= set(codes)  # refusals are audited, with their precise code


async def test_with_deskgate_token_a_revoked_credential_says_to_restart_or_use_a_token_file(
        deployment: Deployment) -> None:
    """The environment cannot change under a running process: the fix says so."""
    token = deployment.token("tier1-agent", sub="agent-env")
    async with Client(stdio(deployment, DESKGATE_TOKEN=token)) as client:
        assert "get_order" in await tool_names(client)
        deployment.runtime.state.tokens.revoke_sync("sub", "agent-env", "test", int(time.time()))
        message, _ = await refusal(client)
        assert re.search(r"in DESKGATE_TOKEN was revoked.*restart.*DESKGATE_TOKEN_FILE", message)
        assert token not in message


async def test_stdio_refuses_to_start_on_a_token_file_others_can_read_or_with_two_token_sources(
        deployment: Deployment, tmp_path: Path) -> None:
    """A token file readable by others, or both DESKGATE_TOKEN and DESKGATE_TOKEN_FILE: no start."""
    path = tmp_path / "token"
    write_token(path, deployment.token("tier1-agent"))
    path.chmod(0o640)
    for env, expected in (({"DESKGATE_TOKEN_FILE": str(path)}, b"chmod 600"),
                          ({"DESKGATE_TOKEN_FILE": str(path), "DESKGATE_TOKEN": deployment.token("tier1-agent")},
                           b"not both")):
        done = await anyio.run_process([*CLI, "serve", "--transport", "stdio", "--dev"], input=b"",
                                       env=server_env(deployment, **env), check=False)
        assert done.returncode != 0
        assert expected in done.stderr
