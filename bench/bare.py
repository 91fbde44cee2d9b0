"""The baseline: a bare `mcp` `MCPServer` with no controls, over the same SQLite backend.

Each tool is a plain `@mcp.tool` whose body is the backend call deskgate's tool makes
(`SqlSupportBackend.get_order`, ...): no token, scope, policy, confirmation, redaction or audit.
It is served exactly like deskgate (stateless Streamable HTTP with JSON responses), so a ratio
between the two is the price of the controls and nothing else.

`bare-auth` is the same server with the SDK's bearer auth switched on and one control behind it:
`OneCheckVerifier`, a PyJWT EdDSA verification of the same token against the same key (pinned
algorithm, audience, issuer), uncached - the "one-check server". Against `bare` it
prices the SDK's HTTP auth stack; against deskgate, what the rest of the chain costs.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.tokens import ALGORITHM
from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.models import Customer, NoteAdded, Order, OrderList, PreferencesChanged, Ticket

UNDO_WINDOW = 86400
ACTOR = "bare-bench"


class OneCheckVerifier:
    """The SDK's `TokenVerifier` as a server with one control implements it: verify the JWT, nothing else."""

    def __init__(self, keys: SigningKeys, audience: str, issuer: str) -> None:
        self._keys = keys
        self._audience = audience
        self._issuer = issuer

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.verification_key(kid) if isinstance(kid, str) else None
            if key is None:
                return None
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=self._audience, issuer=self._issuer)
        except jwt.PyJWTError:
            return None
        return AccessToken(token=token, client_id=claims["client_id"], scopes=claims["scope"].split(" "),
                           expires_at=claims["exp"])


def build_bare_server(backend: SqlSupportBackend, *, verifier: OneCheckVerifier | None = None,
                      public_url: str = "http://127.0.0.1") -> MCPServer:
    auth = None
    if verifier is not None:  # the same AuthSettings deskgate's HTTP server uses
        auth = AuthSettings(issuer_url=public_url, resource_server_url=f"{public_url}/mcp",
                            validate_token_resource=False)
    mcp: MCPServer = MCPServer(name="bare", log_level="WARNING", token_verifier=verifier, auth=auth)

    @mcp.tool(name="get_order")
    async def get_order(order_id: str) -> Order:
        return await backend.get_order(order_id)

    @mcp.tool(name="get_customer")
    async def get_customer(customer_id: str) -> Customer:
        return await backend.get_customer(customer_id)

    @mcp.tool(name="list_orders")
    async def list_orders(customer_id: str, limit: int = 20) -> OrderList:
        return OrderList(customer_id=customer_id, orders=await backend.list_orders(customer_id, limit=limit))

    @mcp.tool(name="get_ticket")
    async def get_ticket(ticket_id: str) -> Ticket:
        return await backend.get_ticket(ticket_id)

    @mcp.tool(name="add_ticket_note")
    async def add_ticket_note(ticket_id: str, body: str) -> NoteAdded:
        return await backend.add_ticket_note(ticket_id, body, actor=ACTOR, now=int(time.time()))

    @mcp.tool(name="update_email_preferences")
    async def update_email_preferences(customer_id: str, marketing: bool | None = None,
                                       product_updates: bool | None = None,
                                       newsletter: bool | None = None) -> PreferencesChanged:
        asked: dict[str, Any] = {"marketing": marketing, "product_updates": product_updates,
                                 "newsletter": newsletter}
        now = int(time.time())
        return await backend.update_email_preferences(
            customer_id, {k: v for k, v in asked.items() if v is not None}, actor=ACTOR, now=now,
            reversible_until=now + UNDO_WINDOW)

    return mcp
