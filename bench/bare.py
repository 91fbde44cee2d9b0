"""The baseline: a bare `mcp` `MCPServer` with no controls, over the same SQLite backend.

Each tool is a plain `@mcp.tool` whose body is the backend call deskgate's tool makes
(`SqlSupportBackend.get_order`, ...): no token, scope, policy, confirmation, redaction or audit.
It is served exactly like deskgate (stateless Streamable HTTP with JSON responses), so a ratio
between the two is the price of the controls and nothing else.
"""

from __future__ import annotations

import time
from typing import Any

from mcp.server.mcpserver import MCPServer

from deskgate.tools.backend.sql import SqlSupportBackend
from deskgate.tools.models import Customer, NoteAdded, Order, OrderList, PreferencesChanged, Ticket

UNDO_WINDOW = 86400
ACTOR = "bare-bench"


def build_bare_server(backend: SqlSupportBackend) -> MCPServer:
    mcp: MCPServer = MCPServer(name="bare", log_level="WARNING")

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
