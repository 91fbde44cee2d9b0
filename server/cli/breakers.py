"""`deskgate breakers ...`: see and reset tripped circuit breakers.

A tripped breaker (the money breaker: refunds + credits per hour) keeps the affected tools in the
assist tier until an admin resets it here, as the person logged in with `deskgate login` (the same
permission as the console's Reset button). A reset starts the breaker's counters afresh: the hour it
tripped on no longer counts. It is appended to the audit log, with the person, before it answers.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.cli.login import logged_in
from deskgate.server.errors import NotFound
from deskgate.server.people.accounts import open_people
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
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Re-arm a tripped breaker as the logged-in admin: the affected tools return to their policy tiers."""
    with cli_errors():
        paths = Paths.from_env()
        settings = load_settings(paths)
        store = _store(paths)
        try:
            person = logged_in(paths, open_people(store.db, settings, paths)).person
            person.require("breakers.reset")
            tripped = {row[0]: row for row in store.breakers.list_sync()}
            if name not in tripped:
                raise NotFound(f"breaker {name!r} is not tripped", code="breaker_not_tripped")
            if not yes:
                typer.confirm(f"Reset breaker {name!r} (tripped: {tripped[name][2]})?", abort=True)
            now = int(time.time())
            if not store.breakers.reset_sync(name, by=person.name, now=now):
                raise NotFound(f"breaker {name!r} is not tripped", code="breaker_not_tripped")
            record_admin(paths, settings, "breaker.reset", channel="cli", breaker=name, principal=person.name,
                         tripped_at=tripped[name][1], trip_reason=tripped[name][2], at=now)
        finally:
            store.close()
        typer.echo(f"{name} reset")
