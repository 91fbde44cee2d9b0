"""`seed_helpdesk`: the demo's scenario tickets, put into django-helpdesk (`deskgate init --demo --helpdesk URL`).

Each scenario ticket becomes a helpdesk ticket in the customers' queue, submitted with the customer's
email; the customer's messages form its description (the helpdesk's API writes follow-ups as the API
user, so only the opening message reads as the customer's) and the agent's replies are public
follow-ups. Where each went is recorded in `provider_refs`; seeding twice changes nothing.
"""

from __future__ import annotations

import functools

import httpx2

from deskgate.server.store.db import Database, Row, Tx
from deskgate.tools.backend.ledger import IntentLedger
from deskgate.tools.backend.seed import DEMO

SYSTEM = "helpdesk"


def seed_helpdesk(url: str, token: str, queue: int, db: Database) -> bool:
    """False when the tickets are there already (nothing changes)."""
    ledger = IntentLedger(db)
    if ledger.provider_refs_sync(SYSTEM, "ticket"):
        return False
    scenario = (DEMO.pii_ticket, DEMO.cancel_ticket)
    tickets = db.read_sync(lambda tx: tx.query(
        "SELECT t.id, t.subject, c.email FROM tickets t JOIN customers c ON c.id = t.customer_id"
        " WHERE t.id IN (?, ?) ORDER BY t.id", scenario))
    made: dict[str, str] = {}
    with httpx2.Client(base_url=url.rstrip("/") + "/api/", headers={"Authorization": f"Token {token}"},
                       timeout=30) as http:
        for ticket_id, subject, email in tickets:
            messages = db.read_sync(functools.partial(_messages, ticket_id=ticket_id))
            said = "\n\n".join(body for author, body in messages if author == "customer")
            created = http.post("tickets/", json={"queue": queue, "title": subject, "description": said,
                                                  "submitter_email": email, "priority": 3})
            created.raise_for_status()
            number = int(created.json()["id"])
            for author, body in messages:
                if author == "agent":
                    http.post("followups/", json={"ticket": number, "comment": body, "public": True}).raise_for_status()
            made[ticket_id] = str(number)
    ledger.set_provider_refs_sync(SYSTEM, "ticket", made)
    return True


def helpdesk_ids(db: Database) -> dict[str, str]:
    """The helpdesk ids of the demo's scenario tickets (e.g. {"T-1": "12"})."""
    return IntentLedger(db).provider_refs_sync(SYSTEM, "ticket")


def _messages(tx: Tx, ticket_id: str) -> list[Row]:
    return tx.query("SELECT author, body FROM ticket_messages WHERE ticket_id = ? ORDER BY seq", (ticket_id,))
