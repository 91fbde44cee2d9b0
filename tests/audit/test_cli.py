"""`deskgate audit verify | tail | export` and `deskgate report`, through a CLI runner."""

from __future__ import annotations

import csv
import io
import json

import pytest
import typer
from typer.testing import CliRunner

from deskgate.server.audit.log import AuditLog
from deskgate.server.cli.audit import app, report
from deskgate.server.settings import AuditSection

_root = typer.Typer()
_root.add_typer(app, name="audit")
_root.command("report")(report)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DESKGATE_HOME", str(tmp_path))
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(_root, list(args), catch_exceptions=False)


def _log(home) -> AuditLog:
    return AuditLog(home / "audit", AuditSection())


def _write(home, events) -> None:
    log = _log(home)
    for ev in events:
        log.append_sync(ev)
    log.close()


def _call(tool: str, status: str, **extra):
    return {"kind": "call", "tool": tool, "status": status, "sub": "agent-1", **extra}


def test_verify_exits_zero_and_summarises_a_good_log(home) -> None:
    """OK, the record count, the checkpoint and the key id."""
    _write(home, [_call("lookup_order", "ok")] * 3)
    result = run("audit", "verify")
    assert result.exit_code == 0
    assert result.output.startswith("OK: 3 records in 1 files, last seq 3")


def test_verify_exits_non_zero_and_names_the_bad_record(home) -> None:
    """A modified record: exit 1, and the file:line and seq of the first bad record."""
    _write(home, [_call("lookup_order", "ok")] * 3)
    segment = home / "audit" / "audit-000001.jsonl"
    segment.write_bytes(segment.read_bytes().replace(b"lookup_order", b"lookup_ordex", 1))
    result = run("audit", "verify", "--json")
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["ok"] is False
    assert body["problems"][0].startswith("audit-000001.jsonl:1:")


def test_verify_without_an_audit_log_says_where_it_looked(home) -> None:
    """No directory: exit 1 with a hint, not a trace."""
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert "no audit log at" in result.output


def test_tail_filters_by_tool_sub_and_status(home) -> None:
    """Only matching records, newest last, -n of them."""
    _write(home, [_call("lookup_order", "ok"), _call("refund_order", "denied", code="cap"),
                  _call("refund_order", "ok", sub="agent-2"), _call("refund_order", "denied", code="scope")])
    result = run("audit", "tail", "--tool", "refund_order", "--status", "denied", "-n", "5")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["2", "4"]
    assert run("audit", "tail", "--sub", "agent-2", "--json").output.count("\n") == 1


def test_tail_never_prints_control_characters_from_a_record(home) -> None:
    """An ANSI escape or a bidi override in a reason reaches the terminal escaped."""
    _write(home, [_call("lookup_order", "denied", reason="\x1b[2J\x1b]0;owned\x07\u202egnp.exe\nfake line")])
    out = run("audit", "tail").output
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert out.count("\n") == 1
    assert "\\x1b[2J" in out and "\\u202e" in out


def test_export_jsonl_keeps_records_verifiable_and_since_filters(home) -> None:
    """JSONL export is the stored canonical form; --since after the last record exports nothing."""
    _write(home, [_call("lookup_order", "ok")] * 2)
    stored = (home / "audit" / "audit-000001.jsonl").read_text()
    assert run("audit", "export", "--format", "jsonl").output == stored
    assert run("audit", "export", "--since", "2999-01-01").output == ""
    assert run("audit", "export", "--since", "1h").output == stored


def test_export_csv_neutralises_spreadsheet_formulas(home) -> None:
    """A reason starting with '=' is exported as text; negative numbers stay numbers."""
    _write(home, [_call("lookup_order", "denied", reason='=HYPERLINK("http://x")', latency_ms=-1)])
    rows = list(csv.DictReader(io.StringIO(run("audit", "export", "--format", "csv").output)))
    assert rows[0]["reason"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["latency_ms"] == "-1"


def test_export_rejects_a_since_it_cannot_read(home) -> None:
    """Bad usage is exit 2 with a hint."""
    _write(home, [_call("lookup_order", "ok")])
    result = CliRunner().invoke(_root, ["audit", "export", "--since", "last tuesday"])
    assert result.exit_code == 2


def test_report_counts_calls_actions_money_confirmations_and_open_intents(home) -> None:
    """The scorecard's figures, from a small log with known answers."""
    refund = {"tool": "refund_order", "money": {"amount": "10.50", "currency": "EUR"}}
    _write(home, [
        _call("lookup_order", "ok", latency_ms=10),
        _call("lookup_order", "ok", latency_ms=30),
        _call("refund_order", "confirmation_required", latency_ms=5),
        {"kind": "intent", "request_id": "a", **refund},
        {"kind": "outcome", "request_id": "a", "status": "ok", "latency_ms": 50,
         "args": {"confirmation_token": "[redacted]"}, **refund},
        {"kind": "intent", "request_id": "b", **refund},  # crashed before its outcome
        _call("cancel_subscription", "escalated"),
        _call("refund_order", "denied", code="amount_cap"),
        {"kind": "admin", "action": "token_issued"},
    ])
    result = run("report", "--format", "json")
    assert result.exit_code == 0
    card = json.loads(result.output)
    assert card["calls"]["lookup_order"] == {"ok": 2}
    assert card["calls"]["refund_order"] == {"confirmation_required": 1, "denied": 1, "ok": 1}
    assert card["executed"] == {"refund_order": 1}
    assert card["escalations"] == {"cancel_subscription": 1}
    assert card["denials"] == {"amount_cap": 1}
    assert card["confirmations"] == {"issued": 1, "redeemed": 1}
    assert card["open_intents"] == 1
    assert card["admin"] == {"token_issued": 1}
    assert [(p["currency"], p["amount"]) for p in card["paid_out"]] == [("EUR", "10.50")]
    assert card["latency_ms"]["lookup_order"] == {"p50": 10.0, "p95": 30.0}
    assert run("report").exit_code == 0  # the tables render too
