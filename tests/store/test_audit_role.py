"""The application role on the audit table: it may append and read the chain, never rewrite it.

The owner (the role that runs `deskgate db upgrade`) creates the tables; the role the servers run
as gets only the grants below, created here and dropped after the test:

    GRANT USAGE ON SCHEMA <schema> TO <app>;
    GRANT SELECT ON schema_migrations TO <app>;
    GRANT SELECT, INSERT ON audit_log, audit_checkpoints TO <app>;
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from psycopg import errors as pg_errors

from deskgate.server.audit.keys import AuditKey
from deskgate.server.audit.postgres import AUDIT_MIGRATIONS, PostgresAuditLog, verify_postgres
from deskgate.server.errors import StoreUnavailable
from deskgate.server.settings import AuditSection
from deskgate.server.store.db import Database
from deskgate.server.store.migrations import upgrade
from deskgate.server.store.postgres import PostgresDatabase
from tests.conftest import PG_URL, _pg_database

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="PostgreSQL: DESKGATE_TEST_DATABASE_URL is not set")]


@pytest.fixture
def database() -> Iterator[Database]:
    """A fresh PostgreSQL schema (roles and grants are PostgreSQL's; SQLite keeps the chain in files)."""
    yield from _pg_database()


@pytest.fixture
def app_url(database: Database) -> Iterator[str]:
    """The owner creates the audit tables; a fresh login role gets only INSERT and SELECT on them."""
    assert PG_URL is not None
    upgrade(database, "audit", AUDIT_MIGRATIONS)
    row = database.read_sync(lambda tx: tx.one("SELECT current_schema()"))
    assert row is not None
    schema, role = str(row[0]), f"deskgate_app_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(f'GRANT SELECT ON "{schema}".schema_migrations TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT ON "{schema}".audit_log, "{schema}".audit_checkpoints TO "{role}"')
    parts = urlsplit(database.url)  # type: ignore[attr-defined]  # the fixture's fresh schema
    host = parts.netloc.rsplit("@", 1)[-1]
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}@{host}"))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')  # its grants, so that the role can go
            conn.execute(f'DROP ROLE "{role}"')


def _event(i: int) -> dict[str, object]:
    return {"kind": "call", "tool": "get_order", "status": "ok", "request_id": f"r-{i}"}


def test_the_application_role_appends_and_verifies_but_cannot_update_or_delete(app_url: str, tmp_path: Path) -> None:
    """As the app role: a server's audit log starts without DDL, appends, signs and verifies; UPDATE,
    DELETE and TRUNCATE are refused by PostgreSQL and the chain still verifies."""
    key = AuditKey.generate()
    app = PostgresDatabase(app_url)
    try:
        log = PostgresAuditLog(app, key, AuditSection(checkpoint_every_records=10))
        seqs = [log.append_sync(_event(i)) for i in range(25)]
        log.close()
        assert seqs == list(range(1, 26))
        report = verify_postgres(app, key.public)
        assert (report.ok, report.records, report.unsigned) == (True, 25, 0) and report.checkpoints >= 2

        for rewrite in ("UPDATE audit_log SET record = record WHERE seq = 3", "DELETE FROM audit_log WHERE seq > 20",
                        "TRUNCATE audit_log", "DELETE FROM audit_checkpoints",
                        "UPDATE audit_checkpoints SET line = line"):
            with pytest.raises(StoreUnavailable) as refused:
                app.write_sync(lambda tx, sql=rewrite: tx.execute(sql))
            assert isinstance(refused.value.__cause__, pg_errors.InsufficientPrivilege), rewrite
        assert verify_postgres(app, key.public).records == 25

        public = tmp_path / "audit.pub"
        public.write_bytes(key.public.public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESKGATE_")}
        env.update(DESKGATE_HOME=str(tmp_path), DESKGATE_DATABASE_URL=app_url)
        done = subprocess.run([sys.executable, "-m", "deskgate.server.cli", "audit", "verify", "--public-key",
                               str(public)], env=env, capture_output=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode().startswith("OK: 25 records in the audit_log table, last seq 25")
    finally:
        app.close()
