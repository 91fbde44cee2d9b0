"""`deskgate keys ...`: rotate the token signing key and list the keys that still verify."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from deskgate.scopes.keys import SigningKeys
from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.settings import Paths, Settings, load_settings

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
def list_keys() -> None:
    """List the keys that still verify tokens (public halves only) and where the current one lives."""
    with cli_errors():
        _, _, keys = _keys()
        records = keys.records()
        current = keys.current_kid
        where = keys.where()
    table = Table("kid", "state", "created (UTC)", "retired (UTC)", "verifies until (UTC)", "private half")
    for k in records:
        table.add_row(k.kid, "current" if k.kid == current else "retired", iso(k.created_at), iso(k.retired_at),
                      iso(keys.verifying_until(k)) if k.retired_at else "-", k.storage)
    Console(soft_wrap=True).print(table)
    typer.echo(f"current key lives in {where}")
