"""`deskgate`: the admin command line. Thin commands over the same runtime the server uses.

Every failure exits non-zero with one line on stderr (`DeskgateError.diagnostics()`), never a trace.
"""

from __future__ import annotations

import sys

import typer

from deskgate.server.cli import approvals, audit, breakers, clients, keys, login, manifest, policy, setup, token, users
from deskgate.server.errors import DeskgateError

app = typer.Typer(
    name="deskgate",
    help="An MCP tool server that lets AI support agents act - refunds, cancellations, resets - safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
setup.register(app)
app.add_typer(token.app, name="token")
app.add_typer(keys.app, name="keys")
app.add_typer(approvals.app, name="approvals")
app.add_typer(breakers.app, name="breakers")
app.add_typer(audit.app, name="audit")
app.command("report")(audit.report)
app.add_typer(manifest.app, name="manifest")
app.add_typer(policy.app, name="policy")
app.add_typer(clients.app, name="clients")
app.add_typer(users.app, name="users")
app.command()(login.login)
app.command()(login.logout)


def main() -> None:
    try:
        app()
    except DeskgateError as exc:
        print(f"deskgate: {exc.diagnostics()}", file=sys.stderr)
        sys.exit(2)
