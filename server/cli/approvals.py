"""`deskgate approvals ...`: the human side of the assist tier.

An approver sees the exact call (`show` prints its arguments: that is what they approve), then
approves or denies it under their own name (`--as`), which must differ from the session that
asked. Every decision is appended to the audit log as an admin record before the command answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.policy.approvals import Approvals, principal
from deskgate.server.settings import Paths, database_url, load_settings
from deskgate.server.store.db import open_database
from deskgate.server.store.state import StateStore

app = typer.Typer(help="List, inspect, approve and deny calls waiting for a human approver.", no_args_is_help=True)

As = Annotated[str, typer.Option("--as", help="Your name as the approver (not the agent that asked).")]


@contextmanager
def open_approvals() -> Iterator[tuple[Paths, Approvals]]:
    with cli_errors():
        paths = Paths.from_env()
        store = StateStore(open_database(database_url(), paths.state_db))
        try:
            store.upgrade()
            approvals = Approvals(store.db)
            approvals.upgrade()
            yield paths, approvals
        finally:
            store.close()


@app.command("list")
def list_(everything: Annotated[bool, typer.Option("--all", help="Include decided and expired ones.")] = False) -> None:
    """Approvals waiting for a decision (oldest first)."""
    with open_approvals() as (_, approvals):
        now = int(time.time())
        # An id is copied into the next command: never wrapped.
        table = Table(Column("id", no_wrap=True, min_width=15), "state", "tool", "summary", "requested by", "expires")
        for a in approvals.list_sync(now=now, everything=everything):
            table.add_row(a.id, a.state_at(now), a.tool, a.summary, a.sub, iso(a.expires_at))
        Console().print(table)


@app.command()
def show(approval_id: Annotated[str, typer.Argument(help="The approval id, e.g. AP-3F9A2B7C1D0E.")]) -> None:
    """The exact call an approval would run, with its arguments, as JSON."""
    with open_approvals() as (_, approvals):
        approval = approvals.get_sync(approval_id)
        shown = {**approval.public(int(time.time())), "arguments": approval.arguments,
                 "args_digest": approval.args_digest, "policy_version": approval.policy_version}
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))


@app.command()
def approve(
    approval_id: Annotated[str, typer.Argument(help="The approval id.")],
    as_: As,
    reason: Annotated[str, typer.Option(help="Why (optional for an approval).")] = "",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Approve the call; with the two-person rule, the second approver completes it."""
    _decide(approval_id, principal_or_exit(as_), True, reason, yes)


@app.command()
def deny(
    approval_id: Annotated[str, typer.Argument(help="The approval id.")],
    as_: As,
    reason: Annotated[str, typer.Option(help="Why (required, the agent reads it).")],
) -> None:
    """Deny the call; it will never run."""
    _decide(approval_id, principal_or_exit(as_), False, reason, True)


def principal_or_exit(name: str) -> str:
    with cli_errors():
        return principal(name)


def _decide(approval_id: str, approver: str, approve: bool, reason: str, yes: bool) -> None:
    with open_approvals() as (paths, approvals):
        now = int(time.time())
        if approve and not yes:
            pending = approvals.get_sync(approval_id)
            typer.confirm(f"Approve {pending.id}: {pending.summary}?", abort=True)
        decided = approvals.decide_sync(approval_id, approver, approve, reason, now=now)
        state = decided.state_at(now)
        record_admin(paths, load_settings(paths), f"approval.{'approve' if approve else 'deny'}",
                     approval_id=decided.id, principal=approver, tool=decided.tool, args_digest=decided.args_digest,
                     requested_by=decided.sub, sid=decided.sid, state=state, reason=reason or None,
                     policy_version=decided.policy_version)
        waiting = decided.required - len(decided.approvers)
        note = f" (waiting for {waiting} more approver)" if state == "pending" and approve else ""
        typer.echo(f"{decided.id} {state}{note}")
