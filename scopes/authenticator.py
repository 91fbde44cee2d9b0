"""Stage 1 of the guard chain, for every transport: a presented credential -> `Session`, or a `Refusal`.

Each transport only finds its credential - HTTP the `Authorization: Bearer` header (through the MCP
SDK's bearer middleware, `scopes/mcp_auth.py`), stdio `DESKGATE_TOKEN` or `DESKGATE_TOKEN_FILE`
(`server/mcp_app.py`), in-memory clients the token they were built with - and hands it to
`Authenticator.admit`, which:

    1. refuses a missing credential                                           missing_token
    2. verifies the token (`TokenVerifier.verify`, revocation included)        its precise code
    3. refuses a token past `exp`, with no leeway (the MCP SDK's own rule)     expired
    4. with `tokens.bind_manifest`, refuses a token issued for other tools     manifest_changed
    5. audits every refusal with `refusal_record` - the one shape of an authentication refusal,
       whatever the transport - and answers it as a `Refusal`, never by raising

The guard chain takes what `admit` answered (`GuardChain.call(Session | Refusal, ...)`) and never
sees a token. A store that cannot answer the revocation question refuses too (fail closed), with
its own error: the token may be fine, so the caller is told to retry (`refusal_kind`: unverifiable).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from deskgate.scopes.session import Session
from deskgate.scopes.tokens import TokenVerifier, token_fingerprint
from deskgate.server.errors import AuthenticationError, DeskgateError

__all__ = ["Authenticator", "Refusal", "Transport", "refusal_kind", "refusal_record"]

Transport = Literal["http", "stdio", "memory"]
UNVERIFIABLE = "unverifiable"
# What a caller may be told about its refused credential; any other code is told "malformed".
_TOLD = ("expired", "revoked", "manifest_changed")

log = logging.getLogger("deskgate.auth")


class AuditSink(Protocol):
    async def append(self, event: dict[str, Any]) -> int: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """A credential that was refused, and audited where it was refused: `error` is what the caller hears."""

    error: DeskgateError

    @property
    def kind(self) -> str:
        return refusal_kind(self.error)


def refusal_kind(exc: DeskgateError) -> str:
    """What a caller may be told about a refused credential: expired, revoked, manifest_changed, malformed
    or unverifiable (the store did not answer: retry)."""
    if not isinstance(exc, AuthenticationError):
        return UNVERIFIABLE
    return exc.code if exc.code in _TOLD else "malformed"


def refusal_record(error: DeskgateError, token: str | None, transport: Transport) -> dict[str, Any]:
    """The audit record of an authentication refusal, the same for every transport: the precise code
    and a one-way fingerprint of the token - never the token itself."""
    code = error.code if isinstance(error, AuthenticationError) else f"{UNVERIFIABLE}:{error.code}"
    record: dict[str, Any] = {"kind": "call", "stage": "authenticate", "transport": transport,
                              "status": error.status.value, "code": code}
    if token:
        record["token_fingerprint"] = token_fingerprint(token)
    return record


class Authenticator:
    """The one authentication path (see the module docstring); fails closed on any error of ours."""

    def __init__(self, verifier: TokenVerifier, audit: AuditSink | None, *,
                 bound_to: Callable[[], Awaitable[str]] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.verifier = verifier
        self._audit = audit
        # tokens.bind_manifest: the manifest hash served now (a policy reload changes it), which tokens must carry
        self._bound_to = bound_to
        self._clock = clock

    async def admit(self, token: str | None, transport: Transport) -> Session | Refusal:
        try:
            if not token:
                raise AuthenticationError("a valid session token is required", code="missing_token")     # 1
            session = await self.verifier.verify(token)                                                  # 2
            if session.expires_at < int(self._clock()):                                                  # 3
                raise AuthenticationError("invalid token", code="expired")
            if self._bound_to is not None and session.manifest_hash != await self._bound_to():           # 4
                raise AuthenticationError("the tools changed since this token was issued", code="manifest_changed")
        except DeskgateError as exc:
            return await self.refuse(exc, token, transport)                                              # 5
        return session

    async def refuse(self, error: DeskgateError, token: str | None, transport: Transport) -> Refusal:
        """Audit a refused credential (`refusal_record`) and answer it. Also for a transport that could not
        even read its credential (stdio: an unreadable or exposed token file)."""
        if self._audit is not None:
            try:
                await self._audit.append(refusal_record(error, token, transport))
            except DeskgateError:
                # The caller is refused either way; nothing ran, so there is nothing to fail closed on.
                log.warning("could not audit a refused credential (%s)", error.code)
        return Refusal(error)
