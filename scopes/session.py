"""The verified identity of one agent session: what a token proved, and nothing else.

Built only by token verification (`deskgate.scopes.tokens`); every later stage of the guard chain
reads it and none changes it. It holds no raw token, so it is safe to log or repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Session:
    sub: str                        # the agent (or person) the admin issued the token to
    sid: str                        # the session id: one per agent conversation
    jti: str                        # this token's id (revocable, listed by `token list`)
    client_id: str
    scopes: frozenset[str]
    expires_at: int                 # unix seconds
    issued_at: int
    customer: str | None = None     # binding: only this customer's objects
    ticket: str | None = None       # binding: only this ticket (and its customer)
    max_refund: Decimal | None = None  # total the session may pay out (refunds + credits)
    manifest_hash: str | None = None
    kid: str | None = field(default=None, compare=False)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
