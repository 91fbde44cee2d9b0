"""Tickets on django-helpdesk (a real instance on SQLite), through a real MCP client."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from deskgate.tools.backend.helpdesk_seed import helpdesk_ids, seed_helpdesk
from tests.backends.conftest import HelpdeskDeployment, Peer
from tests.backends.systems import Helpdesk, helpdesk_settings
from tests.e2e.conftest import call, deployed

pytestmark = pytest.mark.anyio


async def test_a_helpdesk_ticket_reads_with_its_messages_and_its_customer(on_helpdesk: HelpdeskDeployment) -> None:
    d, number = on_helpdesk.deployment, on_helpdesk.ids["T-1"]
    async with d.client(d.token("tier1-agent")) as client:
        ticket = await call(client, "get_ticket", ticket_id=number)
        listed = await call(client, "list_tickets", customer_id="C-1")
        legacy = await call(client, "get_ticket", ticket_id="T-1")
    assert ticket["status"] == "ok", ticket
    data = ticket["data"]
    assert (data["ticket_id"], data["customer_id"], data["status"]) == (number, "C-1", "open")
    assert "Headphones broken - refund please" in data["subject"]  # marked as customer-written, as on the demo
    assert [m["author"] for m in data["messages"]] == ["customer", "agent"]
    assert "IGNORE PREVIOUS INSTRUCTIONS" in data["messages"][0]["body"]
    assert "4111" not in data["messages"][0]["body"]  # redacted on the way out, as on the demo
    assert number in [t["ticket_id"] for t in listed["data"]["tickets"]]
    assert (legacy["status"], legacy["code"]) == ("error", "not_found")


async def test_an_internal_note_is_a_non_public_follow_up_and_leaves_the_title_alone(
        on_helpdesk: HelpdeskDeployment) -> None:
    d, number = on_helpdesk.deployment, on_helpdesk.ids["T-1"]
    async with d.client(d.token("tier1-agent", sub="agent-7")) as client:
        added = await call(client, "add_ticket_note", ticket_id=number, body="Checked the order; asked for photos.")
        ticket = await call(client, "get_ticket", ticket_id=number)
    assert added["status"] == "ok", added
    raw = on_helpdesk.ticket(number)
    [followup] = [f for f in raw["followup_set"] if str(f["id"]) == added["data"]["note_id"]]  # type: ignore[union-attr, index]
    assert followup["public"] is False
    assert raw["title"] == "Headphones broken - refund please"
    [note] = [n for n in ticket["data"]["notes"] if n["note_id"] == added["data"]["note_id"]]
    assert "Checked the order; asked for photos." in note["body"] and note["author"] == "agent-7"


async def test_a_hand_off_moves_the_ticket_to_the_human_queue_with_the_summary_as_an_internal_note(
        on_helpdesk: HelpdeskDeployment) -> None:
    d, number = on_helpdesk.deployment, on_helpdesk.ids["T-2"]
    token = d.token("tier1-agent")  # a hand-off's status is shown to the session that made it
    async with d.client(token) as client:
        handed = await call(client, "escalate_to_human", ticket_id=number, summary="Wants S-1 cancelled",
                            tried="Explained only an admin may cancel", proposed_action="Call the admin",
                            priority="high")
        status = await call(client, "get_action_status", action_id=handed["data"]["handoff_id"])
        ticket = await call(client, "get_ticket", ticket_id=number)
    assert handed["status"] == "ok", handed
    assert (handed["data"]["ticket_id"], handed["data"]["customer_id"], handed["data"]["status"]) == (
        number, "C-3", "queued")
    assert status.get("data", {}).get("kind") == "handoff", status
    assert status["data"]["status"] == "queued"
    assert ticket["data"]["status"] == "escalated"
    raw = on_helpdesk.ticket(number)
    assert raw["queue"] == on_helpdesk.helpdesk.human_queue
    assert any("Wants S-1 cancelled" in n["body"] for n in ticket["data"]["notes"])
    with on_helpdesk.helpdesk.http() as http:
        http.patch(f"tickets/{number}/", json={"assigned_to": 1}).raise_for_status()
    async with d.client(token) as client:
        taken = await call(client, "get_action_status", action_id=handed["data"]["handoff_id"])
    assert taken["data"]["status"] == "taken"


async def test_a_session_bound_to_one_customer_cannot_touch_another_customers_helpdesk_ticket(
        on_helpdesk: HelpdeskDeployment) -> None:
    d = on_helpdesk.deployment
    async with d.client(d.token("tier1-agent", customer="C-1")) as client:
        foreign = await call(client, "add_ticket_note", ticket_id=on_helpdesk.ids["T-2"], body="x")
        unknown = await call(client, "get_ticket", ticket_id="999999")
        own = await call(client, "get_ticket", ticket_id=on_helpdesk.ids["T-1"])
    assert (foreign["status"], foreign["code"]) == ("denied", "binding")
    assert (unknown["status"], unknown["code"]) == ("denied", "binding")
    assert own["status"] == "ok"
    notes = [f for f in on_helpdesk.ticket(on_helpdesk.ids["T-2"])["followup_set"] if not f["public"]]  # type: ignore[union-attr]
    assert notes == []


async def test_a_failing_or_hanging_helpdesk_is_backend_unavailable_and_its_text_never_shown(
        home: Path, helpdesk: Helpdesk, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a loopback peer: a 500 whose body carries data, then a hang beyond the 0.5 s timeout."""
    monkeypatch.setenv("HELPDESK_TOKEN", helpdesk.token)
    faulty = Peer(helpdesk.url)
    thread = threading.Thread(target=faulty.server.serve_forever, daemon=True)
    thread.start()
    try:
        async with deployed(home, None, helpdesk_settings(helpdesk, faulty.url, timeout_seconds=0.5)) as d:
            seed_helpdesk(helpdesk.url, helpdesk.token, helpdesk.queue, d.runtime.backend_db)
            number = helpdesk_ids(d.runtime.backend_db)["T-1"]
            faulty.before = lambda method, path: (500, {"Content-Type": "text/plain"}, b"Traceback: maria@example.com")
            async with d.client(d.token("tier1-agent")) as client:
                failed = await call(client, "add_ticket_note", ticket_id=number, body="hello")
                faulty.before = lambda method, path: faulty.hang()  # type: ignore[assignment, return-value]
                with anyio.fail_after(10):
                    hung = await call(client, "get_ticket", ticket_id=number)
    finally:
        faulty.release.set()
        faulty.server.shutdown()
        faulty.server.server_close()
    assert (failed["status"], failed["code"]) == ("error", "backend_unavailable")
    assert "maria" not in str(failed) and "Traceback" not in str(failed)
    assert (hung["status"], hung["code"]) == ("error", "backend_unavailable")


