"""Log a person in for the CLI the way a person does: `deskgate users add`, then `deskgate login`.

Tests that decide approvals from the command line use `login_as(name)`: the person is enrolled once
per state directory (their enrolment kept here, as their phone would keep the TOTP secret) and the
CLI credential under $DESKGATE_HOME is theirs until the next `login_as`.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

from typer.testing import CliRunner

from deskgate.server.cli import app as cli
from deskgate.server.people.factors import totp_code
from deskgate.server.settings import Paths

_ENROLLED: dict[tuple[str, str], tuple[str, str]] = {}


def enrol(name: str, role: str = "approver") -> tuple[str, str]:
    """`deskgate users add`: the person's (password, TOTP secret), read from its two printed lines."""
    key = (str(Paths.from_env().home), name)
    if key not in _ENROLLED:
        added = CliRunner().invoke(cli, ["users", "add", name, "--role", role])
        assert added.exit_code == 0, added.output
        password_line, uri = added.stdout.splitlines()
        assert password_line.startswith("password: ") and uri.startswith("otpauth://totp/")
        _ENROLLED[key] = (password_line.removeprefix("password: "), parse_qs(urlparse(uri).query)["secret"][0])
    return _ENROLLED[key]


def login_as(name: str, role: str = "approver") -> None:
    """`deskgate login` as `name` (enrolled on first use). A code is used once, so a second login within
    the same 30 s step types the next step's code, as the drift window allows."""
    password, secret = enrol(name, role)
    output = ""
    for at in (time.time(), time.time() + 30):
        result = CliRunner().invoke(cli, ["login", "--name", name, "--password", password,
                                          "--code", totp_code(secret, at)])
        if result.exit_code == 0:
            return
        output = result.output
    raise AssertionError(f"login as {name} failed: {output}")
