"""`IntentLedger`: which money intents a backend started, and what came of them (component "intents").

A write that acts on an external system is recorded here as `started` before the system is
called and `done` (with its result) after. A crash in between leaves a `started` row: at the next
start-up `recover` asks the system for the object carrying the intent in its metadata and records
what it finds, so a retry returns the first result instead of acting twice. The demo backend
writes `done` rows in the same transaction as the change itself.

`order_payments` is commerce's record of which provider payment paid an order (a Stripe
PaymentIntent id): refunds go against it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any, Literal

from deskgate.server.store.db import Database, Tx
from deskgate.server.store.migrations import Migration, upgrade
from deskgate.tools.backend.kinds import Intent

INTENT_MIGRATIONS = [
    Migration(1, "intent ledger and order payment references", """
CREATE TABLE backend_intents (
    intent_key TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    audit_seq BIGINT,
    tool TEXT NOT NULL,
    object_id TEXT NOT NULL,
    system TEXT NOT NULL,
    state TEXT NOT NULL,
    result TEXT,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE INDEX backend_intents_state ON backend_intents (state, created_at);
CREATE TABLE order_payments (
    order_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    reference TEXT NOT NULL
)"""),
    Migration(2, "references of deskgate objects in external systems", """
CREATE TABLE provider_refs (
    system TEXT NOT NULL,
    kind TEXT NOT NULL,
    local_id TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    PRIMARY KEY (system, kind, local_id)
);
CREATE INDEX provider_refs_provider ON provider_refs (system, provider_id)"""),
]

IntentState = Literal["started", "done", "not_executed"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    intent: Intent
    tool: str
    object_id: str
    system: str
    state: IntentState
    result: dict[str, Any] | None
    host: str
    pid: int
    created_at: int


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    return LedgerEntry(Intent(key=row[0], request_id=row[1], seq=row[2]), tool=row[3], object_id=row[4],
                       system=row[5], state=row[6], result=json.loads(row[7]) if row[7] else None, host=row[8],
                       pid=int(row[9]), created_at=int(row[10]))


_SELECT = ("SELECT intent_key, request_id, audit_seq, tool, object_id, system, state, result, host, pid, created_at"
           " FROM backend_intents")


def find_in(tx: Tx, key: str) -> LedgerEntry | None:
    row = tx.one(_SELECT + " WHERE intent_key = ?", (key,))
    return _entry(row) if row else None


def record_done_in(tx: Tx, intent: Intent, tool: str, object_id: str, system: str, result: dict[str, Any],
                   now: int) -> None:
    """Record a finished intent inside the caller's transaction (the demo's own writes)."""
    tx.execute("INSERT INTO backend_intents (intent_key, request_id, audit_seq, tool, object_id, system, state,"
               " result, host, pid, created_at, settled_at) VALUES (?, ?, ?, ?, ?, ?, 'done', ?, ?, ?, ?, ?)",
               (intent.key, intent.request_id, intent.seq, tool, object_id, system, json.dumps(result, sort_keys=True),
                socket.gethostname(), os.getpid(), now, now))


class IntentLedger:
    def __init__(self, db: Database) -> None:
        self.db = db

    def upgrade(self) -> list[Migration]:
        return upgrade(self.db, "intents", INTENT_MIGRATIONS)

    async def find(self, key: str) -> LedgerEntry | None:
        return await self.db.read(lambda tx: find_in(tx, key))

    async def start(self, intent: Intent, tool: str, object_id: str, system: str, now: int) -> LedgerEntry | None:
        """Record that `intent` is about to act; the earlier entry if the intent was recorded before."""

        def write(tx: Tx) -> LedgerEntry | None:
            earlier = find_in(tx, intent.key)
            if earlier is not None:
                return earlier
            tx.execute("INSERT INTO backend_intents (intent_key, request_id, audit_seq, tool, object_id, system,"
                       " state, host, pid, created_at) VALUES (?, ?, ?, ?, ?, ?, 'started', ?, ?, ?)",
                       (intent.key, intent.request_id, intent.seq, tool, object_id, system, socket.gethostname(),
                        os.getpid(), now))
            return None

        return await self.db.write(write)

    async def settle(self, key: str, state: IntentState, result: dict[str, Any] | None, now: int) -> None:
        await self.db.write(lambda tx: tx.execute(
            "UPDATE backend_intents SET state = ?, result = ?, settled_at = ? WHERE intent_key = ?",
            (state, json.dumps(result, sort_keys=True) if result is not None else None, now, key)))

    async def forget(self, key: str) -> None:
        """Drop a `started` entry whose call failed before reaching the system (a retry may act)."""
        await self.db.write(lambda tx: tx.execute(
            "DELETE FROM backend_intents WHERE intent_key = ? AND state = 'started'", (key,)))

    async def unsettled(self, system: str) -> list[LedgerEntry]:
        rows = await self.db.read(lambda tx: tx.query(
            _SELECT + " WHERE state = 'started' AND system = ? ORDER BY created_at", (system,)))
        return [_entry(r) for r in rows]

    # --- commerce's payment references ------------------------------------------------------

    async def provider_ref(self, system: str, kind: str, local_id: str) -> str | None:
        """The external system's id of a deskgate object (e.g. the Stripe customer of customer C-1)."""
        row = await self.db.read(lambda tx: tx.one(
            "SELECT provider_id FROM provider_refs WHERE system = ? AND kind = ? AND local_id = ?",
            (system, kind, local_id)))
        return None if row is None else str(row[0])

    def set_provider_refs_sync(self, system: str, kind: str, refs: dict[str, str]) -> None:
        self.db.write_sync(lambda tx: tx.executemany(
            "INSERT INTO provider_refs (system, kind, local_id, provider_id) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (system, kind, local_id) DO UPDATE SET provider_id = excluded.provider_id",
            [(system, kind, local, remote) for local, remote in sorted(refs.items())]))

    def provider_refs_sync(self, system: str, kind: str) -> dict[str, str]:
        rows = self.db.read_sync(lambda tx: tx.query(
            "SELECT local_id, provider_id FROM provider_refs WHERE system = ? AND kind = ?", (system, kind)))
        return {str(a): str(b) for a, b in rows}

    def set_payment_references_sync(self, provider: str, references: dict[str, str]) -> None:
        self.db.write_sync(lambda tx: tx.executemany(
            "INSERT INTO order_payments (order_id, provider, reference) VALUES (?, ?, ?)"
            " ON CONFLICT (order_id) DO UPDATE SET provider = excluded.provider, reference = excluded.reference",
            [(o, provider, r) for o, r in sorted(references.items())]))


def process_gone(entry: LedgerEntry) -> bool:
    """True when the process that started `entry` is no longer running (same host), so its call ended."""
    if entry.host != socket.gethostname():
        return False
    if entry.pid == os.getpid():
        return True  # a previous life of this pid: this process has not started anything yet at recovery
    try:
        os.kill(entry.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
