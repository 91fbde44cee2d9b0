"""Shared fixtures: the async backend, and a real database on each engine.

`database` runs a test once on SQLite and once on PostgreSQL. PostgreSQL runs only when
`DESKGATE_TEST_DATABASE_URL` is set (`.ci/run` sets it); each test gets a fresh schema there, and
a fresh file on SQLite. No test ever mocks a database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deskgate.server.store.db import Database, SqliteDatabase

PG_URL = os.environ.get("DESKGATE_TEST_DATABASE_URL")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _pg_database() -> Iterator[Database]:
    import psycopg

    from deskgate.server.store.postgres import PostgresDatabase

    assert PG_URL is not None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    db = PostgresDatabase(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
    try:
        yield db
    finally:
        db.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A real, empty database on each engine."""
    yield from (_sqlite_database(tmp_path) if request.param == "sqlite" else _pg_or_skip())


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    """For what only SQLite does (the file audit log's engine)."""
    yield from _sqlite_database(tmp_path)


@pytest.fixture
def pg_database() -> Iterator[Database]:
    """For what only PostgreSQL does (the shared audit table, roles, several processes)."""
    yield from _pg_or_skip()


def _sqlite_database(tmp_path: Path) -> Iterator[Database]:
    db = SqliteDatabase(tmp_path / "state.db")
    yield db
    db.close()


def _pg_or_skip() -> Iterator[Database]:
    if not PG_URL:
        pytest.skip("PostgreSQL: DESKGATE_TEST_DATABASE_URL is not set (.ci/run sets it)")
    yield from _pg_database()
