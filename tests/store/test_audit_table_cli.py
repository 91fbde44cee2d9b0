"""`deskgate audit verify | tail | export` and `deskgate report` on the shared PostgreSQL table.

With DESKGATE_DATABASE_URL set the commands read the `audit_log` table every server process
appends to (the key stays in the audit directory), and behave as they do on the files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from deskgate.server.audit import postgres
from deskgate.server.audit.keys import load_or_create_key
from deskgate.server.audit.postgres import PostgresAuditLog, follow_table, last_table_records
from deskgate.server.cli.audit import app, report
from deskgate.server.store.db import Database
from tests.conftest import PG_URL, _pg_database

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not PG_URL, reason="PostgreSQL: DESKGATE_TEST_DATABASE_URL is not set")]
_root = typer.Typer()
_root.add_typer(app, name="audit")
_root.command("report")(report)


@pytest.fixture
def pg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A fresh PostgreSQL schema, and the environment of a deployment that keeps its chain there."""
    for database in _pg_database():
        monkeypatch.setenv("DESKGATE_HOME", str(tmp_path))
        monkeypatch.setenv("DESKGATE_DATABASE_URL", database.url)  # type: ignore[attr-defined]
        yield database


def run(*args: str) -> Result:
    return CliRunner().invoke(_root, list(args), catch_exceptions=False)


def _write(db: Database, home: Path, events: list[dict[str, Any]]) -> None:
    (home / "audit").mkdir(mode=0o700, exist_ok=True)
    log = PostgresAuditLog(db, load_or_create_key(home / "audit"))
    for event in events:
        log.append_sync(event)
    log.close()


def _call(tool: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"kind": "call", "tool": tool, "status": status, "sub": "agent-1", **extra}


def test_verify_passes_on_the_table_and_names_a_rewritten_row(pg: Database, tmp_path: Path) -> None:
    """OK with the count and signed head; after an UPDATE by a superuser, exit 1 naming its seq."""
    _write(pg, tmp_path, [_call("get_order", "ok")] * 4)
    good = run("audit", "verify")
    assert good.exit_code == 0
    assert good.output.startswith("OK: 4 records in the audit_log table, last seq 4")
    pg.write_sync(lambda tx: tx.execute("UPDATE audit_log SET record = replace(record, 'get_order', 'get_ordex')"
                                        " WHERE seq = 2"))
    bad = run("audit", "verify", "--json")
    assert bad.exit_code == 1
    assert json.loads(bad.output)["problems"][0].startswith("audit_log seq 2:")


def test_commands_without_an_audit_table_exit_one_with_a_hint(pg: Database) -> None:
    """A database the server never started on: exit 1 and what to run, never a trace; nothing created."""
    for command in (["audit", "verify"], ["audit", "tail"], ["audit", "export"], ["report"]):
        result = run(*command)
        assert result.exit_code == 1
        assert "no audit table" in result.output and "deskgate db upgrade" in result.output
    assert pg.read_sync(lambda tx: tx.one("SELECT to_regclass('audit_log')")) == (None,)


def test_tail_shows_the_newest_matching_records_oldest_first_across_pages(
        pg: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-n 3 of the denied refunds, read back page by page (pages of 2 here), in chain order."""
    monkeypatch.setattr(postgres, "_PAGE", 2)
    events = [_call("issue_refund", "denied", code=f"c{i}") if i % 2 else _call("get_order", "ok") for i in range(12)]
    _write(pg, tmp_path, events)
    result = run("audit", "tail", "--tool", "issue_refund", "--status", "denied", "-n", "3", "--json")
    assert result.exit_code == 0
    assert [json.loads(line)["code"] for line in result.output.splitlines()] == ["c7", "c9", "c11"]
    assert last_table_records(pg, 0, lambda _: True) == []


def test_follow_yields_what_any_writer_appends_next(pg: Database, tmp_path: Path) -> None:
    """Each time the follower runs dry the test appends through another log: it sees exactly the new records."""
    _write(pg, tmp_path, [_call("get_order", "ok")] * 3)
    rounds = iter([2, 5])

    class Stop(Exception):
        pass

    def wait() -> None:
        try:
            _write(pg, tmp_path, [_call("get_ticket", "ok")] * next(rounds))
        except StopIteration:
            raise Stop from None

    seen: list[int] = []
    with pytest.raises(Stop):
        for record in follow_table(pg, wait, after_seq=3):
            seen.append(record["seq"])
    assert seen == list(range(4, 11))


def test_export_and_report_read_the_table(pg: Database, tmp_path: Path) -> None:
    """JSONL export is the stored rows, in order; --since in the future exports nothing; the report counts."""
    _write(pg, tmp_path, [_call("get_order", "ok", latency_ms=10), _call("issue_refund", "denied", code="cap")])
    stored = "".join(f"{r[0]}\n" for r in pg.read_sync(lambda tx: tx.query(
        "SELECT record FROM audit_log ORDER BY seq")))
    assert run("audit", "export").output == stored
    assert run("audit", "export", "--since", "2999-01-01").output == ""
    card = json.loads(run("report", "--format", "json").output)
    assert card["calls"] == {"get_order": {"ok": 1}, "issue_refund": {"denied": 1}}
    assert card["denials"] == {"cap": 1}
