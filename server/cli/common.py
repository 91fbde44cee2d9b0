"""What every admin command shares: how errors end a command, how times print, the admin audit record."""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from deskgate.server.audit.open import open_audit_log
from deskgate.server.errors import DeskgateError
from deskgate.server.settings import Paths, Settings, database_url
from deskgate.server.store.db import open_database


@contextmanager
def cli_errors() -> Iterator[None]:
    """Our errors become one line on stderr and exit code 1, never a traceback."""
    try:
        yield
    except DeskgateError as exc:
        typer.echo(f"error: {exc.reason}", err=True)
        raise typer.Exit(1) from None


def iso(ts: int | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


def actor() -> str:
    """The operating-system user running an admin command, for the audit record."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def record_admin(paths: Paths, settings: Settings, action: str, **fields: Any) -> None:
    """Append one admin record to the audit log and make it durable before the command answers."""
    url = database_url()
    db = open_database(url, paths.state_db) if url else None
    audit = open_audit_log(paths, settings, db)
    try:
        audit.append_sync({"kind": "admin", "action": action, "actor": actor(), **fields})
    finally:
        audit.close()
        if db is not None:
            db.close()


