"""Which audit log a process writes to: one place, so the server and admin commands share one chain.

On SQLite deployments it is the JSON Lines log under `$DESKGATE_HOME/audit`; when
`DESKGATE_DATABASE_URL` is set it is the shared PostgreSQL table, so every server process and every
admin command appends to the same single chain.
"""

from __future__ import annotations

from deskgate.server.audit.batching import GroupCommit
from deskgate.server.audit.keys import load_or_create_key
from deskgate.server.audit.log import AuditLog
from deskgate.server.audit.postgres import PostgresAuditLog
from deskgate.server.durable import private_dir
from deskgate.server.settings import Paths, Settings, database_url
from deskgate.server.store.db import Database, open_database


def open_audit_log(paths: Paths, settings: Settings, db: Database | None = None) -> GroupCommit:
    """The deployment's audit log. `db` is the state database when the caller already holds one."""
    url = database_url()
    if not url:
        return AuditLog(paths.audit_dir, settings.audit)
    private_dir(paths.audit_dir)
    return PostgresAuditLog(db or open_database(url, paths.state_db), load_or_create_key(paths.audit_dir),
                            settings.audit)
