"""`deskgate breakers ...`: see and reset tripped circuit breakers.

A tripped breaker (the money breaker: refunds + credits per hour) keeps the affected tools in the
assist tier until an admin resets it here. A reset is appended to the audit log before it answers.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.errors import NotFound
from deskgate.server.policy.approvals import principal
from deskgate.server.settings import Paths, database_url, load_settings
from deskgate.server.store.db import open_database
from deskgate.server.store.state import StateStore

app = typer.Typer(help="List and reset tripped circuit breakers.", no_args_is_help=True)


def _store(paths: Paths) -> StateStore:
    store = StateStore(open_database(database_url(), paths.state_db))
    store.upgrade()
    return store


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """Tripped breakers (none listed: all closed)."""
    with cli_errors():
        store = _store(Paths.from_env())
        try:
            if as_json:
                typer.echo(json.dumps([{"breaker": name, "tripped_at": iso(tripped_at), "reason": reason}
                                       for name, tripped_at, reason in store.breakers.list_sync()], indent=2))
                return
            table = Table(Column("breaker", no_wrap=True), "tripped at", "reason")
            for name, tripped_at, reason in store.breakers.list_sync():
                table.add_row(name, iso(tripped_at), reason)
            Console().print(table)
        finally:
            store.close()


@app.command()
def reset(
    name: Annotated[str, typer.Argument(help="The breaker, e.g. money.")],
    as_: Annotated[str, typer.Option("--as", help="Your name, for the audit record.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Re-arm a tripped breaker: the affected tools return to their policy tiers."""
    with cli_errors():
        admin = principal(as_)
        paths = Paths.from_env()
        store = _store(paths)
        try:
            tripped = {row[0]: row for row in store.breakers.list_sync()}
            if name not in tripped:
                raise NotFound(f"breaker {name!r} is not tripped", code="breaker_not_tripped")
            if not yes:
                typer.confirm(f"Reset breaker {name!r} (tripped: {tripped[name][2]})?", abort=True)
            store.breakers.reset_sync(name)
            record_admin(paths, load_settings(paths), "breaker.reset", breaker=name, principal=admin,
                         tripped_at=tripped[name][1], trip_reason=tripped[name][2], at=int(time.time()))
        finally:
            store.close()
        typer.echo(f"{name} reset")
