"""Ticket work the agent finishes itself - read the account, reply to the customer, set the ticket's status -
through a real MCP client, with the real rows checked in the demo backend."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

# --- get_account ---------------------------------------------------------------------------------

async def test_get_account_names_every_member_and_role_so_the_agent_finds_the_admin(deployment: Deployment) -> None:
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        assert "get_account" in {t.name for t in (await client.list_tools()).tools}
        account = await call(client, "get_account", account_id=demo.account_id)
    assert account["status"] == "ok", account
    members = {m["customer_id"]: m["role"] for m in account["data"]["members"]}
    assert members == {demo.account_admin: "admin", demo.account_member: "member"}
    assert (account["data"]["currency"], account["data"]["account_id"]) == ("EUR", demo.account_id)


async def test_a_session_bound_to_one_customer_never_reads_another_customers_membership(
        deployment: Deployment) -> None:
    """Foreign and unknown accounts answer alike (no existence oracle); the bound customer's own account is
    withheld too while it names other members (a bound session sees no other customer's id)."""
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent", customer=demo.customer_id)) as client:
        foreign = await call(client, "get_account", account_id=demo.account_id)
        unknown = await call(client, "get_account", account_id="A-99999")
    async with deployment.client(deployment.token("tier1-agent", customer=demo.account_member)) as client:
        own = await call(client, "get_account", account_id=demo.account_id)
    for answer in (foreign, unknown, own):
        assert (answer["status"], answer["code"]) == ("denied", "binding"), answer
        assert demo.account_admin not in str(answer)
