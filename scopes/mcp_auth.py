"""The bridge to the MCP SDK's bearer auth: `mcp.server.auth.provider.TokenVerifier` over ours.

The SDK answers 401 with `WWW-Authenticate: Bearer error="invalid_token"` whenever
`verify_token` returns None; it is told nothing more. Why a token was refused (its `code`) goes to
the audit sink, with a one-way fingerprint of the token - never the token itself.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from mcp.server.auth.provider import AccessToken
from pydantic import ConfigDict, Field

from deskgate.scopes.session import Session
from deskgate.scopes.tokens import TokenVerifier, token_fingerprint
from deskgate.server.errors import AuthenticationError, DeskgateError

__all__ = ["AuditSink", "McpTokenVerifier", "SessionAccessToken"]

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

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            session = await self._verifier.verify(token)
        except DeskgateError as exc:
            # A store that cannot answer the revocation question refuses too (fail closed).
            code = exc.code if isinstance(exc, AuthenticationError) else f"unverifiable:{exc.code}"
            await self._record_refusal(code, token)
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
