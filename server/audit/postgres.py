"""The audit chain in PostgreSQL, for several server processes writing one log.

One total order across processes: `seq` is the table's primary key and each batch reads the head
and inserts after it in one SERIALIZABLE transaction, so two processes can never both write
seq N (the loser's transaction fails and is retried on the new head): no forks, no gaps.
Group commit is per process (`batching`): one transaction, hence one WAL flush, per batch.
Durability is PostgreSQL's commit (keep `synchronous_commit = on` for this role).

Records are stored as their canonical JSON line, so `verify` applies the same checks as to the
files. The application role needs only SELECT and INSERT on both tables:

    GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO deskgate_app;

and the checkpoints are shipped to an external anchor exactly as for the file log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
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
from deskgate.server.store.db import Database, Tx
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
            except pg_errors.UniqueViolation:
                continue  # another process appended after our read: seal again on the new head
            except StoreUnavailable as exc:
                raise AuditUnavailable(f"the audit log cannot be written: {exc.reason}") from exc
        raise AuditUnavailable("the audit log stayed too contended to commit")

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
    after = 0
    while True:
        page = db.read_sync(lambda tx, a=after: tx.query(
            "SELECT seq, record FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (a, _PAGE)
        ))
        for seq, record in page:
            yield f"audit_log seq {seq}", record.encode("ascii", errors="replace") + b"\n"
        if len(page) < _PAGE:
            return
        after = int(page[-1][0])
