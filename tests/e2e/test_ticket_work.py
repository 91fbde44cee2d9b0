"""Ticket work the agent finishes itself - read the account, reply to the customer, set the ticket's status -
through a real MCP client, with the real rows checked in the demo backend."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

CARD = "4111 1111 1111 1111"


def messages(d: Deployment, ticket_id: str) -> list[tuple[Any, ...]]:
    return d.rows("SELECT seq, author, body FROM ticket_messages WHERE ticket_id = ? ORDER BY seq", (ticket_id,))


def status_of(d: Deployment, ticket_id: str) -> str:
    return str(d.rows("SELECT status FROM tickets WHERE id = ?", (ticket_id,))[0][0])


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


# --- reply_to_customer ---------------------------------------------------------------------------

async def test_a_reply_is_posted_where_the_customer_reads_it_with_card_and_contact_data_masked(
        deployment: Deployment) -> None:
    demo = deployment.demo
    before = messages(deployment, demo.pii_ticket)
    body = f"We refunded the card {CARD}; questions to maria.schneider@example.com. Sorry for the trouble!"
    async with deployment.client(deployment.token("tier1-agent")) as client:
        reply = await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body=body)
        ticket = await call(client, "get_ticket", ticket_id=demo.pii_ticket)
    assert reply["status"] == "ok", reply
    after = messages(deployment, demo.pii_ticket)
    assert after[:-1] == before and after[-1][1] == "agent"
    posted = str(after[-1][2])
    assert "Sorry for the trouble!" in posted and "1111" in posted
    assert CARD not in posted and "maria.schneider@" not in posted
    assert "Sorry for the trouble!" in reply["data"]["body"] and CARD not in reply["data"]["body"]
    assert ticket["data"]["messages"][-1]["author"] == "agent"
    assert (reply["data"]["ticket_id"], reply["data"]["customer_id"]) == (demo.pii_ticket, demo.customer_id)


async def test_a_bound_session_cannot_reply_on_another_customers_ticket(deployment: Deployment) -> None:
    """Bound to C-1 or to ticket T-1, a reply on T-2 (C-3's) or on an unknown ticket posts nothing."""
    demo = deployment.demo
    before = {t: messages(deployment, t) for t in (demo.pii_ticket, demo.cancel_ticket)}
    for binding in ({"customer": demo.customer_id}, {"ticket": demo.pii_ticket}):
        async with deployment.client(deployment.token("tier1-agent", **binding)) as client:
            foreign = await call(client, "reply_to_customer", ticket_id=demo.cancel_ticket,
                                 body="Your refund is on its way")
            unknown = await call(client, "reply_to_customer", ticket_id="T-99999", body="hello")
            status = await call(client, "set_ticket_status", ticket_id=demo.cancel_ticket, status="solved")
        for answer in (foreign, unknown, status):
            assert (answer["status"], answer["code"]) == ("denied", "binding"), (binding, answer)
    assert {t: messages(deployment, t) for t in before} == before
    assert status_of(deployment, demo.cancel_ticket) == "open"


@pytest.mark.parametrize("body", [
    "x" * 4001,                                             # oversized
    "",                                                     # empty
    "Refund approved\u202e.exe",                            # right-to-left override: reads otherwise than it is
    "Your refund \u2066is approved\u2069",                  # isolates hide a reordering
    f"card {CARD.replace(' ', chr(0x200B))} was refunded",  # zero-width spaces inside a card number
    "line\x00break",                                        # control character
    "soft\u00adhyphen\ufeff",                               # invisible format characters
], ids=["oversized", "empty", "rlo", "isolate", "zero-width", "nul", "invisible"])
async def test_oversized_or_unicode_tricked_replies_are_refused_and_post_nothing(
        deployment: Deployment, body: str) -> None:
    demo = deployment.demo
    before = messages(deployment, demo.pii_ticket)
    async with deployment.client(deployment.token("tier1-agent")) as client:
        answer = await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body=body)
    assert (answer["status"], answer["code"]) == ("error", "invalid_arguments"), answer
    assert messages(deployment, demo.pii_ticket) == before
    assert "4111" not in str(answer)


