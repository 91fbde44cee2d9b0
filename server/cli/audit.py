"""`deskgate audit verify | tail | export` and `deskgate report`: thin commands over `deskgate.server.audit`.

Every command reads the deployment's one chain and never writes to it: the JSON Lines log at
`Paths.from_env().audit_dir`, or, when `DESKGATE_DATABASE_URL` is set, the shared `audit_log` table
that every server process appends to (the audit public key still comes from the audit directory,
or `--public-key`). Exit codes: 0 ok, 1 the log failed verification or cannot be read, 2 bad
usage. Records reach the terminal only through `safe_text` (or as ASCII-escaped JSON), so nothing
an agent wrote can drive the terminal.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from deskgate.server.audit.checkpoints import ANCHOR_FILE_ENV
from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.postgres import (
    follow_table,
    has_table,
    last_table_records,
    table_records,
    verify_postgres,
)
from deskgate.server.audit.reader import (
    CSV_COLUMNS,
    Filter,
    csv_row,
    export_jsonl,
    follow,
    iter_records,
    last_records,
    safe_text,
    tail_line,
)
from deskgate.server.audit.report import Scorecard, approval_summary, scorecard, ticket_summary
from deskgate.server.audit.verify import Report, total_bytes, verify
from deskgate.server.cli.common import record_admin
from deskgate.server.errors import AuditUnavailable, DeskgateError, StoreUnavailable
from deskgate.server.policy.approvals import Approvals
from deskgate.server.settings import Paths, database_url, load_settings, parse_duration
from deskgate.server.store.db import Database, open_database
from deskgate.tools.backend.sql import SqlSupportBackend

app = typer.Typer(help="Verify, follow and export the audit log.", no_args_is_help=True)
_err = Console(stderr=True, highlight=False)
_FOLLOW_POLL_SECONDS = 0.5


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


Keep = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class _FileLog:
    """The JSON Lines log under the state directory (SQLite deployments)."""

    directory: Path

    def records(self) -> Iterator[dict[str, Any]]:
        return iter_records(self.directory)

    def last(self, count: int, keep: Keep) -> list[dict[str, Any]]:
        return last_records(self.directory, count, keep)

    def follow(self, wait: Callable[[], None], after_seq: int) -> Iterator[dict[str, Any]]:
        return follow(self.directory, wait, after_seq=after_seq)

    def verify(self, public: Ed25519PublicKey, anchor: Path | None) -> Report:
        with Progress(TextColumn("verifying"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                      console=_err, transient=True, disable=not _err.is_terminal) as progress:
            task = progress.add_task("verify", total=total_bytes(self.directory))
            return verify(self.directory, public, anchor=anchor, on_progress=lambda n: progress.advance(task, n))


@dataclass(frozen=True)
class _TableLog:
    """The shared chain in PostgreSQL (`DESKGATE_DATABASE_URL`): one table for every server process."""

    db: Database

    def records(self) -> Iterator[dict[str, Any]]:
        return table_records(self.db)

    def last(self, count: int, keep: Keep) -> list[dict[str, Any]]:
        return last_table_records(self.db, count, keep)

    def follow(self, wait: Callable[[], None], after_seq: int) -> Iterator[dict[str, Any]]:
        return follow_table(self.db, wait, after_seq=after_seq)

    def verify(self, public: Ed25519PublicKey, anchor: Path | None) -> Report:
        return verify_postgres(self.db, public, anchor=anchor)


@contextmanager
def _open_log() -> Iterator[_FileLog | _TableLog]:
    """The deployment's chain: the PostgreSQL table when DESKGATE_DATABASE_URL is set, else the files."""
    paths = Paths.from_env()
    url = database_url()
    if not url:
        if not paths.audit_dir.is_dir():
            _err.print(f"no audit log at {safe_text(str(paths.audit_dir))} (run `deskgate init`, or set "
                       "DESKGATE_HOME)", markup=False)
            raise typer.Exit(1)
        yield _FileLog(paths.audit_dir)
        return
    try:
        db = open_database(url, paths.state_db)
    except StoreUnavailable as exc:
        raise _fail(exc.reason) from None
    try:
        if not has_table(db):
            raise _fail(f"no audit table in {db.describe()} (start the server once, or run `deskgate db upgrade`)")
        yield _TableLog(db)
    except StoreUnavailable as exc:  # the database went away half-way: say so, exit 1
        raise _fail(exc.reason) from None
    finally:
        db.close()


