"""The door: verifying the transport's credential before any MCP message is read.

`McpTokenVerifier.admit` is the one check of a transport credential (HTTP bearer tokens through
the SDK's `TokenVerifier` protocol, and the stdio token): our verifier, then the SDK's own rule that
a session ends at `exp`. Every refusal goes to the audit sink with its precise `code` and a one-way
fingerprint of the token - never the token itself.

The SDK answers 401 with a generic `WWW-Authenticate` whenever `verify_token` returns None.
`RefusalReasons` (ASGI, around the HTTP app) makes that answer say why, per RFC 6750 §3:
`error="invalid_token"` with `error_description` one of `expired`, `revoked` or `malformed` (every
other refusal: a forged, foreign or damaged token gets no more detail than that). A token that could
not be checked because the state store did not answer is a 503, not a 401: the client should retry,
not throw its credential away. The token is never echoed.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any, Protocol

from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deskgate.scopes.session import Session
from deskgate.scopes.tokens import TokenVerifier, token_fingerprint
from deskgate.server.errors import AuthenticationError, DeskgateError

__all__ = ["AuditSink", "McpTokenVerifier", "RefusalReasons", "SessionAccessToken", "refusal_kind"]

UNVERIFIABLE = "unverifiable"
_TOLD = ("expired", "revoked")
# What this request's token was refused for, filled by `verify_token`, read by `RefusalReasons`.
_refusal: ContextVar[list[str] | None] = ContextVar("deskgate_token_refusal", default=None)


def refusal_kind(exc: DeskgateError) -> str:
    """What a caller may be told about a refused credential: expired, revoked, malformed or unverifiable."""
    if not isinstance(exc, AuthenticationError):
        return UNVERIFIABLE
    return exc.code if exc.code in _TOLD else "malformed"

log = logging.getLogger("deskgate.auth")


class AuditSink(Protocol):
    async def append(self, event: dict[str, Any]) -> int: ...


class SessionAccessToken(AccessToken):
    """The SDK's `AccessToken`, whose repr leaves the raw token out.

    It also carries the `Session` this request's token was just verified as (revocation included),
    so the guard chain's stage 1 does not verify the same token twice in one request.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    token: str = Field(repr=False)
    session: Session | None = Field(default=None, repr=False, exclude=True)


class McpTokenVerifier:
    """Implements the SDK's `TokenVerifier` protocol; fails closed on any error of ours."""

    def __init__(self, verifier: TokenVerifier, audit: AuditSink | None = None) -> None:
        self._verifier = verifier
        self._audit = audit

    async def admit(self, token: str) -> Session:
        """The session `token` proves, or the `DeskgateError` that refused it (audited first).

        A store that cannot answer the revocation question refuses too (fail closed), with its own
        error rather than an `AuthenticationError`.
        """
        try:
            session = await self._verifier.verify(token)
            if session.expires_at < int(time.time()):  # the SDK's rule too: no leeway past `exp` here
                raise AuthenticationError("invalid token", code="expired")
        except DeskgateError as exc:
            code = exc.code if isinstance(exc, AuthenticationError) else f"{UNVERIFIABLE}:{exc.code}"
            await self._record_refusal(code, token)
            raise
        return session

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            session = await self.admit(token)
        except DeskgateError as exc:
            told = _refusal.get()
            if told is not None:
                told.append(refusal_kind(exc))
            return None
        return SessionAccessToken(
            token=token,  # the SDK needs it; it is never logged or repr'd by us
            client_id=session.client_id,
            scopes=sorted(session.scopes),
            expires_at=session.expires_at,
            resource=self._verifier.audience,
            subject=session.sub,
            claims={"sid": session.sid, "jti": session.jti},
            session=session,
        )

    async def _record_refusal(self, code: str, token: str) -> None:
        if self._audit is None:
            return
        try:
            await self._audit.append({"kind": "call", "stage": "authenticate", "decision": "denied",
                                      "code": code, "token_fingerprint": token_fingerprint(token)})
        except DeskgateError:
            # The caller is refused either way; nothing ran, so there is nothing to fail closed on.
            log.warning("could not audit a refused token (%s)", code)


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
