"""`deskgate keys ...`: rotate the token signing key and list the keys that still verify; rotate the
audit checkpoint key."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deskgate.scopes.keys import SigningKeys
from deskgate.server.audit.keys import KEY_ENV, AuditKey
from deskgate.server.audit.log import AuditLog
from deskgate.server.cli.common import actor, cli_errors, iso, record_admin
from deskgate.server.errors import AuditUnavailable
from deskgate.server.settings import Paths, Settings, database_url, load_settings

app = typer.Typer(help="Rotate and list the token signing keys.", no_args_is_help=True)


def _keys() -> tuple[Paths, Settings, SigningKeys]:
    paths = Paths.from_env()
    settings = load_settings(paths)
    return paths, settings, SigningKeys(paths, settings.tokens)


@app.command()
def rotate() -> None:
    """Sign new tokens with a new key; the old key verifies until every token it signed has expired."""
    with cli_errors():
        paths, settings, keys = _keys()
        previous = keys.current_kid
        record = keys.rotate()
        record_admin(paths, settings, "keys.rotated", kid=record.kid, previous=previous)
        typer.echo(f"new signing key {record.kid} in {keys.where()}")
        for old in keys.records()[1:]:
            typer.echo(f"key {old.kid} is retired and verifies until {iso(keys.verifying_until(old))}")


@app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """List the keys that still verify tokens (public halves only) and where the current one lives."""
    with cli_errors():
        _, _, keys = _keys()
        records = keys.records()
        current = keys.current_kid
        where = keys.where()
    if as_json:
        typer.echo(json.dumps({"current_key_lives_in": where, "keys": [{
            "kid": k.kid, "state": "current" if k.kid == current else "retired", "created_at": iso(k.created_at),
            "retired_at": iso(k.retired_at) if k.retired_at else None,
            "verifies_until": iso(keys.verifying_until(k)) if k.retired_at else None, "private_half": k.storage,
        } for k in records]}, indent=2))
        return
    table = Table("kid", "state", "created (UTC)", "retired (UTC)", "verifies until (UTC)", "private half")
    for k in records:
        table.add_row(k.kid, "current" if k.kid == current else "retired", iso(k.created_at), iso(k.retired_at),
                      iso(keys.verifying_until(k)) if k.retired_at else "-", k.storage)
    Console(soft_wrap=True).print(table)
    typer.echo(f"current key lives in {where}")


@app.command("rotate-audit")
def rotate_audit() -> None:
    """Sign audit checkpoints with a new key: the old key signs a handover naming the new one, which
    `deskgate audit verify` follows from the first key (audit.pub). Running servers switch before
    their next checkpoint."""
    with cli_errors():
        if os.environ.get(KEY_ENV):
            raise AuditUnavailable(f"the audit key comes from {KEY_ENV}: rotate it there and restart the servers")
        if database_url():
            raise AuditUnavailable("audit key rotation is not supported on PostgreSQL yet (docs/OPERATIONS.md)")
        paths = Paths.from_env()
        log = AuditLog(paths.audit_dir, load_settings(paths).audit)
        try:
            new = AuditKey.generate()
            # Announced in the chain first, so the handover checkpoint signs the record of it.
            log.append_sync({"kind": "admin", "action": "audit_key.rotated", "actor": actor(), "kid": new.kid})
            previous = log.rotate_key(new)
        finally:
            log.close()
        typer.echo(f"audit checkpoints are now signed with key {new.kid} (was {previous}); "
                   f"audit.pub still holds the first key, where verification starts")
