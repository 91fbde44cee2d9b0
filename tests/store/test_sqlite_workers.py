"""SQLite work runs on the database's own threads: off the event loop, bounded, cancellation-safe."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from deskgate.server.errors import StoreUnavailable
from deskgate.server.store.db import SqliteDatabase, Tx


def _create(tx: Tx) -> None:
    tx.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")


@pytest.mark.anyio
async def test_a_cancelled_caller_waits_for_its_transaction_to_commit_before_it_stops(tmp_path: Path) -> None:
    """Cancelling the caller never leaves a transaction running behind its back: it commits, then the caller stops."""
    db = SqliteDatabase(tmp_path / "s.db")
    await db.write(_create)
    started, release = threading.Event(), threading.Event()
    seen: list[bool] = []
    finished = threading.Event()

    def slow_insert(tx: Tx) -> None:
        started.set()
        release.wait()
        tx.execute("INSERT INTO t (v) VALUES (1)")
        finished.set()

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            try:
                await db.write(slow_insert)
            except anyio.get_cancelled_exc_class():
                seen.append(finished.is_set())
                raise
            seen.append(False)  # not reached: the caller was cancelled

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as tg:
        tg.start_soon(caller, scope)
        await anyio.to_thread.run_sync(started.wait)
        scope.cancel()
        for _ in range(20):  # let a cancellation that did not wait show itself before the release
            await anyio.lowlevel.checkpoint()
        release.set()
    assert seen == [True]
    assert await db.read(lambda tx: tx.one("SELECT count(*) FROM t")) == (1,)
    db.close()


@pytest.mark.anyio
async def test_concurrent_transactions_share_a_bounded_set_of_connections(tmp_path: Path) -> None:
    """200 concurrent reads use at most one connection per worker thread, not one per call."""
    db = SqliteDatabase(tmp_path / "s.db")
    await db.write(_create)
    results: list[object] = []

    async def read() -> None:
        results.append(await db.read(lambda tx: tx.one("SELECT count(*) FROM t")))

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(read)
    assert results == [(0,)] * 200
    assert 1 <= len(db._all) <= SqliteDatabase.WORKERS
    db.close()


@pytest.mark.anyio
async def test_a_closed_database_refuses_work_with_store_unavailable(tmp_path: Path) -> None:
    """After close, reads and writes fail closed with the store's own error, not a RuntimeError."""
    db = SqliteDatabase(tmp_path / "s.db")
    await db.write(_create)
    db.close()
    with pytest.raises(StoreUnavailable):
        await db.read(lambda tx: tx.one("SELECT 1"))
    with pytest.raises(StoreUnavailable):
        await db.write(_create)


def test_opening_a_new_database_waits_for_another_connection_to_let_go_of_it(tmp_path: Path, monkeypatch) -> None:
    """Switching a database to WAL needs an exclusive lock and SQLite says BUSY at once instead of
    waiting: the connection retries (up to its busy timeout) rather than failing, which made
    replicas starting together on an empty database fail at random."""
    import sqlite3

    from deskgate.server.store import db as db_module

    blocker = sqlite3.connect(tmp_path / "s.db", isolation_level=None, check_same_thread=False)
    blocker.execute("CREATE TABLE t (v INTEGER)")
    blocker.execute("BEGIN IMMEDIATE")  # a rollback-journal database, its writer lock taken
    blocker.execute("INSERT INTO t (v) VALUES (1)")
    retried = threading.Event()
    real_sleep = db_module.time.sleep

    def noting_sleep(seconds: float) -> None:
        retried.set()
        real_sleep(seconds)

    monkeypatch.setattr(db_module.time, "sleep", noting_sleep)
    db = SqliteDatabase(tmp_path / "s.db")
    answers: list[object] = []
    reader = threading.Thread(target=lambda: answers.append(db.read_sync(lambda tx: tx.one("PRAGMA journal_mode"))))
    reader.start()
    assert retried.wait(20)  # SQLite said BUSY and the connection is waiting to retry
    blocker.execute("COMMIT")
    blocker.close()
    reader.join(20)
    assert answers == [("wal",)]
    db.close()
