"""The MCP SDK adapter: our verifier behind the SDK's `TokenVerifier` protocol and bearer backend."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser, BearerAuthBackend, RequireAuthMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from deskgate.scopes.authenticator import Authenticator
from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.mcp_auth import McpTokenVerifier, RefusalReasons
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier, token_fingerprint
from deskgate.server.errors import AuditUnavailable
from deskgate.server.settings import Settings
from deskgate.server.store.state import StateStore


class RecordingAudit:
    """An audit sink that keeps what it is given (the real log's contract: `append` -> seq)."""

    def __init__(self, *, broken: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.broken = broken

    async def append(self, event: dict[str, Any]) -> int:
        if self.broken:
            raise AuditUnavailable("the audit log cannot be written")
        self.events.append(event)
        return len(self.events)


def bearer(token: str) -> HTTPConnection:
    return HTTPConnection({"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]})


@pytest.mark.anyio
async def test_a_valid_token_becomes_an_sdk_access_token(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """client_id, scopes, expiry, subject and the sid/jti claims reach the SDK."""
    token, record = issuer.issue("agent-7", ["orders:read", "notes:write"], 600, client_id="support-bot")
    access = await McpTokenVerifier(Authenticator(verifier, None)).verify_token(token)
    assert access is not None
    assert (access.client_id, access.subject, access.expires_at) == ("support-bot", "agent-7", record.expires_at)
    assert access.scopes == ["notes:write", "orders:read"]
    assert access.claims == {"sid": record.sid, "jti": record.jti}
    assert access.resource == "deskgate"


@pytest.mark.anyio
async def test_the_access_token_repr_never_shows_the_token(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Logging the SDK object (or an error around it) does not leak the bearer token."""
    token, _ = issuer.issue("agent-7", ["orders:read"], 600)
    access = await McpTokenVerifier(Authenticator(verifier, None)).verify_token(token)
    assert access is not None and access.token == token
    assert token not in repr(access) and token not in str(access)


@pytest.mark.anyio
async def test_a_refused_token_is_none_and_its_code_is_audited_without_the_token(
        verifier: TokenVerifier, forge: Callable[..., str]) -> None:
    """The SDK hears only "no"; the audit log hears why, with a fingerprint instead of the token."""
    audit = RecordingAudit()
    token = forge(claims={"aud": "someone-else"})
    assert await McpTokenVerifier(Authenticator(verifier, audit)).verify_token(token) is None
    (event,) = audit.events
    assert event["code"] == "wrong_audience" and event["status"] == "denied"
    assert event["token_fingerprint"] == token_fingerprint(token)
    assert token not in repr(event)


@pytest.mark.anyio
async def test_a_revoked_token_is_refused_through_the_sdk_bearer_backend(
        issuer: TokenIssuer, verifier: TokenVerifier, store: StateStore) -> None:
    """Through the SDK's own BearerAuthBackend: accepted while live, anonymous once revoked."""
    backend = BearerAuthBackend(McpTokenVerifier(Authenticator(verifier, None)))
    token, record = issuer.issue("agent-7", ["orders:read"], 600)
    credentials = await backend.authenticate(bearer(token))
    assert credentials is not None and isinstance(credentials[1], AuthenticatedUser)
    assert credentials[0].scopes == ["orders:read"]
    store.tokens.revoke_sync("jti", record.jti, "test", int(time.time()))
    assert await backend.authenticate(bearer(token)) is None


@pytest.mark.anyio
async def test_an_audit_failure_still_refuses_the_token(verifier: TokenVerifier, forge: Callable[..., str]) -> None:
    """If the refusal cannot be audited, the caller is still refused (nothing ran)."""
    adapter = McpTokenVerifier(Authenticator(verifier, RecordingAudit(broken=True)))
    assert await adapter.verify_token(forge(header={"alg": "none"}, signature=b"")) is None


@pytest.mark.anyio
async def test_an_unreachable_store_refuses_instead_of_skipping_revocation(
        issuer: TokenIssuer, verifier: TokenVerifier, store: StateStore) -> None:
    """Fail closed: when revocation cannot be checked, the token is not accepted."""
    audit = RecordingAudit()
    token, _ = issuer.issue("agent-7", ["orders:read"], 600)
    store.close()
    assert await McpTokenVerifier(Authenticator(verifier, audit)).verify_token(token) is None
    assert audit.events[0]["code"] == "unverifiable:store_unavailable"


def door(adapter: McpTokenVerifier) -> RefusalReasons:
    """The SDK's bearer stack (as `streamable_http_app` builds it) around a plain endpoint, inside ours."""

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("in")(scope, receive, send)

    app = Starlette(routes=[Route("/mcp", endpoint=RequireAuthMiddleware(endpoint, [], None))],
                    middleware=[Middleware(AuthenticationMiddleware, backend=BearerAuthBackend(adapter))])
    return RefusalReasons(app, "https://desk.example/.well-known/oauth-protected-resource/mcp")


async def knock(app: RefusalReasons, token: str) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://desk.example") as http:
        return await http.post("/mcp", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.anyio
async def test_an_unreachable_store_is_a_503_to_retry_not_a_401_to_give_up(
        issuer: TokenIssuer, verifier: TokenVerifier, store: StateStore) -> None:
    """The token may be fine: the client is told to retry, and is not told to throw its credential away."""
    token, _ = issuer.issue("agent-7", ["orders:read"], 600)
    app = door(McpTokenVerifier(Authenticator(verifier, RecordingAudit())))
    assert (await knock(app, token)).text == "in"
    store.close()
    response = await knock(app, token)
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert response.json()["error"] == "temporarily_unavailable" and "www-authenticate" not in response.headers


@pytest.mark.anyio
async def test_a_token_past_exp_but_within_the_leeway_is_told_expired(
        keys: SigningKeys, store: StateStore, verifier: TokenVerifier, settings: Settings) -> None:
    """Our verifier's leeway would accept it, the SDK refuses it: the answer says why, the same as ours would."""
    past = TokenIssuer(keys, store.tokens, settings.tokens, clock=lambda: time.time() - 610)
    token, _ = past.issue("agent-7", ["orders:read"], 600)  # expired 10 s ago: inside the 30 s leeway
    audit = RecordingAudit()
    response = await knock(door(McpTokenVerifier(Authenticator(verifier, audit))), token)
    assert response.status_code == 401
    assert 'error_description="expired"' in response.headers["www-authenticate"]
    assert audit.events[-1]["code"] == "expired"
