"""`deskgate approvals` and `deskgate breakers`: thin commands, every decision audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from deskgate.server.cli.approvals import app as approvals_app
from deskgate.server.cli.breakers import app as breakers_app
from deskgate.server.policy.approvals import Approval, Approvals
from deskgate.server.policy.canonical import argument_digest
from deskgate.server.policy.confirmation import Binding
from deskgate.server.settings import Paths
from deskgate.server.store.db import SqliteDatabase
from deskgate.server.store.state import StateStore
from tests.people.logins import login_as

from .conftest import NOW

ARGS = {"order_id": "O-1", "amount": "120.00", "reason_code": "damaged_item"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    monkeypatch.setenv("DESKGATE_HOME", str(tmp_path))
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    return Paths(tmp_path)


@pytest.fixture
def store(home: Paths) -> Iterator[StateStore]:
    state = StateStore(SqliteDatabase(home.state_db))
    state.upgrade()
    Approvals(state.db).upgrade()
    yield state
    state.close()


def _pending(store: StateStore, sub: str = "agent-7") -> Approval:
    binding = Binding("sid-1", sub, "issue_refund", argument_digest(ARGS), "m" * 64, "p" * 64)
    # Far-future expiry: the CLI reads the real clock.
    return anyio.run(lambda: Approvals(store.db).create(binding, ARGS, customer_id="C-3", summary="Refund 120.00",
                                                        now=NOW, ttl=10**9))


def _audit(home: Paths) -> list[dict]:
    return [json.loads(line) for f in sorted(home.audit_dir.glob("*.jsonl")) for line in f.read_text().splitlines()]


def test_an_approver_lists_shows_and_approves_and_the_decision_is_audited(home: Paths, store: StateStore) -> None:
    """list shows the pending call, show its exact arguments, approve decides and appends an admin record."""
    approval = _pending(store)
    runner = CliRunner()
    listed = runner.invoke(approvals_app, ["list"])
    assert listed.exit_code == 0 and approval.id in listed.stdout
    shown = runner.invoke(approvals_app, ["show", approval.id])
    assert json.loads(shown.stdout)["arguments"] == ARGS
    login_as("lead-anna")
    result = runner.invoke(approvals_app, ["approve", approval.id, "--yes"])
    assert result.exit_code == 0, result.output
    assert "approved" in result.stdout
    record = [r for r in _audit(home) if r.get("action") == "approval.approve"][-1]
    assert (record["approval_id"], record["principal"], record["state"]) == (approval.id, "lead-anna", "approved")


def test_approving_asks_first_and_aborts_on_no(home: Paths, store: StateStore) -> None:
    """A consequential command confirms; 'n' changes nothing."""
    approval = _pending(store)
    login_as("lead-anna")
    result = CliRunner().invoke(approvals_app, ["approve", approval.id], input="n\n")
    assert result.exit_code != 0
    assert Approvals(store.db).get_sync(approval.id).state == "pending"


def test_self_approval_from_the_cli_fails_with_one_line_and_exit_one(home: Paths, store: StateStore) -> None:
    """The agent's own name cannot approve; nothing is audited as a decision."""
    approval = _pending(store)
    login_as("agent-7")
    result = CliRunner().invoke(approvals_app, ["approve", approval.id, "--yes"])
    assert result.exit_code == 1 and "own request" in result.output
    assert not [r for r in _audit(home) if r.get("action", "").startswith("approval.")]


def test_deny_requires_a_reason_and_records_it(home: Paths, store: StateStore) -> None:
    """deny without --reason is a usage error; with it the approval is denied and audited."""
    approval = _pending(store)
    runner = CliRunner()
    login_as("lead-anna")
    assert runner.invoke(approvals_app, ["deny", approval.id]).exit_code == 2
    result = runner.invoke(approvals_app, ["deny", approval.id, "--reason", "not eligible"])
    assert result.exit_code == 0 and "denied" in result.stdout
    assert [r["reason"] for r in _audit(home) if r.get("action") == "approval.deny"] == ["not eligible"]


def test_a_tripped_breaker_is_listed_and_its_reset_is_audited_with_the_logged_in_admin(
        home: Paths, store: StateStore) -> None:
    """breakers list shows the trip; reset re-arms it as the person of `deskgate login` (no name to type)
    and appends an admin record naming them."""
    anyio.run(lambda: store.breakers.trip("money", "hour total 1490.00 + 20.00 passes 1500.00", NOW))
    runner = CliRunner()
    assert "money" in runner.invoke(breakers_app, ["list"]).stdout
    (listed,) = json.loads(runner.invoke(breakers_app, ["list", "--json"]).stdout)
    assert listed["breaker"] == "money" and "1500.00" in listed["reason"]
    login_as("lead-anna", role="admin")
    result = runner.invoke(breakers_app, ["reset", "money", "--yes"])
    assert result.exit_code == 0, result.output
    assert store.breakers.list_sync() == []
    record = [r for r in _audit(home) if r.get("action") == "breaker.reset"][-1]
    assert (record["breaker"], record["principal"], record["channel"]) == ("money", "lead-anna", "cli")
    assert store.db.read_sync(lambda tx: tx.query("SELECT generation, reset_by FROM breaker_resets")) == [
        (1, "lead-anna")]


def test_a_breaker_reset_takes_no_typed_name_and_needs_an_admin_login(home: Paths, store: StateStore) -> None:
    """`--as NAME` is gone (anyone could type anyone's name); without a login, or logged in as an approver,
    the reset is refused, the breaker stays tripped and nothing is audited."""
    anyio.run(lambda: store.breakers.trip("money", "EUR hour total", NOW))
    runner = CliRunner()
    typed = runner.invoke(breakers_app, ["reset", "money", "--as", "lead-anna", "--yes"])
    assert typed.exit_code != 0 and "--as" in typed.output
    anonymous = runner.invoke(breakers_app, ["reset", "money", "--yes"])
    assert anonymous.exit_code == 1 and "deskgate login" in anonymous.output
    login_as("approver-ben", role="approver")
    approver = runner.invoke(breakers_app, ["reset", "money", "--yes"])
    assert approver.exit_code == 1 and "may not" in approver.output
    assert [row[0] for row in store.breakers.list_sync()] == ["money"]
    assert not [r for r in _audit(home) if r.get("action") == "breaker.reset"]


def test_resetting_a_breaker_that_is_not_tripped_fails(home: Paths, store: StateStore) -> None:
    """Nothing to reset: exit 1, nothing audited."""
    login_as("lead-anna", role="admin")
    result = CliRunner().invoke(breakers_app, ["reset", "money", "--yes"])
    assert result.exit_code == 1 and "not tripped" in result.output
    assert not [r for r in _audit(home) if r.get("action") == "breaker.reset"]
