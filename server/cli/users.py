"""`deskgate users ...`: console accounts, managed from the server's shell (as `token` is).

`add` and `reset` print the one-time enrolment and nothing else on stdout, one item per line:

    password: <initial password>
    otpauth://totp/<issuer>:<name>?secret=...&issuer=...

Nothing prints them again: the password is kept only as an argon2id hash. Every change is audited.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.people.accounts import ROLES, People, open_people
from deskgate.server.people.factors import Enrolment
from deskgate.server.settings import Paths, Settings, database_url, load_settings
from deskgate.server.store.db import open_database

app = typer.Typer(help="Console accounts: add, list, disable, enable and reset people.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The person's account name, e.g. anna.")]


@dataclass
class _Accounts:
    paths: Paths
    settings: Settings
    people: People

    def record(self, action: str, **fields: object) -> None:
        record_admin(self.paths, self.settings, action, **fields)


@contextmanager
def open_accounts() -> Iterator[_Accounts]:
    """The people repository of this deployment (also used by `deskgate login` and `approvals`)."""
    with cli_errors():
        paths = Paths.from_env()
        settings = load_settings(paths)
        paths.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = open_database(database_url(), paths.state_db)
        try:
            yield _Accounts(paths, settings, open_people(db, settings, paths))
        finally:
            db.close()


def _print_enrolment(enrolment: Enrolment) -> None:
    typer.echo(f"password: {enrolment.password}")
    typer.echo(enrolment.totp_uri)


@app.command()
def add(name: Name,
        role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")]) -> None:
    """Create a person; prints their initial password and TOTP enrolment URI (once)."""
    with open_accounts() as accounts:
        enrolment = accounts.people.add(name, role, now=int(time.time()))
        accounts.record("person.add", person=name, role=role)
        _print_enrolment(enrolment)


@app.command()
def reset(name: Name) -> None:
    """New password and TOTP secret for a person (prints them once); their sessions end."""
    with open_accounts() as accounts:
        enrolment = accounts.people.reset(name, now=int(time.time()))
        accounts.record("person.reset", person=name)
        _print_enrolment(enrolment)


@app.command()
def disable(name: Name) -> None:
    """The person can no longer log in; their console and CLI sessions end now."""
    with open_accounts() as accounts:
        accounts.people.set_disabled(name, True, now=int(time.time()))
        accounts.record("person.disable", person=name)
        typer.echo(f"{name} disabled")


@app.command()
def enable(name: Name) -> None:
    """Let a disabled person log in again."""
    with open_accounts() as accounts:
        accounts.people.set_disabled(name, False, now=int(time.time()))
        accounts.record("person.enable", person=name)
        typer.echo(f"{name} enabled")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """Every person, with role and state (never a secret)."""
    with open_accounts() as accounts:
        people = accounts.people.list()
        if as_json:
            typer.echo(json.dumps([{"name": p.name, "role": p.role, "disabled": p.disabled,
                                    "created_at": p.created_at} for p in people], indent=2))
            return
        table = Table("name", "role", "state", "created")
        for p in people:
            table.add_row(p.name, p.role, "disabled" if p.disabled else "active", iso(p.created_at))
        Console().print(table)
