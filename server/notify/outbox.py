"""The durable outbox: one row per (webhook, event key), retried with backoff until delivered.

    webhook_outbox   the signed body to send, attempts, when to try next, delivered or given up
    webhook_cursor   the last audit seq turned into outbox rows (so a restart neither loses nor repeats)

Rows are added and the cursor moved in one transaction; a row is leased to one sender at a time
(`lease_due`), so several server processes deliver each event once. A receiver that is down only
moves its own rows' `next_at`: nothing else waits for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from deskgate.server.store.db import Database, Tx
from deskgate.server.store.migrations import Migration, upgrade

OUTBOX_MIGRATIONS = [
    Migration(1, "webhook outbox", """
CREATE TABLE webhook_outbox (
    id TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    event TEXT NOT NULL,
    event_key TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_at BIGINT NOT NULL,
    leased_until BIGINT NOT NULL,
    delivered_at BIGINT,
    gave_up_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX webhook_outbox_key ON webhook_outbox (webhook, event_key);
CREATE INDEX webhook_outbox_due ON webhook_outbox (delivered_at, gave_up_at, next_at);
CREATE TABLE webhook_cursor (
    name TEXT PRIMARY KEY,
    seq BIGINT NOT NULL
)"""),
]

MAX_ATTEMPTS = 12
LEASE_SECONDS = 60


def backoff(attempts: int) -> int:
    """Seconds before the next try after `attempts` failures: 5 s doubling, at most an hour."""
    return min(5 * (1 << min(max(attempts - 1, 0), 16)), 3600)


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    webhook: str
    event: str
    body: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Row:
    webhook: str
    event: str
    event_key: str
    body: str


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def upgrade(self) -> list[Migration]:
        return upgrade(self._db, "outbox", OUTBOX_MIGRATIONS)

    def cursor(self) -> int | None:
        row = self._db.read_sync(lambda tx: tx.one("SELECT seq FROM webhook_cursor WHERE name = 'audit'"))
        return None if row is None else int(row[0])

    def add(self, rows: Sequence[Row], *, seq: int, now: int) -> int:
        """Add the rows not already there and move the cursor to `seq` (never back); returns how many were new."""

        def add(tx: Tx) -> int:
            added = 0
            for row in rows:
                if tx.one("SELECT 1 FROM webhook_outbox WHERE webhook = ? AND event_key = ?",
                          (row.webhook, row.event_key)):
                    continue
                tx.execute("INSERT INTO webhook_outbox (id, webhook, event, event_key, body, attempts, next_at,"
                           " leased_until, created_at) VALUES (?, ?, ?, ?, ?, 0, ?, 0, ?)",
                           (_row_id(row), row.webhook, row.event, row.event_key, row.body, now, now))
                added += 1
            if tx.execute("UPDATE webhook_cursor SET seq = ? WHERE name = 'audit' AND seq < ?", (seq, seq)) == 0 \
                    and tx.one("SELECT 1 FROM webhook_cursor WHERE name = 'audit'") is None:
                tx.execute("INSERT INTO webhook_cursor (name, seq) VALUES ('audit', ?)", (seq,))
            return added

        return self._db.write_sync(add)

    def lease_due(self, *, now: int, limit: int = 20) -> list[Pending]:
        """Rows due now, leased to this sender for LEASE_SECONDS (another sender skips them)."""

        def lease(tx: Tx) -> list[Pending]:
            rows = tx.query("SELECT id, webhook, event, body, attempts FROM webhook_outbox WHERE delivered_at IS NULL"
                            " AND gave_up_at IS NULL AND next_at <= ? AND leased_until <= ? ORDER BY next_at, id"
                            " LIMIT ?", (now, now, limit))
            leased = []
            for r in rows:
                if tx.execute("UPDATE webhook_outbox SET leased_until = ? WHERE id = ? AND leased_until <= ?",
                              (now + LEASE_SECONDS, r[0], now)) == 1:
                    leased.append(Pending(r[0], r[1], r[2], r[3], int(r[4])))
            return leased

        return self._db.write_sync(lease)

    def delivered(self, row_id: str, *, now: int) -> None:
        self._db.write_sync(lambda tx: tx.execute(
            "UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1, leased_until = 0, last_error = NULL"
            " WHERE id = ?", (now, row_id)))

    def failed(self, pending: Pending, error: str, *, now: int) -> None:
        attempts = pending.attempts + 1
        gave_up = now if attempts >= MAX_ATTEMPTS else None
        self._db.write_sync(lambda tx: tx.execute(
            "UPDATE webhook_outbox SET attempts = ?, next_at = ?, leased_until = 0, last_error = ?, gave_up_at = ?"
            " WHERE id = ?", (attempts, now + backoff(attempts), error[:200], gave_up, pending.id)))

    def rows(self) -> list[tuple[str, str, int, int | None, int | None, str | None]]:
        """(event, webhook, attempts, delivered_at, gave_up_at, last_error) of every row, oldest first."""
        return self._db.read_sync(lambda tx: [
            (r[0], r[1], int(r[2]), r[3], r[4], r[5]) for r in tx.query(
                "SELECT event, webhook, attempts, delivered_at, gave_up_at, last_error FROM webhook_outbox"
                " ORDER BY created_at, id")])


def _row_id(row: Row) -> str:
    return hashlib.sha256(f"{row.webhook}\x00{row.event_key}".encode()).hexdigest()[:32]
