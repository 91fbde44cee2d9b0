"""`deskgate login` / `deskgate logout`: a person's short-lived credential for the command line.

`login` checks the same two factors as the console, with the same throttling, and stores a CLI
session under `$DESKGATE_HOME/console-credential` (mode 0600; only its SHA-256 is in the database).
Commands that decide something in a person's name (`approvals approve|deny`) read it with
`logged_in()`, and `token issue` links the sessions it issues to the person logged in
(`login_if_any()`); it expires after `console.cli_credential_ttl` (15 minutes by default), and disabling or
resetting the person ends it at once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from deskgate.server.cli.users import open_accounts
from deskgate.server.errors import AuthenticationError
from deskgate.server.people.accounts import ConsoleSession, People
from deskgate.server.settings import Paths

_FILE = "console-credential"


def credential_path(paths: Paths) -> Path:
    return paths.home / _FILE


def login(
    name: Annotated[str, typer.Option(prompt=True, help="Your console account name.")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, help="Your password (prompted).")],
    code: Annotated[str, typer.Option(prompt="TOTP code", help="The 6-digit code of your authenticator.")],
) -> None:
    """Log in as a person for the CLI (password + TOTP); the credential lasts console.cli_credential_ttl."""
    with open_accounts() as accounts:
        try:
            secret, session = accounts.people.login(name, password, code, address="cli", now=int(time.time()),
                                                    kind="cli")
        except AuthenticationError as exc:
            accounts.record("person.login_failed", person=name[:64], channel="cli", code=exc.code)
            raise
        path = credential_path(accounts.paths)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"person": session.person.name, "secret": secret, "expires_at": session.expires_at}, out)
        os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
        accounts.record("person.login", person=session.person.name, channel="cli")
        typer.echo(f"logged in as {session.person.name} ({session.person.role}) until "
                   f"{time.strftime('%H:%M:%S UTC', time.gmtime(session.expires_at))}")


def logout() -> None:
    """End the CLI credential of `deskgate login`."""
    with open_accounts() as accounts:
        path = credential_path(accounts.paths)
        if path.exists():
            accounts.people.logout(json.loads(path.read_text())["secret"])
            path.unlink()
        typer.echo("logged out")


def logged_in(paths: Paths, people: People) -> ConsoleSession:
    """The person of the stored CLI credential, checked against the database now."""
    path = credential_path(paths)
    try:
        stored = json.loads(path.read_text())
        secret = stored["secret"]
    except (OSError, ValueError, KeyError, TypeError):
        raise AuthenticationError("log in first: deskgate login", code="cli_not_logged_in") from None
    if path.stat().st_mode & 0o077:
        raise AuthenticationError(f"{path} is readable by others; log in again", code="cli_credential_mode")
    return people.session(secret, now=int(time.time()), kind="cli")


def login_if_any(paths: Paths, people: People) -> ConsoleSession | None:
    """The logged-in person, or None when nobody logged in on this home. A credential that is there but
    no longer live refuses (never silently acts as nobody): log in again, or log out."""
    if not credential_path(paths).exists():
        return None
    try:
        return logged_in(paths, people)
    except AuthenticationError as exc:
        raise AuthenticationError(f"{exc.reason}: deskgate login again, or deskgate logout to act as the shell",
                                  code=exc.code) from None