async def test_look_alike_digits_do_not_carry_a_card_number_past_the_mask(deployment: Deployment) -> None:
    """Full-width digits are letters to a reader and digits to the detectors: the card is masked either way."""
    demo = deployment.demo
    wide = CARD.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    async with deployment.client(deployment.token("tier1-agent")) as client:
        reply = await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body=f"Card {wide} refunded")
    assert reply["status"] == "ok", reply
    posted = str(messages(deployment, demo.pii_ticket)[-1][2])
    assert wide not in posted and "refunded" in posted
    assert wide not in deployment.audit_text()


async def test_replies_are_rate_limited_per_customer(deployment: Deployment) -> None:
    """A runaway loop stops at the policy's 10 replies per customer and hour; the refused one posts nothing."""
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        answers = [await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body=f"Update {n}")
                   for n in range(11)]
    assert [a["status"] for a in answers[:10]] == ["ok"] * 10
    assert (answers[10]["status"], answers[10]["code"]) == ("denied", "rate_limited")
    assert "Update 10" not in [m[2] for m in messages(deployment, demo.pii_ticket)]


async def test_a_closed_ticket_takes_no_reply_and_nothing_changes(deployment: Deployment) -> None:
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        solved = await call(client, "set_ticket_status", ticket_id=demo.pii_ticket, status="solved")
        before = messages(deployment, demo.pii_ticket)
        refused = await call(client, "reply_to_customer", ticket_id=demo.pii_ticket, body="One more thing")
    assert solved["status"] == "ok", solved
    assert (refused["status"], refused["code"]) == ("error", "ticket_closed")
    assert messages(deployment, demo.pii_ticket) == before


# --- set_ticket_status ---------------------------------------------------------------------------

async def test_a_ticket_goes_pending_then_solved_and_a_solved_ticket_stays_closed(deployment: Deployment) -> None:
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        pending = await call(client, "set_ticket_status", ticket_id=demo.pii_ticket, status="pending")
        again = await call(client, "set_ticket_status", ticket_id=demo.pii_ticket, status="pending")
        read = await call(client, "get_ticket", ticket_id=demo.pii_ticket)
        solved = await call(client, "set_ticket_status", ticket_id=demo.pii_ticket, status="solved")
        reopen = await call(client, "set_ticket_status", ticket_id=demo.pii_ticket, status="pending")
    assert (pending["data"]["previous_status"], pending["data"]["status"]) == ("open", "pending")
    assert (again["data"]["previous_status"], again["data"]["status"]) == ("pending", "pending")
    assert read["data"]["status"] == "pending"
    assert (solved["data"]["previous_status"], solved["data"]["status"]) == ("pending", "closed")
    assert (reopen["status"], reopen["code"]) == ("error", "ticket_closed")
    assert status_of(deployment, demo.pii_ticket) == "closed"


FULL_WIDTH_SOLVED = "solved".translate({c: c + 0xFEE0 for c in range(0x61, 0x7B)})


@pytest.mark.parametrize("status", ["closed", "open", "escalated", "SOLVED", "solved ", FULL_WIDTH_SOLVED, 3, True,
                                    None])
async def test_status_values_outside_the_enum_are_refused_and_change_nothing(
        deployment: Deployment, status: object) -> None:
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        answer = await call(client, "set_ticket_status", ticket_id=demo.pii_ticket, status=status)
    assert (answer["status"], answer["code"]) == ("error", "invalid_arguments"), answer
    assert status_of(deployment, demo.pii_ticket) == "open"


async def test_a_ticket_handed_to_a_human_keeps_the_status_they_give_it(deployment: Deployment) -> None:
    demo = deployment.demo
    async with deployment.client(deployment.token("tier1-agent")) as client:
        handed = await call(client, "escalate_to_human", ticket_id=demo.cancel_ticket, summary="Wants S-1 cancelled",
                            tried="Explained the admin rule", proposed_action="Call the admin")
        refused = await call(client, "set_ticket_status", ticket_id=demo.cancel_ticket, status="solved")
    assert handed["status"] == "ok", handed
    assert (refused["status"], refused["code"]) == ("error", "ticket_escalated")
    assert status_of(deployment, demo.cancel_ticket) == "escalated"
