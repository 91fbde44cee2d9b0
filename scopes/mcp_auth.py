"""The HTTP door: the MCP SDK's bearer middleware asks `Authenticator.admit` before any MCP message is read.

`McpTokenVerifier` implements the SDK's `TokenVerifier` protocol over the one `Authenticator`
(`scopes/authenticator.py`, which audits every refusal). The SDK answers 401 with a generic
`WWW-Authenticate` whenever `verify_token` returns None. `RefusalReasons` (ASGI, around the HTTP
app) makes that answer say why, per RFC 6750 §3: `error="invalid_token"` with `error_description`
one of `expired`, `revoked`, `manifest_changed` or `malformed` (every other refusal: a forged,
foreign or damaged token gets no more detail than that). A token that could not be checked because
the state store did not answer is a 503, not a 401: the client should retry, not throw its
credential away. The token is never echoed.
"""

from __future__ import annotations

import json
from contextvars import ContextVar

from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskgate.scopes.authenticator import UNVERIFIABLE, Authenticator, Refusal
from deskgate.scopes.session import Session

__all__ = ["McpTokenVerifier", "RefusalReasons", "SessionAccessToken"]

# What this request's token was refused for, filled by `verify_token`, read by `RefusalReasons`.
_refusal: ContextVar[list[str] | None] = ContextVar("deskgate_token_refusal", default=None)


class SessionAccessToken(AccessToken):
    """The SDK's `AccessToken`, whose repr leaves the raw token out.

    It also carries the `Session` the `Authenticator` admitted this request's token as, which is what
    the guard chain receives for this request (`server/mcp_app.py`, `http_credential`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    token: str = Field(repr=False)
    session: Session | None = Field(default=None, repr=False, exclude=True)


class McpTokenVerifier:
    """Implements the SDK's `TokenVerifier` protocol: None for a refused token (audited by the authenticator)."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def verify_token(self, token: str) -> AccessToken | None:
        session = await self._authenticator.admit(token, "http")
        if isinstance(session, Refusal):
            told = _refusal.get()
            if told is not None:
                told.append(session.kind)
            return None
        return SessionAccessToken(
            token=token,  # the SDK needs it; it is never logged or repr'd by us
            client_id=session.client_id,
            scopes=sorted(session.scopes),
            expires_at=session.expires_at,
            resource=self._authenticator.verifier.audience,
            subject=session.sub,
            claims={"sid": session.sid, "jti": session.jti},
            session=session,
        )


class RefusalReasons:
    """Turns the SDK's generic 401 for a refused token into one that says why (see the module docstring).

    A request without a bearer token keeps the SDK's answer: there is nothing to explain.
    """

    def __init__(self, app: ASGIApp, resource_metadata_url: str) -> None:
        self.app = app
        self.resource_metadata_url = resource_metadata_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        told: list[str] = []
        replaced = False

        async def answer(message: Message) -> None:
            nonlocal replaced
            if message["type"] == "http.response.start" and message["status"] == 401 and told:
                replaced = True
                for part in self._response(told[-1]):
                    await send(part)
            elif not replaced:
                await send(message)

        reset = _refusal.set(told)
        try:
            await self.app(scope, receive, answer)
        finally:
            _refusal.reset(reset)

    def _response(self, kind: str) -> list[Message]:
        if kind == UNVERIFIABLE:
            status, headers = 503, [(b"retry-after", b"5")]
            body = {"error": "temporarily_unavailable", "error_description": "the token could not be checked; retry"}
        else:
            status, body = 401, {"error": "invalid_token", "error_description": kind}
            challenge = (f'Bearer error="invalid_token", error_description="{kind}", '
                         f'resource_metadata="{self.resource_metadata_url}"')
            headers = [(b"www-authenticate", challenge.encode("ascii"))]
        data = json.dumps(body).encode("ascii")
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode("ascii"))]
        return [{"type": "http.response.start", "status": status, "headers": headers},
                {"type": "http.response.body", "body": data}]
