"""PostgreSQL engine for `Database`: a psycopg 3 connection pool, the same SQL as SQLite.

Write transactions run at SERIALIZABLE isolation and are retried on serialization failures, so
the counters, redemptions and idempotency records that SQLite protects with its single writer
stay exact across any number of server processes. Retries back off with full jitter: when many
calls hit one hot row (the money breaker's hour, one confirmation), only one commits per round,
and retrying at once would make the losers collide again until they ran out of attempts.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from deskgate.server.errors import StoreUnavailable
from deskgate.server.store.db import Database, Row, Tx

T = TypeVar("T")
_PLACEHOLDER = re.compile(r"\?")
_RETRIES = 60
_BACKOFF_CAP_SECONDS = 0.05  # with 60 attempts, at most ~3 s of waiting before StoreUnavailable


def _pg(sql: str) -> str:
    return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))


class _PgTx:
    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(_pg(sql), tuple(params)).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_pg(sql), [tuple(r) for r in rows])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self._conn.execute(_pg(sql), tuple(params)).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self._conn.execute(_pg(sql), tuple(params)).fetchone()


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 16) -> None:
        self._url = url
        self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False,
                                    kwargs={"autocommit": False})
        try:
            self._pool.open(wait=True, timeout=15)
        except Exception as exc:  # psycopg_pool raises PoolTimeout, a plain Exception subclass
            raise StoreUnavailable(f"cannot reach PostgreSQL at {self.describe()}") from exc

    def _run(self, fn: Callable[[Tx], T], isolation: psycopg.IsolationLevel) -> T:
        for attempt in range(_RETRIES):
            try:
                with self._pool.connection() as conn:
                    conn.isolation_level = isolation
                    with conn.transaction():
                        return fn(_PgTx(conn))
            except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
                if attempt == _RETRIES - 1:
                    raise StoreUnavailable("the database stayed too contended to commit") from None
                # In a worker thread, never on the event loop (see `Database.write`).
                time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, 0.001 * 2**attempt)))  # noqa: S311 - jitter
            except psycopg.OperationalError as exc:
                raise StoreUnavailable("the database could not complete the operation") from exc
            except psycopg.Error as exc:
                # A refused statement (a constraint, a missing privilege, a bad migration): the
                # transaction rolled back. Same error as on SQLite; the cause stays on __cause__.
                raise StoreUnavailable("the database refused the operation") from exc
        raise AssertionError("unreachable")

    def read_sync(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, psycopg.IsolationLevel.READ_COMMITTED)

    def write_sync(self, fn: Callable[[Tx], T]) -> T:
        return self._run(fn, psycopg.IsolationLevel.SERIALIZABLE)

    def serialized_sync(self, name: str, fn: Callable[[Tx], T]) -> T:
        # READ COMMITTED, so that every statement after the lock sees what the previous holder committed.
        def locked(tx: Tx) -> T:
            tx.one("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))
            return fn(tx)

        return self._run(locked, psycopg.IsolationLevel.READ_COMMITTED)

    def close(self) -> None:
        self._pool.close()

    @property
    def url(self) -> str:
        """The connection URL, credentials included: pass it on (a second pool), never log it."""
        return self._url

    def describe(self) -> str:
        parts = urlsplit(self._url)
        return f"postgresql://{parts.hostname or ''}:{parts.port or 5432}{parts.path}"
