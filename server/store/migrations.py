"""Versioned schema migrations, applied in place (`deskgate db upgrade`, and at start-up).

Each component (the state store, the demo backend) owns an ordered list of `Migration`s. A
migration is applied once, inside one transaction, and recorded in `schema_migrations`; an
existing database is upgraded from whatever version it holds. Never edit a released migration:
append a new one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from deskgate.server.store.db import Database, Tx


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str  # statements separated by ';' on their own line ends, portable across both engines


_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (component, version)
)"""


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";\n") if s.strip()]


def _applied(tx: Tx, dialect: str, component: str) -> set[int]:
    """Versions applied so far, read without DDL (a role without CREATE rights can still start)."""
    if dialect == "sqlite":
        exists = tx.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    else:
        exists = tx.one("SELECT to_regclass('schema_migrations')")
        exists = exists if exists and exists[0] is not None else None
    if not exists:
        return set()
    return {int(r[0]) for r in tx.query("SELECT version FROM schema_migrations WHERE component = ?", (component,))}


def current_version(db: Database, component: str) -> int:
    return max(db.read_sync(lambda tx: _applied(tx, db.dialect, component)), default=0)


def upgrade(db: Database, component: str, migrations: list[Migration]) -> list[Migration]:
    """Apply every migration newer than the database's version; return what was applied.

    Nothing pending: a read, no DDL. Otherwise one migration per transaction, all under one named
    lock, so replicas starting together on an empty database upgrade it exactly once.
    """
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"{component}: migration versions must be unique and ascending")
    if set(versions) <= db.read_sync(lambda tx: _applied(tx, db.dialect, component)):
        return []
    applied: list[Migration] = []
    for migration in migrations:

        def apply(tx: Tx, m: Migration = migration) -> bool:
            tx.execute(_LEDGER)
            if m.version in _applied(tx, db.dialect, component):
                return False
            for statement in _statements(m.sql):
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                (component, m.version, m.name, int(time.time())),
            )
            return True

        if db.serialized_sync("deskgate.migrations", apply):
            applied.append(migration)
    return applied
