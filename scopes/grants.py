"""What an authenticated platform client may ask `/oauth/token` for: scope, resource and session bindings.

Per-session bindings are requested as RFC 9396 `authorization_details`, with one type of our own:

    [{"type": "deskgate_session",
      "customer_id": "C-1042",     optional: the session reaches only this customer's objects
      "ticket_id": "T-880",        optional: only this ticket (and its customer)
      "max_refund": "50.00"}]      optional: total the session may pay out, a decimal string (or an integer)

Rules, each refusing with `TokenRequestRefused` and its registered error (nothing is issued):

    resource  (RFC 8707) absent, or exactly this server's MCP URL, once              invalid_target
    scope     (RFC 6749 §3.3) absent: every scope of the client's role; else space-   invalid_scope
              separated scope names, every one granted by the role
    details   absent, or a JSON array of exactly one object of type deskgate_session   invalid_authorization_details
              with only the fields above, each well-formed; max_refund at most the
              client's ceiling (which is the cap when none is asked); a client not
              registered with allow_unbound must bind a customer or a ticket

The token response repeats what was granted (`scope`, and `authorization_details` with the cap that
applies), so a platform sees exactly what its session may do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from deskgate.scopes.clients import Client, unique_members
from deskgate.scopes.tokens import _OBJECT_ID, _check_amount
from deskgate.server.errors import InvalidArguments, TokenRequestRefused

__all__ = ["SESSION_TYPE", "SessionGrant", "grant"]

SESSION_TYPE = "deskgate_session"
_SESSION_FIELDS = frozenset({"type", "customer_id", "ticket_id", "max_refund"})
_SCOPE_TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


@dataclass(frozen=True, slots=True)
class SessionGrant:
    """What one token request is granted: the token's scopes and bindings."""

    scopes: frozenset[str]
    customer: str | None = None
    ticket: str | None = None
    max_refund: str | None = None

    def authorization_details(self) -> list[dict[str, str]]:
        """The granted `deskgate_session` (RFC 9396 §7), or none for an unbound, uncapped session."""
        fields = {"customer_id": self.customer, "ticket_id": self.ticket, "max_refund": self.max_refund}
        granted = {k: v for k, v in fields.items() if v is not None}
        return [{"type": SESSION_TYPE, **granted}] if granted else []


def grant(client: Client, role_scopes: frozenset[str], *, scope: str | None, authorization_details: str | None,
          resource: list[str], mcp_url: str) -> SessionGrant:
    """The session a client's token request is granted, or `TokenRequestRefused`."""
    if resource and resource != [mcp_url]:
        raise TokenRequestRefused("invalid_target", f"the only resource here is {mcp_url}", code="wrong_resource")
    scopes = _scopes(scope, role_scopes)
    customer, ticket, max_refund = _bindings(authorization_details)
    ceiling = client.max_refund
    if ceiling is not None:
        if max_refund is None:
            max_refund = ceiling
        elif Decimal(max_refund) > Decimal(ceiling):
            raise _details(f"max_refund is above this client's ceiling of {ceiling}", "refund_above_ceiling")
    if customer is None and ticket is None and not client.allow_unbound:
        raise _details("this client must bind each session to a customer_id or a ticket_id", "unbound_session")
    return SessionGrant(scopes, customer, ticket, max_refund)


def _scopes(requested: str | None, role_scopes: frozenset[str]) -> frozenset[str]:
    if requested is None:
        return role_scopes
    names = requested.split(" ")
    if any(not name or not set(name) <= _SCOPE_TOKEN_CHARS for name in names):
        raise TokenRequestRefused("invalid_scope", "scope must be scope names separated by single spaces",
                                  code="malformed_scope")
    if not set(names) <= role_scopes:
        raise TokenRequestRefused("invalid_scope", "a requested scope is not granted by this client's role",
                                  code="scope_beyond_role")
    return frozenset(names)


def _details(reason: str, code: str) -> TokenRequestRefused:
    return TokenRequestRefused("invalid_authorization_details", reason, code=code)


def _bindings(raw: str | None) -> tuple[str | None, str | None, str | None]:
    if raw is None:
        return None, None, None
    try:
        parsed = json.loads(raw, object_pairs_hook=unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise _details("authorization_details must be a JSON array of objects", "malformed_details") from None
    if not isinstance(parsed, list) or len(parsed) != 1 or not isinstance(parsed[0], dict):
        raise _details(f"authorization_details must hold exactly one {SESSION_TYPE} object", "malformed_details")
    detail: dict[str, Any] = parsed[0]
    if detail.get("type") != SESSION_TYPE:
        raise _details(f"the only authorization_details type here is {SESSION_TYPE}", "unknown_type")
    if detail.keys() - _SESSION_FIELDS:
        raise _details(f"{SESSION_TYPE} has only the fields customer_id, ticket_id and max_refund",
                       "unknown_field")
    customer, ticket = detail.get("customer_id"), detail.get("ticket_id")
    for name, value in (("customer_id", customer), ("ticket_id", ticket)):
        if value is not None and (not isinstance(value, str) or not _OBJECT_ID.match(value)):
            raise _details(f"{name} must be an identifier like C-1042 or T-880", "bad_binding")
    amount = detail.get("max_refund")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, str | int)):
        raise _details("max_refund must be a decimal string like 50.00 (or an integer)", "bad_amount")
    try:
        max_refund = _check_amount(None if amount is None else str(amount))
    except InvalidArguments:
        raise _details("max_refund must be a non-negative amount with at most 2 decimals", "bad_amount") from None
    return customer, ticket, max_refund


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
