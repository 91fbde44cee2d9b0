"""The audit chain in PostgreSQL: one total order for several processes, and the same tamper checks."""

from __future__ import annotations

import threading

import pytest

from deskgate.server.audit.keys import AuditKey
from deskgate.server.audit.postgres import PostgresAuditLog, verify_postgres
from deskgate.server.errors import AuditUnavailable
from deskgate.server.settings import AuditSection
from deskgate.server.store.postgres import PostgresDatabase


@pytest.fixture
def pg(pg_database):
    return pg_database


def _event(i: int) -> dict:
    return {"kind": "call", "tool": "lookup_order", "status": "ok", "request_id": f"r-{i}"}


def test_the_audit_table_refuses_sqlite(sqlite_database) -> None:
    """On SQLite the shared table is refused with a clear reason, not half-supported."""
    with pytest.raises(AuditUnavailable, match="needs PostgreSQL"):
        PostgresAuditLog(sqlite_database, AuditKey.generate())


def test_two_server_processes_append_one_gapless_chain(pg) -> None:
    """Two logs on two connection pools (as two processes), 8 threads each: seqs 1..800, no fork."""
    key = AuditKey.generate()
    other_db = PostgresDatabase(pg.url)  # a second pool: another "process" on the same schema
    logs = [PostgresAuditLog(pg, key, AuditSection(checkpoint_every_records=100)),
            PostgresAuditLog(other_db, key, AuditSection(checkpoint_every_records=100))]
    seqs: list[int] = []
    lock = threading.Lock()

    def work(log: PostgresAuditLog, w: int) -> None:
        for i in range(50):
            seq = log.append_sync(_event(w * 100 + i))
            with lock:
                seqs.append(seq)

    threads = [threading.Thread(target=work, args=(logs[w % 2], w)) for w in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    other_db.close()
    assert sorted(seqs) == list(range(1, 801))
    report = verify_postgres(pg, key.public)
    assert (report.ok, report.records, report.unsigned) == (True, 800, 0)
    assert report.checkpoints >= 1


@pytest.mark.anyio
async def test_an_updated_or_deleted_row_is_caught(pg) -> None:
    """A superuser editing the table is caught like an edited file: named by seq."""
    key = AuditKey.generate()
    log = PostgresAuditLog(pg, key)
    for i in range(10):
        await log.append(_event(i))
    await log.aclose()
    assert verify_postgres(pg, key.public).ok
    pg.write_sync(lambda tx: tx.execute(
        "UPDATE audit_log SET record = replace(record, 'lookup_order', 'refund_order') WHERE seq = 4"))
    problem = verify_postgres(pg, key.public).problems[0]
    assert problem.where == "audit_log seq 4"
    pg.write_sync(lambda tx: tx.execute(
        "UPDATE audit_log SET record = replace(record, 'refund_order', 'lookup_order') WHERE seq = 4"))
    pg.write_sync(lambda tx: tx.execute("DELETE FROM audit_log WHERE seq >= 8"))
    report = verify_postgres(pg, key.public)
    assert "truncated" in report.problems[0].what
