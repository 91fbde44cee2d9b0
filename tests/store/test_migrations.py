"""Schema migrations on both engines: in place, from the first schema onward, once, all or nothing.

The first tests drive `upgrade()` with a small example component whose second and third
migrations change a table that already holds rows, as a real release would; the next ones
check every shipped component from each of its released schemas; the last ones run
`deskgate db upgrade` as a separate process against an existing deployment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from deskgate.scopes.clients import OAUTH_MIGRATIONS
from deskgate.server.audit.postgres import AUDIT_MIGRATIONS
from deskgate.server.errors import StoreUnavailable
from deskgate.server.policy.approvals import POLICY_MIGRATIONS
from deskgate.server.store.db import Database, SqliteDatabase, Tx
from deskgate.server.store.migrations import Migration, current_version, upgrade
from deskgate.server.store.postgres import PostgresDatabase
from deskgate.server.store.state import LIMIT_MIGRATIONS, OWNERSHIP_MIGRATIONS, STATE_MIGRATIONS
from deskgate.tools.backend.ledger import INTENT_MIGRATIONS
from deskgate.tools.backend.schema import BACKEND_MIGRATIONS, CHANNEL_MIGRATIONS, PAYMENT_MIGRATIONS

CLI = [sys.executable, "-m", "deskgate.server.cli"]

EXAMPLE = [
    Migration(1, "notes", """
CREATE TABLE example_notes (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL
)"""),
    Migration(2, "note authors", """
ALTER TABLE example_notes ADD COLUMN author TEXT;
UPDATE example_notes SET author = 'unknown' WHERE author IS NULL"""),
    Migration(3, "notes by author", """
CREATE INDEX example_notes_author ON example_notes (author)"""),
]
# Every shipped component, in the order the runtime upgrades them. The audit table exists only on
# PostgreSQL (SQLite deployments keep the audit chain in files).
COMPONENTS = {"state": STATE_MIGRATIONS, "ownership": OWNERSHIP_MIGRATIONS, "limits": LIMIT_MIGRATIONS,
              "policy": POLICY_MIGRATIONS,
              "backend": BACKEND_MIGRATIONS,
              "audit": AUDIT_MIGRATIONS}


def ledger(db: Database, component: str | None = None) -> list[tuple[str, int, str, int]]:
    sql = "SELECT component, version, name, applied_at FROM schema_migrations"
    where = (" WHERE component = ?", (component,)) if component else ("", ())
    return db.read_sync(lambda tx: tx.query(sql + where[0] + " ORDER BY component, version", where[1]))


def notes(db: Database) -> list[tuple[object, ...]]:
    return db.read_sync(lambda tx: tx.query("SELECT * FROM example_notes ORDER BY id"))


def add_notes(tx: Tx) -> None:
    tx.executemany("INSERT INTO example_notes (id, body) VALUES (?, ?)", [("n1", "first"), ("n2", "second")])


def test_an_empty_database_gets_every_migration_in_order_with_each_version_recorded(database: Database) -> None:
    """All three apply, in order, and the ledger names each one with its version."""
    applied = upgrade(database, "example", EXAMPLE)
    assert [m.version for m in applied] == [1, 2, 3]
    assert [(c, v, n) for c, v, n, _ in ledger(database, "example")] == [
        ("example", 1, "notes"), ("example", 2, "note authors"), ("example", 3, "notes by author")]
    assert current_version(database, "example") == 3


def test_an_existing_database_is_upgraded_in_place_and_keeps_its_rows(database: Database) -> None:
    """A database at the first schema, holding rows, gets only the newer migrations; the rows stay."""
    upgrade(database, "example", EXAMPLE[:1])
    database.write_sync(add_notes)
    applied = upgrade(database, "example", EXAMPLE)
    assert [m.version for m in applied] == [2, 3]
    assert notes(database) == [("n1", "first", "unknown"), ("n2", "second", "unknown")]
    assert current_version(database, "example") == 3


def test_applying_the_migrations_twice_changes_nothing(database: Database) -> None:
    """The second upgrade applies nothing: same ledger (same timestamps), same rows."""
    upgrade(database, "example", EXAMPLE)
    database.write_sync(add_notes)
    before = (ledger(database), notes(database))
    assert upgrade(database, "example", EXAMPLE) == []
    assert (ledger(database), notes(database)) == before


def test_a_migration_that_fails_half_way_leaves_no_trace_and_can_be_applied_once_fixed(database: Database) -> None:
    """Its first statements are rolled back with the failing one and its version is not recorded;
    the migrations before it stay applied."""
    broken = Migration(2, "half", """
