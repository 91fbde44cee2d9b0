"""`deskgate token ...` and `deskgate keys ...` through Typer's CLI runner, on the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from deskgate.server.cli import keys as keys_cli
from deskgate.server.cli import token as token_cli
from deskgate.server.settings import Paths


@pytest.fixture
def cli(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose commands use the test's state directory and the embedded SQLite store."""
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # rich tables: no column shortened with an ellipsis
    return CliRunner()


def run(cli: CliRunner, *args: str, stdin: str | None = None) -> Result:
    app = keys_cli.app if args[0] == "keys" else token_cli.app
    return cli.invoke(app, list(args[1:]), input=stdin)


def issue(cli: CliRunner, *args: str) -> str:
    result = run(cli, "token", "issue", "--sub", "agent-7", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def files_under(home: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in home.rglob("*") if p.is_file())


def test_issue_prints_only_the_token(cli: CliRunner) -> None:
    """stdout is exactly one line, the token, so `TOKEN=$(deskgate token issue ...)` works."""
    result = run(cli, "token", "issue", "--sub", "agent-7", "--role", "tier1-agent", "--ttl", "30m")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].count(".") == 2


def test_an_issued_token_is_accepted_by_inspect(cli: CliRunner) -> None:
    """The token the CLI prints verifies with the deployment's keys and ledger."""
    token = issue(cli, "--scopes", "orders:read notes:write", "--customer", "C-1042", "--max-refund", "25")
    result = run(cli, "token", "inspect", "-", stdin=token + "\n")
    assert result.exit_code == 0, result.stdout
    assert '"verdict": "accepted"' in result.stdout and '"customer": "C-1042"' in result.stdout
    assert token not in result.stdout


def test_no_token_is_written_anywhere_under_the_state_directory(cli: CliRunner, paths: Paths) -> None:
    """Not in the ledger, not in the audit log, not in the keyset: the token exists only on stdout."""
    token = issue(cli, "--role", "billing-agent")
    run(cli, "token", "revoke", "--sub", "agent-7")
    on_disk = files_under(paths.home)
    assert token not in on_disk and token.split(".")[2] not in on_disk
    assert "token.issued" in on_disk and "token.revoked" in on_disk  # the admin records exist


def test_list_shows_the_inventory_but_no_token(cli: CliRunner) -> None:
    """`token list` shows sub, scopes and state; never a token."""
    token = issue(cli, "--scopes", "orders:read", "--ticket", "T-880")
    result = run(cli, "token", "list")
    assert result.exit_code == 0, result.stderr
    assert "agent-7" in result.stdout and "orders:read" in result.stdout and "ticket=T-880" in result.stdout
    assert "active" in result.stdout
    assert token not in result.stdout and token.split(".")[2] not in result.stdout


def test_list_json_is_one_array_of_the_inventory_without_any_token(cli: CliRunner) -> None:
    """`token list --json` gives scripts the same inventory as one JSON array; still never a token."""
    token = issue(cli, "--scopes", "orders:read", "--customer", "C-1")
    result = run(cli, "token", "list", "--json")
    assert result.exit_code == 0, result.stderr
    (listed,) = json.loads(result.stdout)
    assert (listed["sub"], listed["scopes"], listed["customer"], listed["state"]) == (
        "agent-7", ["orders:read"], "C-1", "active")
    assert token not in result.stdout and token.split(".")[2] not in result.stdout


@pytest.mark.parametrize("target", ["jti", "--session", "--sub"])
def test_revoke_makes_inspect_refuse_the_token(cli: CliRunner, target: str) -> None:
    """Revoking the token, its session or its subject: inspect then exits 1 with code revoked."""
    token = issue(cli, "--scopes", "orders:read")
    claims = json.loads(run(cli, "token", "inspect", token).stdout)["claims"]
    value = claims[{"jti": "jti", "--session": "sid", "--sub": "sub"}[target]]
    args = [value] if target == "jti" else [target, value]
    assert run(cli, "token", "revoke", *args, "--reason", "test").exit_code == 0
    refused = run(cli, "token", "inspect", token)
    assert refused.exit_code == 1 and '"code": "revoked"' in refused.stdout
    assert "revoked" in run(cli, "token", "list").stdout


def test_revoking_an_unknown_jti_warns_but_revokes(cli: CliRunner) -> None:
    """A jti not in this inventory may come from another store; it is revoked, with a note."""
    result = run(cli, "token", "revoke", "A" * 32)
    assert result.exit_code == 0 and "note:" in result.stderr


@pytest.mark.parametrize("args, code", [
    (["issue", "--sub", "agent-7"], 2),
    (["issue", "--sub", "agent-7", "--role", "tier1-agent", "--scopes", "orders:read"], 2),
    (["issue", "--sub", "agent-7", "--role", "root"], 1),
    (["issue", "--sub", "agent-7", "--scopes", "orders:read everything:write"], 1),
    (["issue", "--sub", "agent-7", "--scopes", "orders:read", "--ttl", "forever"], 1),
    (["issue", "--sub", "agent 7", "--scopes", "orders:read"], 1),
    (["issue", "--sub", "agent-7", "--scopes", "refunds:write", "--max-refund", "-5"], 1),
    (["revoke"], 2),
    (["revoke", "AAAAAAAAAAAAAAAAAAAA", "--sub", "agent-7"], 2),
    (["revoke", "../../etc"], 2),
])
def test_bad_commands_exit_non_zero_with_one_line_on_stderr(cli: CliRunner, args: list[str], code: int) -> None:
    """Usage errors exit 2, refused requests exit 1; one line on stderr, nothing on stdout."""
    result = run(cli, "token", *args)
    assert result.exit_code == code
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1


