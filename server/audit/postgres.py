"""The audit chain in PostgreSQL, for several server processes writing one log.

One total order across processes: each batch takes a transaction-scoped advisory lock, reads the
head and inserts after it, so appends from every process queue on the lock instead of failing;
`seq` is the table's primary key, so even a writer that skipped the lock could never fork the
chain (its insert fails and is sealed again on the new head): no forks, no gaps.
Group commit is per process (`batching`): one transaction, hence one WAL flush, per batch.
Durability is PostgreSQL's commit (keep `synchronous_commit = on` for this role): every record,
`durable=False` ones included, is durable once `_write` returns, so `_flush` has nothing to do
(and nothing is written on a caller's thread: `_write_now` is the base class's "queue it").

Records are stored as their canonical JSON line, so `verify` applies the same checks as to the
files. The application role needs only SELECT and INSERT on both tables:

    GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO deskgate_app;

and the checkpoints are shipped to an external anchor exactly as for the file log. A server
whose audit tables are already at the latest version starts without any DDL, so the role that
runs `deskgate db upgrade` (and owns the tables) can be another than the one that serves.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg import errors as pg_errors

from deskgate.server.audit.batching import GroupCommit
from deskgate.server.audit.checkpoints import Anchor, Shipper, anchor_from_env, make_checkpoint
from deskgate.server.audit.keys import AuditKey, key_id
from deskgate.server.audit.records import GENESIS, seal
from deskgate.server.audit.verify import Report, anchor_source, check_truncation, scan, signed_heads
from deskgate.server.errors import AuditUnavailable, StoreUnavailable
from deskgate.server.settings import AuditSection
from deskgate.server.store.db import Database, Row, Tx
from deskgate.server.store.migrations import Migration, upgrade

AUDIT_MIGRATIONS = [
    Migration(1, "audit chain", """
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    line TEXT NOT NULL
)"""),
]
_RETRIES = 50
_PAGE = 10_000
_HEAD = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"


class PostgresAuditLog(GroupCommit):
    def __init__(
        self,
        db: Database,
        key: AuditKey,
        settings: AuditSection | None = None,
        *,
        anchor: Anchor | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if db.dialect != "postgresql":
            raise AuditUnavailable("the shared audit table needs PostgreSQL; use the file log on SQLite")
        super().__init__(settings)
        self._db, self._key, self._clock = db, key, clock
        self._signed_seq = 0
        try:
            if not _up_to_date(db):
                upgrade(db, "audit", AUDIT_MIGRATIONS)
        except StoreUnavailable as exc:
            raise AuditUnavailable(f"the audit table cannot be prepared: {exc.reason}") from exc
        anchor = anchor or anchor_from_env()
        self._shipper = Shipper(anchor) if anchor else None
        self._writer.start()

    def _write(self, events: list[dict[str, Any]]) -> list[int]:
        for _ in range(_RETRIES):
            try:
                # One appender at a time across all processes: the chain is a single total order.
                return self._db.serialized_sync("deskgate.audit_log", lambda tx: self._insert(tx, events))
            except StoreUnavailable as exc:
                if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                    continue  # another writer appended after our read: seal again on the new head
                raise AuditUnavailable(f"the audit log cannot be written: {exc.reason}") from exc
        raise AuditUnavailable("the audit log stayed too contended to commit")

    def _flush_handle(self) -> None:
        return None

    def _flush(self, handle: None) -> None:
        pass  # the commit in `_write` was the flush

    def _insert(self, tx: Tx, events: list[dict[str, Any]]) -> list[int]:
        row = tx.one(_HEAD)
        seq, head = (int(row[0]), str(row[1])) if row else (0, GENESIS)
        first, now, rows = seq + 1, self._clock(), []
        for event in events:
            seq += 1
            record, line = seal(event, seq, head, now)
            head = record["hash"]
            rows.append((seq, head, line[:-1].decode("ascii")))
        tx.executemany("INSERT INTO audit_log (seq, hash, record) VALUES (?, ?, ?)", rows)
        return list(range(first, seq + 1))

    def _checkpoint(self, why: str) -> None:
        try:
            row = self._db.read_sync(lambda tx: tx.one(_HEAD))
            if not row or int(row[0]) == self._signed_seq:
                return
            seq, head = int(row[0]), str(row[1])
            line = make_checkpoint(self._key, seq, head, self._clock(), why)
            self._db.write_sync(lambda tx: tx.execute(
                "INSERT INTO audit_checkpoints (seq, line) VALUES (?, ?) ON CONFLICT (seq) DO NOTHING",
                (seq, line[:-1].decode("ascii")),
            ))
        except StoreUnavailable as exc:
            raise AuditUnavailable(exc.reason) from exc
        self._unsigned, self._signed_seq = 0, seq
        if self._shipper:
            self._shipper.ship(line)

    def _stopped(self) -> None:
        if self._shipper:
            self._shipper.close()


def _up_to_date(db: Database) -> bool:
    """True when every audit migration is recorded; read-only, so it needs no DDL privilege."""

    def read(tx: Tx) -> bool:
        if not _exists(tx, "schema_migrations"):
            return False
        row = tx.one("SELECT MAX(version) FROM schema_migrations WHERE component = 'audit'")
        return row is not None and row[0] is not None and int(row[0]) >= AUDIT_MIGRATIONS[-1].version

    return db.read_sync(read)


def verify_postgres(db: Database, public: Ed25519PublicKey, *, anchor: Path | None = None) -> Report:
    """`verify` over the audit table: same protocol, same report; places are `audit_log seq N`."""
    report = Report(kid=key_id(public))
    rows = db.read_sync(lambda tx: tx.query("SELECT seq, line FROM audit_checkpoints ORDER BY seq"))
    local = [(int(seq), _json_or_none(line)) for seq, line in rows]
    signed = signed_heads(report, public, [("audit_checkpoints seq", local), *anchor_source(anchor)])
    whole = scan(report, signed, _table_lines(db))
    check_truncation(report, signed, whole)
    return report


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _table_lines(db: Database) -> Iterator[tuple[str, bytes]]:
    for seq, record in table_rows(db):
        yield f"audit_log seq {seq}", record.encode("ascii", errors="replace") + b"\n"


def has_table(db: Database) -> bool:
    """Whether this database holds the audit chain (without creating anything)."""
    return db.read_sync(lambda tx: _exists(tx, "audit_log"))


def _exists(tx: Tx, table: str) -> bool:
    row = tx.one("SELECT to_regclass(?)", (table,))
    return row is not None and row[0] is not None


def _page(sql: str, bound: int, tx: Tx) -> list[Row]:
    """One page of the audit table past `bound` (the direction is in `sql`)."""
    return tx.query(sql, (bound, _PAGE))


def table_rows(db: Database, *, after: int = 0) -> Iterator[tuple[int, str]]:
    """(seq, stored record) after `after`, oldest first; one short read transaction per page."""
    while True:
        page = db.read_sync(partial(_page, "SELECT seq, record FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
                                    after))
        yield from ((int(seq), str(record)) for seq, record in page)
        if len(page) < _PAGE:
            return
        after = int(page[-1][0])


# -- reading for people (`deskgate audit tail | export | report`), as `reader` does for the files --

def table_records(db: Database, *, after: int = 0) -> Iterator[dict[str, Any]]:
    """Every record after seq `after`, oldest first. Reading is not verifying: a row that is not a
    JSON object is skipped here and named by `verify_postgres`."""
    return _parsed(table_rows(db, after=after))


def last_table_records(db: Database, count: int, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The last `count` records that pass `keep`, oldest first (reads newest pages first)."""
    found: list[dict[str, Any]] = []
    before = 2**63 - 1  # above any seq (BIGINT)
    while len(found) < count:
        page = db.read_sync(partial(_page, "SELECT seq, record FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                                    before))
        found += [r for r in _parsed(page) if keep(r)][:count - len(found)]
        if len(page) < _PAGE:
            break
        before = int(page[-1][0])
    return found[::-1]


def follow_table(db: Database, wait: Callable[[], None], *, after_seq: int = 0) -> Iterator[dict[str, Any]]:
    """Yield each record with seq > `after_seq` as any process appends it; `wait` when nothing is new."""
    while True:
        fresh = list(table_rows(db, after=after_seq))
        if not fresh:
            wait()
            continue
        after_seq = fresh[-1][0]
        yield from _parsed(fresh)


def _parsed(rows: Iterable[tuple[int, str]]) -> Iterator[dict[str, Any]]:
    for _, text in rows:
        record = _json_or_none(text)
        if isinstance(record, dict):
            yield record