async def test_a_reply_is_a_public_follow_up_with_its_card_number_masked_and_the_title_left_alone(
        on_helpdesk: HelpdeskDeployment) -> None:
    d, number = on_helpdesk.deployment, on_helpdesk.ids["T-1"]
    body = "We refunded card 4111 1111 1111 1111 today."
    async with d.client(d.token("tier1-agent", sub="agent-7")) as client:
        reply = await call(client, "reply_to_customer", ticket_id=number, body=body, rationale="Refund went out")
        ticket = await call(client, "get_ticket", ticket_id=number)
    assert reply["status"] == "ok", reply
    raw = on_helpdesk.ticket(number)
    [followup] = [f for f in raw["followup_set"] if "We refunded card" in f["comment"]]  # type: ignore[union-attr, index]
    assert followup["public"] is True and "4111 1111" not in followup["comment"] and "1111" in followup["comment"]
    assert "agent-7" not in followup["comment"]  # the customer reads no session subject
    assert raw["title"] == "Headphones broken - refund please"
    assert ticket["data"]["messages"][-1]["author"] == "agent"
    [final] = [r for r in d.audit_records() if "final_customer_output" in r]
    assert final["ticket_id"] == number and "4111 1111" not in final["final_customer_output"]


async def test_solved_is_the_helpdesks_resolved_status_and_pending_its_on_hold_flag(
        on_helpdesk: HelpdeskDeployment) -> None:
    d, number = on_helpdesk.deployment, on_helpdesk.ids["T-1"]
    async with d.client(d.token("tier1-agent")) as client:
        pending = await call(client, "set_ticket_status", ticket_id=number, status="pending")
        held = on_helpdesk.ticket(number)
        solved = await call(client, "set_ticket_status", ticket_id=number, status="solved")
        bogus = await call(client, "set_ticket_status", ticket_id=number, status="open")
    assert (pending["status"], pending["data"]["status"]) == ("ok", "pending"), pending
    assert (held["status"], held["on_hold"]) == (1, True)
    assert (solved["data"]["previous_status"], solved["data"]["status"]) == ("pending", "closed")
    assert on_helpdesk.ticket(number)["status"] == 3
    assert (bogus["status"], bogus["code"]) == ("error", "invalid_arguments")


async def test_a_bound_session_cannot_reply_on_or_solve_another_customers_helpdesk_ticket(
        on_helpdesk: HelpdeskDeployment) -> None:
    d, theirs = on_helpdesk.deployment, on_helpdesk.ids["T-2"]
    before = on_helpdesk.ticket(theirs)
    async with d.client(d.token("tier1-agent", ticket=on_helpdesk.ids["T-1"])) as client:
        reply = await call(client, "reply_to_customer", ticket_id=theirs, body="Your subscription is cancelled")
        status = await call(client, "set_ticket_status", ticket_id=theirs, status="solved")
    assert (reply["status"], reply["code"]) == ("denied", "binding")
    assert (status["status"], status["code"]) == ("denied", "binding")
    assert on_helpdesk.ticket(theirs) == before