def test_a_long_ttl_is_capped_with_a_note_on_stderr(cli: CliRunner) -> None:
    """--ttl 48h yields an 8h token, and stderr says so (stdout stays the token alone)."""
    result = run(cli, "token", "issue", "--sub", "agent-7", "--scopes", "orders:read", "--ttl", "48h")
    assert result.exit_code == 0 and "capped" in result.stderr and len(result.stdout.splitlines()) == 1


def test_inspect_of_garbage_exits_one_and_says_why(cli: CliRunner) -> None:
    """A malformed token is reported as refused, not as a crash."""
    result = run(cli, "token", "inspect", "not-a-token")
    assert result.exit_code == 1 and '"code": "malformed"' in result.stdout


def test_keys_rotate_keeps_old_tokens_and_list_shows_both_keys(cli: CliRunner) -> None:
    """After `keys rotate` the old token still verifies; `keys list` shows current and retired keys."""
    old_token = issue(cli, "--scopes", "orders:read")
    rotated = run(cli, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.stderr
    new_kid = rotated.stdout.split()[3]
    assert run(cli, "token", "inspect", old_token).exit_code == 0
    new_token = issue(cli, "--scopes", "orders:read")
    assert new_kid in run(cli, "token", "inspect", new_token).stdout
    listing = run(cli, "keys", "list")
    assert listing.exit_code == 0 and new_kid in listing.stdout
    assert "current" in listing.stdout and "retired" in listing.stdout and "key file" in listing.stdout
    as_json = json.loads(run(cli, "keys", "list", "--json").stdout)
    assert [k["state"] for k in as_json["keys"]] == ["current", "retired"] and as_json["keys"][0]["kid"] == new_kid
    assert "PRIVATE" not in json.dumps(as_json)  # public halves and where the private one lives, never a key


def test_keys_rotate_with_an_environment_key_fails_cleanly(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    """The env var owns the key: rotate exits 1 with a one-line reason."""
    monkeypatch.setenv("DESKGATE_SIGNING_KEY", "nmQ4Q2-IZg5xR3rUzc3dT9hbvCO3T6Rr5fcSJjv1fno")
    result = run(cli, "keys", "rotate")
    assert result.exit_code == 1 and "DESKGATE_SIGNING_KEY" in result.stderr


def test_a_token_issued_after_login_is_the_persons_and_they_cannot_approve_its_calls(cli: CliRunner,
                                                                                      paths: Paths) -> None:
    """`token issue` after `deskgate login`: the session is linked to that person (as in the console) and
    the admin record names them; without a login it is the shell's, and names nobody."""
    from deskgate.server.people.accounts import open_people
    from deskgate.server.settings import load_settings
    from deskgate.server.store.db import SqliteDatabase
    from tests.people.logins import login_as

    shell_token = issue(cli, "--role", "tier1-agent")
    login_as("lead-anna")
    persons_token = issue(cli, "--role", "tier1-agent")
    sid_of = {t: json.loads(run(cli, "token", "inspect", t).stdout)["claims"]["sid"]
              for t in (shell_token, persons_token)}
    db = SqliteDatabase(paths.state_db)
    try:
        people = open_people(db, load_settings(paths), paths)
        assert people.requested_by("lead-anna", sub="agent-7", sid=sid_of[persons_token])
        assert not people.requested_by("lead-anna", sub="agent-7", sid=sid_of[shell_token])
    finally:
        db.close()
    issued = [json.loads(line) for f in sorted(paths.audit_dir.glob("*.jsonl")) for line in f.read_text().splitlines()]
    principals = {r["sid"]: r.get("principal") for r in issued if r.get("action") == "token.issued"}
    assert principals == {sid_of[shell_token]: None, sid_of[persons_token]: "lead-anna"}


def test_a_stale_login_refuses_to_issue_rather_than_issue_as_nobody(cli: CliRunner, paths: Paths) -> None:
    """A credential file that no longer opens a live session (expired, reset, tampered) must not quietly
    make the token nobody's: the command refuses, says what to do, and issues nothing."""
    from tests.people.logins import login_as

    login_as("lead-anna")
    credential = paths.home / "console-credential"
    credential.write_text(json.dumps({"secret": "not-a-live-session"}))
    credential.chmod(0o600)
    before = run(cli, "token", "list", "--json").stdout
    result = run(cli, "token", "issue", "--sub", "agent-7", "--role", "tier1-agent")
    assert result.exit_code == 1 and result.stdout == ""
    assert "deskgate login again" in result.stderr
    assert run(cli, "token", "list", "--json").stdout == before
