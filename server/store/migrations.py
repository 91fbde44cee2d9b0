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


def current_version(db: Database, component: str) -> int:
    def read(tx: Tx) -> int:
        tx.execute(_LEDGER)
        row = tx.one("SELECT MAX(version) FROM schema_migrations WHERE component = ?", (component,))
        return int(row[0]) if row and row[0] is not None else 0

    return db.write_sync(read)


def upgrade(db: Database, component: str, migrations: list[Migration]) -> list[Migration]:
    """Apply every migration newer than the database's version; return what was applied."""
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)):
        raise ValueError(f"{component}: migration versions must be unique and ascending")
    applied: list[Migration] = []
    for migration in migrations:

        def apply(tx: Tx, m: Migration = migration) -> bool:
            tx.execute(_LEDGER)
            done = tx.one(
                "SELECT 1 FROM schema_migrations WHERE component = ? AND version = ?", (component, m.version)
            )
            if done:
                return False
            for statement in _statements(m.sql):
                tx.execute(statement)
            tx.execute(
                "INSERT INTO schema_migrations (component, version, name, applied_at) VALUES (?, ?, ?, ?)",
                (component, m.version, m.name, int(time.time())),
            )
            return True

        if db.write_sync(apply):
            applied.append(migration)
    return applied
