"""`deskgate manifest ...` through typer's CLI runner: print, pin, check and diff, with their exit codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from deskgate.server.cli.manifest import app
from deskgate.server.manifest import lock, sources
from deskgate.server.manifest.build import HASH_KEY, canonical_bytes

Serve = Callable[[dict[str, Any]], None]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DESKGATE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch, manifest_of: Any) -> Serve:
    """Make the CLI see `manifest` as the served one (the sample catalogue unless told otherwise)."""

    def use(manifest: dict[str, Any]) -> None:
        monkeypatch.setattr(sources, "served_manifest", lambda: manifest)

    use(manifest_of())
    return use


def test_manifest_prints_the_canonical_json(runner: CliRunner, serve: Serve, manifest_of: Any) -> None:
    """The default format is the canonical bytes plus a newline: `deskgate manifest | sha256sum`-able."""
    result = runner.invoke(app, [])
    assert result.exit_code == 0
    assert result.stdout == canonical_bytes(manifest_of()).decode() + "\n"


def test_manifest_format_md_prints_the_review_document(runner: CliRunner, serve: Serve) -> None:
    """`--format md` is the security review document."""
    result = runner.invoke(app, ["--format", "md"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# deskgate tool manifest\n")
    assert "## Tools by risk" in result.stdout


def test_pin_writes_the_deployment_lock_after_confirmation(
    runner: CliRunner, serve: Serve, home: Path, manifest_of: Any
) -> None:
    """Default target is $DESKGATE_HOME/manifest.lock; the operator is asked before pinning."""
    declined = runner.invoke(app, ["pin"], input="n\n")
    assert declined.exit_code == 1
    assert not (home / "manifest.lock").exists()
    accepted = runner.invoke(app, ["pin"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert lock.load(home / "manifest.lock")[HASH_KEY] == manifest_of()[HASH_KEY]
    audit = "".join(p.read_text() for p in (home / "audit").glob("audit-*.jsonl"))
    assert '"action":"manifest.pinned"' in audit and manifest_of()[HASH_KEY] in audit  # the review is on record


def test_pin_shows_the_diff_against_the_current_lock_before_asking(
    runner: CliRunner, serve: Serve, home: Path, manifest_of: Any, spec_changes: Any
) -> None:
    """Re-pinning shows exactly what the reviewer is about to accept."""
    assert runner.invoke(app, ["pin", "--yes"]).exit_code == 0
    serve(manifest_of(spec_changes("add_note", scope="orders:read")))
    result = runner.invoke(app, ["pin"], input="n\n")
    assert result.exit_code == 1
    assert "add_note: scope notes:write -> orders:read [scope_changed]" in result.stderr
    assert runner.invoke(app, ["pin", "--yes"]).exit_code == 0
    assert runner.invoke(app, ["check"]).exit_code == 0


def test_check_exits_0_when_pinned_and_1_saying_what_changed_when_not(
    runner: CliRunner, serve: Serve, home: Path, manifest_of: Any, spec_changes: Any
) -> None:
    """The same check `serve` runs, as a command."""
    runner.invoke(app, ["pin", "--yes"])
    assert runner.invoke(app, ["check"]).exit_code == 0
    serve(manifest_of(spec_changes("find_customer", title="Find customers")))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "title_changed" in result.stderr and "find_customer" in result.stderr


def test_check_without_a_lock_is_an_error(runner: CliRunner, serve: Serve, home: Path) -> None:
    """No lock: exit 2 and a one-line reason, never a traceback."""
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 2
    assert "no such manifest or lock file" in result.stderr
    assert "Traceback" not in result.output


def test_lock_and_release_together_are_refused(runner: CliRunner, serve: Serve, tmp_path: Path) -> None:
    """One target at a time."""
    result = runner.invoke(app, ["pin", "--yes", "--release", "--lock", str(tmp_path / "x.lock")])
    assert result.exit_code == 2
    assert "not both" in result.stderr


def test_diff_of_two_files_lists_changes_riskiest_first_and_exits_1(
    runner: CliRunner, tmp_path: Path, manifest_of: Any, sample: Any
) -> None:
    """OLD and NEW may be a lock and a plain manifest file."""
    old, new = tmp_path / "old.lock", tmp_path / "new.json"
    lock.pin(manifest_of(), old)
    assisted = {**sample.policy, "add_note": {**sample.policy["add_note"], "tier": "assist"}}
    roles = {**sample.roles, "agent": [*sample.roles["agent"], "refunds:write"]}
    new.write_bytes(canonical_bytes(manifest_of(policy=assisted, roles=roles)))
    result = runner.invoke(app, ["diff", str(old), str(new)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith("! critical role agent: now reaches issue_refund")
    assert lines[-1].startswith("  low      add_note: policy tier")


def test_diff_of_identical_files_exits_0(runner: CliRunner, tmp_path: Path, manifest_of: Any) -> None:
    """No changes, exit 0, like diff(1)."""
    path = tmp_path / "m.lock"
    lock.pin(manifest_of(), path)
    result = runner.invoke(app, ["diff", str(path), str(path)])
    assert (result.exit_code, result.stdout) == (0, "No changes.\n")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_diff_reads_git_revisions_of_the_released_lock(
    runner: CliRunner, tmp_path: Path, manifest_of: Any, spec_changes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`git:REV` is config/manifest.lock at REV in the repository the command runs in."""
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "reviewer@example.test")
    git(repo, "config", "user.name", "Reviewer")
    lock.pin(manifest_of(), repo / "config" / "manifest.lock")
    git(repo, "add", "config/manifest.lock")
    git(repo, "commit", "-q", "-m", "release 1")
    lock.pin(manifest_of(spec_changes("add_note", description="Add a note.")), repo / "config" / "manifest.lock")
    git(repo, "commit", "-q", "-am", "release 2")
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["diff", "git:HEAD~1", "git:HEAD"])
    assert result.exit_code == 1, result.output
    assert "add_note: description:" in result.stdout


@pytest.mark.parametrize("source", ["git:--output=/tmp/x", "git:HEAD:other/file", "git:a..b", "git:"])
def test_diff_refuses_anything_but_a_plain_git_revision(runner: CliRunner, source: str, tmp_path: Path) -> None:
    """No option injection and no other path than config/manifest.lock."""
    result = runner.invoke(app, ["diff", source, source])
    assert result.exit_code == 2
    assert "not a git revision" in result.stderr


def test_diff_of_a_forged_lock_is_refused(runner: CliRunner, tmp_path: Path, manifest_of: Any) -> None:
    """A lock whose content no longer matches its hash cannot be compared as if it were reviewed."""
    path = tmp_path / "m.lock"
    lock.pin(manifest_of(), path)
    document = json.loads(path.read_text())
    document["manifest"]["roles"]["agent"].append("refunds:write")
    path.write_text(json.dumps(document))
    result = runner.invoke(app, ["diff", str(path), str(path)])
    assert result.exit_code == 2
    assert "does not match" in result.stderr
