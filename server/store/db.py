"""One small database interface, two engines: SQLite (embedded default) and PostgreSQL (scale-out).

Everything that keeps state - the state store, the demo support backend, the audit table on
PostgreSQL - talks to a `Database`. SQL is written once, in the subset both engines share, with
`?` placeholders (translated for psycopg). Work runs in a worker thread so the event loop never
blocks on a disk or a socket (SQLite: this database's own threads, see `SqliteDatabase`); `write`
transactions take the write lock up front so concurrent writers queue instead of failing half-way.

A database that cannot be reached or written raises `StoreUnavailable`: callers fail closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar

import anyio.to_thread

from deskgate.server.durable import private_dir, private_file
from deskgate.server.errors import StoreUnavailable

T = TypeVar("T")
Row = tuple[Any, ...]


class Tx(Protocol):
    """A transaction handed to the function passed to `Database.read` / `Database.write`."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...
    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...


class Database(ABC):
    dialect: Literal["sqlite", "postgresql"]

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await anyio.to_thread.run_sync(self.read_sync, fn)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        return await anyio.to_thread.run_sync(self.write_sync, fn)

    @abstractmethod
    def read_sync(self, fn: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def write_sync(self, fn: Callable[[Tx], T]) -> T: ...

    @abstractmethod
    def serialized_sync(self, name: str, fn: Callable[[Tx], T]) -> T:
        """A write transaction that runs alone among all holders of `name`, in every process.

        For appends to one total order (the audit chain): read the head, then write after it, with no
        retry storm under contention.
        """

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, without credentials (for logs and `--help`)."""


class _SqliteTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, tuple(params)).fetchone()
        return row


class _Busy(StoreUnavailable):
    """SQLite could not take a lock within the connection's busy timeout."""

    def __init__(self) -> None:
        super().__init__("the database stayed locked")


def _is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _enable_wal(conn: sqlite3.Connection, wait_seconds: float) -> None:
    """`PRAGMA journal_mode=WAL`, retried for up to `wait_seconds` while SQLite says busy.

    Switching a new database to WAL needs an exclusive lock, and SQLite answers BUSY at once
    instead of calling the busy handler: replicas opening one empty database together (a fleet
    started at once) would otherwise fail at random.
    """
    deadline, pause = time.monotonic() + wait_seconds, 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class SqliteDatabase(Database):
    """SQLite in WAL mode, one connection per worker thread, `synchronous=FULL`.

    FULL, not NORMAL: a confirmation redeemed or a token revoked just before a power cut must
    stay redeemed or revoked.

    `read` and `write` run on this database's own pool of threads, each holding its connection for
    the pool's lifetime: a hand-off costs about two thirds of `anyio.to_thread.run_sync`'s (every
    call pays one or two: revocation, backend), and no connection is left open by a worker thread
    that exited.
    """

    dialect = "sqlite"
    WORKERS = 16  # readers run side by side in WAL mode; writers queue on SQLite's lock anyway
    BUSY_TIMEOUT_MS = 30000

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        # SQLite would create the file 0644 less the umask; its -wal and -shm files take this file's mode.
        private_dir(path.parent)
        private_file(path)
        self._synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._workers = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="deskgate-sqlite")

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self._handed(self.read_sync, fn)

    async def write(self, fn: Callable[[Tx], T]) -> T:
        return await self._handed(self.write_sync, fn)

    async def _handed(self, run: Callable[[Callable[[Tx], T]], T], fn: Callable[[Tx], T]) -> T:
        answer: Handoff[T] = Handoff()
        try:
            self._workers.submit(answer.run, run, fn)
        except RuntimeError:  # the pool was shut down
            raise StoreUnavailable("the state store is closed") from None
        return await answer.settled()

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        busy_timeout_ms = self.BUSY_TIMEOUT_MS
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise StoreUnavailable("the state store is closed")
            try:
                conn = sqlite3.connect(self.path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                                       check_same_thread=False)
                _enable_wal(conn, busy_timeout_ms / 1000)
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                if _is_busy(exc):
                    raise _Busy from exc
                raise StoreUnavailable(f"cannot open the database at {self.path.name}") from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _run(self, fn: Callable[[Tx], T], begin: str) -> T:
        conn = self._conn()
        try:
            conn.execute(begin)
            try:
                result = fn(_SqliteTx(conn))
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise _Busy from exc
            raise StoreUnavailable("the database could not complete the operation") from exc

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, "BEGIN")

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, "BEGIN IMMEDIATE")

    def serialized_sync(self, name: str, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, "BEGIN IMMEDIATE")  # SQLite has one writer at a time already

    def close(self) -> None:
        self._closed = True
        self._workers.shutdown(wait=True)  # transactions in flight finish before their connection closes
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    def describe(self) -> str:
        return f"sqlite:{self.path}"


class Handoff(Generic[T]):
    """One answer from a worker thread to the coroutine waiting for it, posted straight onto its event loop.

    Cheaper than wrapping a `concurrent.futures.Future` and shielding it (about 20 us less per hand-off,
    `bench/hotpath.py`): one asyncio future, one `call_soon_threadsafe`. Created on the loop; `set_result`,
    `set_exception` or `run` is called once, from any thread.
    """

    __slots__ = ("_answer", "_drained", "_finished", "_loop")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._answer: asyncio.Future[T] = self._loop.create_future()
        self._drained: asyncio.Future[None] | None = None
        self._finished = False

    def run(self, work: Callable[[Callable[[Tx], T]], T], fn: Callable[[Tx], T]) -> None:
        """In a worker thread: `work(fn)`, its result or exception posted back."""
        try:
            result = work(fn)
        except BaseException as exc:
            self.set_exception(exc)
        else:
            self.set_result(result)

    # Named as on `concurrent.futures.Future`, so a producer can answer either kind.
    def set_result(self, result: T) -> None:
        self._post(result, None)

    def set_exception(self, exc: BaseException) -> None:
        self._post(None, exc)

    def _post(self, result: T | None, exc: BaseException | None) -> None:
        # A closed loop has no one left waiting (as `asyncio.wrap_future` does).
        if not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed in between
                self._loop.call_soon_threadsafe(self._settle, result, exc)

    def _settle(self, result: T | None, exc: BaseException | None) -> None:
        self._finished = True
        if not self._answer.done():  # a cancelled waiter has stopped listening
            if exc is not None:
                self._answer.set_exception(exc)
            else:
                self._answer.set_result(result)  # type: ignore[arg-type]
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def answer(self) -> T:
        """The answer; a waiter cancelled meanwhile stops at once (the work goes on without it)."""
        return await self._answer

    async def settled(self) -> T:
        """The answer; a waiter cancelled meanwhile still waits for the work to end before its
        cancellation goes on, as with `anyio.to_thread.run_sync`: a transaction never runs on behind
        its caller's back."""
        try:
            return await self._answer
        except asyncio.CancelledError:
            while not self._finished:
                self._drained = self._loop.create_future()
                with contextlib.suppress(asyncio.CancelledError):  # anyio re-delivers a cancellation
                    await self._drained
            raise


def open_database(url: str | None, default_sqlite: Path) -> Database:
    """`DESKGATE_DATABASE_URL` (postgresql://...) when set, else SQLite at `default_sqlite`."""
    if url:
        if url.startswith(("postgresql://", "postgres://")):
            from deskgate.server.store.postgres import PostgresDatabase

            return PostgresDatabase(url)
        raise StoreUnavailable("DESKGATE_DATABASE_URL must start with postgresql://")
    return SqliteDatabase(default_sqlite)