def _fail(reason: str) -> typer.Exit:
    _err.print(f"error: {safe_text(reason)}", markup=False)
    return typer.Exit(1)


def parse_since(text: str) -> datetime:
    """A date, an ISO 8601 time (UTC if no offset), or a duration back from now (`24h`, `7d`)."""
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter("use a date (2025-01-31), a time (2025-01-31T09:00:00Z) or a duration (24h)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Since = Annotated[datetime | None, typer.Option(parser=parse_since, metavar="WHEN",
                                                help="Date, ISO time or duration back from now (24h).")]


@app.command("verify")
def verify_command(
    anchor: Annotated[Path | None, typer.Option(envvar=ANCHOR_FILE_ENV, help="External checkpoints copy.")] = None,
    public_key: Annotated[Path | None, typer.Option(help="Audit public key (PEM) to trust.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Check the whole chain, its checkpoints and signatures; name the first bad record."""
    with _open_log() as log:
        try:
            public = load_public_key(Paths.from_env().audit_dir, public_key)
        except AuditUnavailable as exc:
            raise _fail(exc.reason) from None
        report = log.verify(public, anchor)
    if as_json:
        typer.echo(json.dumps({
            "ok": report.ok, "records": report.records, "files": report.files, "last_seq": report.last_seq,
            "head": report.head, "kid": report.kid, "checkpoints": report.checkpoints, "rotations": report.rotations,
            "unsigned": report.unsigned, "torn": report.torn, "problems": [str(p) for p in report.problems],
        }, ensure_ascii=True))
    else:
        for note in report.torn:
            typer.echo(f"note: {safe_text(note)} holds a torn write set aside after a crash (recorded in the log)")
        if report.ok:
            place = f"{report.files} files" if isinstance(log, _FileLog) else "the audit_log table"
            typer.echo(
                f"OK: {report.records} records in {place}, last seq {report.last_seq}, "
                f"head {report.head[:16]}; {report.checkpoints} checkpoints verified from key {report.kid}"
                f"{f' through {report.rotations} key rotations' if report.rotations else ''}; "
                f"{report.unsigned} records after the last checkpoint"
            )
        else:
            typer.echo(f"FAILED after {report.records} good records:")
            for problem in report.problems:
                typer.echo(f"  {safe_text(str(problem))}")
    if not report.ok:
        _record_failure(str(report.problems[0]), report.records)
        raise typer.Exit(1)


def _record_failure(problem: str, good_records: int) -> None:
    """A failed verification is itself recorded (the `audit.verify_failed` webhook event), if the log takes it."""
    paths = Paths.from_env()
    try:
        record_admin(paths, load_settings(paths), "audit.verify_failed", problem=problem[:300],
                     good_records=good_records)
    except DeskgateError as exc:
        _err.print(f"note: the failure could not be recorded in the log: {safe_text(exc.reason)}", markup=False)


@app.command("tail")
def tail_command(
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many records to show first.")] = 20,
    follow_: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new records.")] = False,
    tool: Annotated[str | None, typer.Option(help="Only this tool.")] = None,
    sub: Annotated[str | None, typer.Option(help="Only this subject (agent).")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (ok, denied, ...).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print records as JSON lines.")] = False,
) -> None:
    """Show the latest records; with -f, follow the log (across rotations, or the shared table)."""
    keep = Filter(tool=tool, sub=sub, status=status)
    with _open_log() as log:
        shown = log.last(lines, keep) if lines else []
        for record in shown:
            _print_record(record, as_json)
        if not follow_:
            return
        after = max((r["seq"] for r in shown if isinstance(r.get("seq"), int)), default=_last_seq(log))
        try:
            for record in log.follow(lambda: time.sleep(_FOLLOW_POLL_SECONDS), after):
                if keep(record):
                    _print_record(record, as_json)
        except KeyboardInterrupt:
            return


def _last_seq(log: _FileLog | _TableLog) -> int:
    last = log.last(1, lambda _: True)
    return last[0]["seq"] if last and isinstance(last[0].get("seq"), int) else 0


def _print_record(record: dict[str, Any], as_json: bool) -> None:
    typer.echo(next(export_jsonl([record])) if as_json else tail_line(record))


@app.command("export")
def export_command(
    since: Since = None,
    until: Since = None,
    format_: Annotated[ExportFormat, typer.Option("--format", help="jsonl or csv.")] = ExportFormat.JSONL,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")] = None,
) -> None:
    """Export records (optionally a time window) for a SIEM, as JSON Lines or CSV."""
    with _open_log() as log:
        records = filter(Filter(since=since, until=until), log.records())
        out = output.open("w", encoding="ascii", newline="") if output else sys.stdout
        try:
            if format_ is ExportFormat.JSONL:
                for line in export_jsonl(records):
                    out.write(line + "\n")
            else:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(CSV_COLUMNS)
                writer.writerows(csv_row(r) for r in records)
        finally:
            if output:
                out.close()


def report(
    since: Since = None,
    until: Since = None,
    format_: Annotated[ReportFormat, typer.Option("--format", help="text or json.")] = ReportFormat.TEXT,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
) -> None:
    """The scorecard: calls by tool and status, actions, escalations (agent / policy), denials, failed
    authentications, confirmations, approvals, money by day, reason code, agent and tier, p50/p95 latency -
    from the audit log; approvals from the state store and, where the ticket system reports them, resolved
    rate, recontact within 7 days and time to resolution."""
    with _open_log() as log:
        card = scorecard(filter(Filter(since=since, until=until), _with_progress(log.records())))
    window = (None if since is None else int(since.timestamp()), None if until is None else int(until.timestamp()))
    card.approvals, card.outcomes = _beside_the_log(*window)
    if as_json or format_ is ReportFormat.JSON:
        typer.echo(json.dumps(card.as_dict(), ensure_ascii=True, indent=2))
        return
    _print_scorecard(card)


def _beside_the_log(since: int | None, until: int | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The approvals requested in the window (state store), and the ticket outcomes when the ticket system is
    the demo's, which reports them (`TicketMetrics`); a helpdesk does not. Read only: a store that is not
    there or not readable gives None for its part, and nothing is created or upgraded to say so."""
    paths, url = Paths.from_env(), database_url()
    if not url and not paths.state_db.exists():
        return None, None
    state_db = open_database(url, paths.state_db)
    try:
        approvals: dict[str, Any] | None = None
        now = int(time.time())
        with suppress(StoreUnavailable):
            approvals = approval_summary(Approvals(state_db).list_sync(now=now, everything=True), now=now,
                                         since=since, until=until)
        if load_settings(paths).backends.tickets.kind != "sql" or not (url or paths.backend_db.exists()):
            return approvals, None
        backend_db = state_db if url else open_database(None, paths.backend_db)
        try:
            with suppress(StoreUnavailable):
                outcomes = SqlSupportBackend(backend_db).ticket_outcomes(since=since, until=until)
                return approvals, ticket_summary(outcomes)
            return approvals, None
        finally:
            if backend_db is not state_db:
                backend_db.close()
    finally:
        state_db.close()


def _with_progress(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    with Progress(TextColumn("reading the log"), BarColumn(), TextColumn("{task.completed} records"),
                  console=_err, transient=True, disable=not _err.is_terminal) as progress:
        task = progress.add_task("read", total=None)
        for record in records:
            progress.advance(task)
            yield record


def _print_scorecard(card: Scorecard) -> None:
    out = Console(highlight=False, soft_wrap=True)
    data = card.as_dict()
    out.print(f"deskgate report: {card.records} records from {card.first_ts or '-'} to {card.last_ts or '-'}",
              markup=False)
    statuses = sorted({s for c in card.calls.values() for s in c})
    calls = Table(title="Calls by tool and status")
    calls.add_column("tool")
    for s in statuses:
        calls.add_column(s, justify="right")
    calls.add_column("executed", justify="right")
    calls.add_column("p50 ms", justify="right")
    calls.add_column("p95 ms", justify="right")
    for tool in sorted(card.calls):
        lat = card.latency(tool)
        calls.add_row(_cell(tool), *(str(card.calls[tool].get(s, 0)) for s in statuses),
                      str(card.executed.get(tool, 0)), *(_ms(v) for v in (lat or (None, None))))
    out.print(calls)
    overall = card.latency()
    summary = Table(title="Summary", show_header=False)
    summary.add_row("actions executed", str(sum(card.executed.values())))
    summary.add_row("escalations", str(sum(card.escalations.values())))
    summary.add_row("denials", str(sum(card.denials.values())))
    summary.add_row("confirmations issued / redeemed", f"{card.confirmations_issued} / {card.confirmations_redeemed}")
    summary.add_row("intents without an outcome", str(card.open_intents))
    p50, p95 = overall or (None, None)
    summary.add_row("latency p50 / p95 ms", f"{_ms(p50)} / {_ms(p95)}")
    out.print(summary)
    if card.denials:
        denials = Table(title="Denials by code")
        denials.add_column("code")
        denials.add_column("count", justify="right")
        for code, count in card.denials.most_common():
            denials.add_row(_cell(code), str(count))
        out.print(denials)
    money = Table(title="Paid out per day (refunds and credits)")
    money.add_column("day")
    money.add_column("currency")
    money.add_column("amount", justify="right")
    for row in data["paid_out"]:
        money.add_row(_cell(row["day"]), _cell(row["currency"]), row["amount"])
    out.print(money)
    for by, title in (("by_reason_code", "reason code"), ("by_agent", "agent"), ("by_tier", "tier")):
        split = Table(title=f"Paid out by {title}")
        key = by.removeprefix("by_")
        for column in (title, "currency", "amount"):
            split.add_column(column, justify="right" if column == "amount" else "left")
        for row in data["money"][by]:
            split.add_row(_cell(row[key]), _cell(row["currency"]), row["amount"])
        out.print(split)
    more = Table(title="Escalations, authentication, approvals, outcomes", show_header=False)
    sources = data["escalations_by_source"]
    more.add_row("escalations by the agent / by policy", f"{sources['agent']} / {sources['policy']}")
    failed = data["failed_authentications"]
    more.add_row("failed authentications", ", ".join(f"{safe_text(c)}: {n}" for c, n in failed.items()) or "0")
    approvals = data["approvals"]
    if approvals is not None:
        more.add_row("approvals requested / approved / denied / expired / pending",
                     " / ".join(str(approvals[k]) for k in ("requested", "approved", "denied", "expired", "pending")))
        waited = approvals["time_to_decision_s"]
        more.add_row("approval time to decision p50 / p95 s",
                     f"{_ms(waited['p50'])} / {_ms(waited['p95'])}" if waited else "-")
    outcomes = data["ticket_outcomes"]
    if outcomes is None:
        more.add_row("ticket outcomes", "not reported by the ticket system")
    else:
        more.add_row("tickets / resolved (rate)", f"{outcomes['tickets']} / {outcomes['resolved']} "
                     f"({outcomes['resolved_rate']})")
        more.add_row("recontact within 7 days (rate)", f"{outcomes['recontact_within_7d']} "
                     f"({outcomes['recontact_rate']})")
        took = outcomes["time_to_resolution_s"]
        more.add_row("time to resolution p50 / p95 s", f"{_ms(took['p50'])} / {_ms(took['p95'])}" if took else "-")
    out.print(more)


def _cell(value: str) -> Text:
    """Record data as a table cell: terminal-safe, and never parsed as rich markup."""
    return Text(safe_text(value))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
