"""`deskgate approvals ...`: the human side of the assist tier.

An approver sees the exact call (`show` prints its arguments: that is what they approve), then
approves or denies it as the person logged in with `deskgate login` (password + TOTP), under the
same rules as the console (`server/people/decisions.py`). Every decision is appended to the audit
log as an admin record, with the person, before the command answers.
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
from deskgate.server.cli.login import logged_in
from deskgate.server.people.accounts import open_people
from deskgate.server.people.decisions import decide
from deskgate.server.policy.approvals import Approvals
from deskgate.server.redaction.redactor import redact_text
from deskgate.server.settings import Paths, database_url, load_settings
from deskgate.server.store.db import open_database
from deskgate.server.store.state import StateStore

app = typer.Typer(help="List, inspect, approve and deny calls waiting for a human approver.", no_args_is_help=True)


@contextmanager
def open_approvals() -> Iterator[tuple[Paths, Approvals, StateStore]]:
    with cli_errors():
        paths = Paths.from_env()
        store = StateStore(open_database(database_url(), paths.state_db))
        try:
            store.upgrade()
            approvals = Approvals(store.db)
            approvals.upgrade()
            yield paths, approvals, store
        finally:
            store.close()


@app.command("list")
def list_(everything: Annotated[bool, typer.Option("--all", help="Include decided and expired ones.")] = False,
          as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False) -> None:
    """Approvals waiting for a decision (oldest first)."""
    with open_approvals() as (_, approvals, _store):
        now = int(time.time())
        if as_json:
            typer.echo(json.dumps([a.public(now) for a in approvals.list_sync(now=now, everything=everything)],
                                  indent=2))
            return
        # An id is copied into the next command: never wrapped.
        table = Table(Column("id", no_wrap=True, min_width=15), "state", "tool", "summary", "requested by", "expires")
        for a in approvals.list_sync(now=now, everything=everything):
            table.add_row(a.id, a.state_at(now), a.tool, a.summary, a.sub, iso(a.expires_at))
        Console().print(table)


@app.command()
def show(approval_id: Annotated[str, typer.Argument(help="The approval id, e.g. AP-3F9A2B7C1D0E.")]) -> None:
    """The exact call an approval would run, with its arguments, as JSON."""
    with open_approvals() as (_, approvals, _store):
        approval = approvals.get_sync(approval_id)
        shown = {**approval.public(int(time.time())), "arguments": approval.arguments,
                 "args_digest": approval.args_digest, "policy_version": approval.policy_version}
        typer.echo(json.dumps(shown, indent=2, sort_keys=True))


@app.command()
def approve(
    approval_id: Annotated[str, typer.Argument(help="The approval id.")],
    reason: Annotated[str, typer.Option(help="Why (optional for an approval).")] = "",
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Approve the call as the logged-in person; with the two-person rule, a second person completes it."""
    _decide(approval_id, True, reason, yes)


@app.command()
def deny(
    approval_id: Annotated[str, typer.Argument(help="The approval id.")],
    reason: Annotated[str, typer.Option(help="Why (required, the agent reads it).")],
) -> None:
    """Deny the call as the logged-in person; it will never run."""
    _decide(approval_id, False, reason, True)


def _decide(approval_id: str, approve: bool, reason: str, yes: bool) -> None:
    with open_approvals() as (paths, approvals, store):
        settings = load_settings(paths)
        people = open_people(store.db, settings, paths)
        person = logged_in(paths, people).person
        now = int(time.time())
        if approve and not yes:
            pending = approvals.get_sync(approval_id)
            typer.confirm(f"Approve {pending.id}: {pending.summary}?", abort=True)
        decided = decide(people, approvals, person, approval_id, approve=approve, reason=reason, now=now)
        state = decided.state_at(now)
        record_admin(paths, settings, f"approval.{'approve' if approve else 'deny'}", channel="cli",
                     approval_id=decided.id, principal=person.name, tool=decided.tool, args_digest=decided.args_digest,
                     requested_by=decided.sub, sid=decided.sid, state=state, reason=redact_text(reason) or None,
                     policy_version=decided.policy_version)
        waiting = decided.required - len(decided.approvers)
        note = f" (waiting for {waiting} more approver)" if state == "pending" and approve else ""
        typer.echo(f"{decided.id} {state}{note}")