CREATE TABLE example_half (id TEXT PRIMARY KEY);
INSERT INTO example_notes (id, body) VALUES ('n3', 'written by a migration that fails');
INSERT INTO example_no_such_table (id) VALUES ('x')""")
    upgrade(database, "example", EXAMPLE[:1])
    database.write_sync(add_notes)
    with pytest.raises(StoreUnavailable):
        upgrade(database, "example", [EXAMPLE[0], broken])
    with pytest.raises(StoreUnavailable):
        database.read_sync(lambda tx: tx.query("SELECT * FROM example_half"))
    assert notes(database) == [("n1", "first"), ("n2", "second")]
    assert [v for _, v, _, _ in ledger(database, "example")] == [1]
    assert [m.version for m in upgrade(database, "example", EXAMPLE)] == [2, 3]


def test_migration_versions_must_be_unique_and_ascending(database: Database) -> None:
    """A list with a repeated or out-of-order version is refused before anything is applied."""
    for wrong in ([EXAMPLE[1], EXAMPLE[0]], [EXAMPLE[0], EXAMPLE[0]]):
        with pytest.raises(ValueError, match="unique and ascending"):
            upgrade(database, "example", wrong)
    assert current_version(database, "example") == 0


@pytest.mark.parametrize(("component", "released"),
                         [(c, k) for c, ms in COMPONENTS.items() for k in range(len(ms)) if c != "audit"])
def test_every_shipped_component_upgrades_from_each_released_schema_to_the_latest(
        database: Database, component: str, released: int) -> None:
    """From a database holding the first `released` migrations (0: empty), the rest apply once, in order."""
    _upgrades_from(database, component, released)


@pytest.mark.parametrize("released", range(len(COMPONENTS["audit"])))
def test_the_audit_table_upgrades_from_each_released_schema_to_the_latest(pg_database: Database,
                                                                          released: int) -> None:
    """The audit table (PostgreSQL only: SQLite deployments keep the chain in files) upgrades the same way."""
    _upgrades_from(pg_database, "audit", released)


def _upgrades_from(database: Database, component: str, released: int) -> None:
    migrations = COMPONENTS[component]
    if component == "policy":  # the approval votes extend the state store's approvals
        upgrade(database, "state", STATE_MIGRATIONS)
    upgrade(database, component, migrations[:released])
    assert upgrade(database, component, migrations) == migrations[released:]
    assert [v for _, v, _, _ in ledger(database, component)] == [m.version for m in migrations]
    assert upgrade(database, component, migrations) == []


def test_replicas_starting_together_on_an_empty_database_all_upgrade_it_once(database: Database) -> None:
    """Four stores on their own connections (as four server processes started at once) upgrade one
    empty database concurrently: none fails, and each migration is applied and recorded once."""
    replicas = [PostgresDatabase(database.url) if database.dialect == "postgresql"  # type: ignore[attr-defined]
                else SqliteDatabase(database.path) for _ in range(4)]  # type: ignore[attr-defined]
    start, failures = threading.Barrier(len(replicas)), []

    def boot(db: Database) -> None:
        start.wait()
        try:
            upgrade(db, "state", STATE_MIGRATIONS)
            upgrade(db, "example", EXAMPLE)
        except StoreUnavailable as exc:
            failures.append(exc)

    threads = [threading.Thread(target=boot, args=(db,)) for db in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in replicas:
        db.close()
    assert failures == []
    assert [(c, v) for c, v, _, _ in ledger(database)] == [
        ("example", 1), ("example", 2), ("example", 3), *(("state", m.version) for m in STATE_MIGRATIONS)]


# -- `deskgate db upgrade`, as a separate process ---------------------------------------------------

def _cli_env(database: Database, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKGATE_")}
    env.update(DESKGATE_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    if database.dialect == "postgresql":
        env["DESKGATE_DATABASE_URL"] = database.url  # type: ignore[attr-defined]  # the fixture's fresh schema
    return env


def _backend_database(database: Database, home: Path) -> Database:
    """Where `deskgate` keeps the demo backend: its own file on SQLite, the same database on PostgreSQL."""
    return SqliteDatabase(home / "backend.db") if database.dialect == "sqlite" else database


def _db_upgrade(database: Database, home: Path) -> None:
    done = subprocess.run([*CLI, "db", "upgrade"], env=_cli_env(database, home), capture_output=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert b"schemas up to date" in done.stderr


def test_db_upgrade_brings_an_existing_deployment_to_the_latest_schema_in_place(
        database: Database, tmp_path: Path) -> None:
    """A deployment at the first schema with live rows (a revocation, an issued token) is upgraded
    by `deskgate db upgrade`; the rows stay, and every component records its latest version."""
    assert database.dialect == "postgresql" or getattr(database, "path", None) == tmp_path / "state.db"
    backend = _backend_database(database, tmp_path)
    upgrade(database, "state", STATE_MIGRATIONS[:1])
    upgrade(backend, "backend", BACKEND_MIGRATIONS[:1])
    database.write_sync(lambda tx: tx.execute(
        "INSERT INTO revocations (kind, value, revoked_at, reason) VALUES ('sub', 'agent-7', 1700000000, 'left')"))
    _db_upgrade(database, tmp_path)
    expected = {"state": STATE_MIGRATIONS, "ownership": OWNERSHIP_MIGRATIONS, "limits": LIMIT_MIGRATIONS,
                "policy": POLICY_MIGRATIONS, "oauth": OAUTH_MIGRATIONS}
    if database.dialect == "postgresql":
        expected |= {"backend": BACKEND_MIGRATIONS, "audit": AUDIT_MIGRATIONS, "intents": INTENT_MIGRATIONS,
                     "payments": PAYMENT_MIGRATIONS, "ticket_channels": CHANNEL_MIGRATIONS}
    else:
        backend_components = {"backend": BACKEND_MIGRATIONS, "intents": INTENT_MIGRATIONS,
                              "payments": PAYMENT_MIGRATIONS, "ticket_channels": CHANNEL_MIGRATIONS}
        assert [(c, v) for c, v, _, _ in ledger(backend)] == sorted(
            (c, m.version) for c, ms in backend_components.items() for m in ms)
    assert {(c, v) for c, v, _, _ in ledger(database)} == {(c, m.version) for c, ms in expected.items() for m in ms}
    assert database.read_sync(lambda tx: tx.query("SELECT kind, value, reason FROM revocations")) == [
        ("sub", "agent-7", "left")]
    if backend is not database:
        backend.close()


def test_db_upgrade_twice_is_a_no_op(database: Database, tmp_path: Path) -> None:
    """The second run applies nothing: the ledger, timestamps included, is unchanged."""
    _db_upgrade(database, tmp_path)
    before = ledger(database)
    _db_upgrade(database, tmp_path)
    assert ledger(database) == before and before
