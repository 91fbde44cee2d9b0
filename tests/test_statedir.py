"""The state directory is this user's alone, through the real `deskgate` command (server/statedir.py).

What deskgate creates is 0700 / 0600 even under umask 000; what it finds at start that another user
could have changed (foreign owner, group/world-writable, symlink) stops `serve` and every admin command
with a non-zero exit, a message naming the path and the fix, and nothing written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deskgate.config import packaged
from deskgate.server.errors import ConfigError
from deskgate.server.runtime import Runtime
from deskgate.server.settings import Paths
from tests.e2e.test_transports import _wait_until_up, free_port

CLI = [sys.executable, "-m", "deskgate.server.cli"]
NOBODY = 65534

Run = Callable[..., subprocess.CompletedProcess[str]]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESKGATE_")}
    env.update(DESKGATE_HOME=str(home), PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state directory made by `deskgate init --demo` and used once (a token issued, a lock pinned)."""
    home = tmp_path_factory.mktemp("template") / "home"
    for args in (["init", "--demo", "--customers", "5"], ["token", "issue", "--sub", "a", "--role", "tier1-agent"],
                 ["manifest", "pin", "--yes"]):
        done = subprocess.run([*CLI, *args], env=cli_env(home), capture_output=True, text=True, timeout=120,
                              umask=0)
        assert done.returncode == 0, done.stderr
    return home


@pytest.fixture
def home(initialized: Path, tmp_path: Path) -> Path:
    """A copy of the initialized state directory for one test to spoil."""
    copy = tmp_path / "home"
    shutil.copytree(initialized, copy, symlinks=True)
    return copy


@pytest.fixture
def deskgate(home: Path) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], env=cli_env(home), capture_output=True, text=True, timeout=120)
    return run


def modes(home: Path) -> dict[str, str]:
    """Every entry under `home` (itself included) with its type and permission bits."""
    found = {".": f"d{stat.S_IMODE(home.lstat().st_mode):o}"}
    for path in home.rglob("*"):
        info = path.lstat()
        kind = "l" if stat.S_ISLNK(info.st_mode) else "d" if stat.S_ISDIR(info.st_mode) else "f"
        found[str(path.relative_to(home))] = f"{kind}{stat.S_IMODE(info.st_mode):o}"
    return found


def snapshot(home: Path) -> dict[str, str]:
    """Content digest, mode and owner of every entry: what "changed nothing" compares."""
    out: dict[str, str] = {}
    for path in [home, *home.rglob("*")]:
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else ""
        out[str(path)] = f"{info.st_mode:o} {info.st_uid} {digest}"
    return out


def refused(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --- what deskgate creates ----------------------------------------------------------------------


def test_everything_init_token_issue_and_pin_create_under_umask_000_is_private(initialized: Path) -> None:
    """Databases, key files, keyset, audit segments, checkpoints, locks: 0700 directories, 0600 files."""
    found = modes(initialized)
    for name in ("state.db", "backend.db", "keys/keyset.json", "keys/.lock", "keys/fingerprint.key", "keys/people.key",
                 "audit/audit.key", "audit/audit.pub", "audit/audit.lock", "audit/checkpoints.jsonl",
                 "audit/audit-000001.jsonl", "manifest.lock"):
        assert found[name] == "f600", (name, found)
    assert [n for n in found if n.startswith("keys/") and n.endswith(".pem")], found  # the signing key file
    assert {m for m in found.values()} == {"d700", "f600"}, found


@pytest.mark.anyio
async def test_a_serving_deskgate_started_under_umask_000_keeps_sqlite_wal_and_shm_private(home: Path) -> None:
    """SQLite's -wal and -shm files exist only while it runs: they take the 0600 of the database file."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--transport", "http", "--port", str(port), "--dev"], env=cli_env(home),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, umask=0)
    try:
        await _wait_until_up(f"http://127.0.0.1:{port}", proc)
        found = modes(home)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert found["state.db-wal"] == found["state.db-shm"] == found["backend.db-wal"] == "f600", found
    assert {m for m in found.values()} == {"d700", "f600"}, found


# --- what deskgate refuses at start ----------------------------------------------------------------


def make_world_writable_home(home: Path) -> tuple[Path, str]:
    home.chmod(0o777)
    return home, f"chmod 700 {home}"


def make_group_writable_keys(home: Path) -> tuple[Path, str]:
    (home / "keys").chmod(0o770)
    return home / "keys", f"chmod 700 {home / 'keys'}"


def make_world_writable_state_db(home: Path) -> tuple[Path, str]:
    (home / "state.db").chmod(0o666)
    return home / "state.db", f"chmod 600 {home / 'state.db'}"


def make_group_writable_policy(home: Path) -> tuple[Path, str]:
    (home / "policy.toml").write_bytes(packaged("policy.toml").read_bytes())
    (home / "policy.toml").chmod(0o620)
    return home / "policy.toml", f"chmod 600 {home / 'policy.toml'}"


def make_foreign_keyset(home: Path) -> tuple[Path, str]:
    os.chown(home / "keys" / "keyset.json", NOBODY, NOBODY)
    return home / "keys" / "keyset.json", f"chown root {home / 'keys' / 'keyset.json'}"


def make_foreign_audit_segment(home: Path) -> tuple[Path, str]:
    os.chown(home / "audit" / "audit-000001.jsonl", NOBODY, NOBODY)
    return home / "audit" / "audit-000001.jsonl", "is owned by nobody"


def make_symlinked_audit_dir(home: Path) -> tuple[Path, str]:
    elsewhere = home.parent / "elsewhere-audit"
    (home / "audit").rename(elsewhere)
    (home / "audit").symlink_to(elsewhere)
    return home / "audit", "is a symlink"


def make_symlinked_keyset(home: Path) -> tuple[Path, str]:
    keyset = home / "keys" / "keyset.json"
    elsewhere = home.parent / "keyset.json"
    keyset.rename(elsewhere)
    keyset.symlink_to(elsewhere)
    return keyset, "is a symlink"


def make_writable_parent(home: Path) -> tuple[Path, str]:
    home.parent.chmod(0o777)
    return home.parent, f"chmod go-w {home.parent}"


ATTACKS = [
    pytest.param(make_world_writable_home, id="world-writable home"),
    pytest.param(make_group_writable_keys, id="group-writable keys dir"),
    pytest.param(make_world_writable_state_db, id="world-writable state.db"),
    pytest.param(make_group_writable_policy, id="group-writable policy.toml"),
    pytest.param(make_foreign_keyset, id="foreign-owned keyset.json", marks=needs_root),
    pytest.param(make_foreign_audit_segment, id="foreign-owned audit segment", marks=needs_root),
    pytest.param(make_symlinked_audit_dir, id="symlinked audit dir"),
    pytest.param(make_symlinked_keyset, id="symlinked keyset.json"),
    pytest.param(make_writable_parent, id="parent writable without sticky bit"),
]


@pytest.fixture
def restore_parent(home: Path) -> Iterator[None]:
    yield
    home.parent.chmod(0o700)  # so pytest can clean up after the parent attack


@pytest.mark.usefixtures("restore_parent")
@pytest.mark.parametrize("attack", ATTACKS)
def test_serve_refuses_unsafe_state_naming_the_path_and_the_fix_and_changes_nothing(
        home: Path, deskgate: Run, attack: Callable[[Path], tuple[Path, str]]) -> None:
    """No audit record, no database upgrade, no key: the refusal comes before anything is opened."""
    path, fix = attack(home)
    before = snapshot(home)
    result = deskgate("serve", "--transport", "http", "--port", str(free_port()), "--dev")
    refused(result, str(path), fix)
    assert snapshot(home) == before


ADMIN_COMMANDS = [
    ["init"],
    ["db", "upgrade"],
    ["token", "issue", "--sub", "a", "--role", "tier1-agent"],
    ["token", "list"],
    ["token", "revoke", "--sub", "a"],
    ["keys", "list"],
    ["keys", "rotate"],
    ["keys", "rotate-audit"],
    ["token", "inspect", "x.y.z"],
    ["approvals", "list"],
    ["approvals", "show", "AP-3F9A2B7C1D0E"],
    ["approvals", "approve", "AP-3F9A2B7C1D0E", "--yes"],
    ["approvals", "deny", "AP-3F9A2B7C1D0E", "--reason", "no"],
    ["breakers", "list"],
    ["breakers", "reset", "money", "--yes"],
    ["audit", "verify"],
    ["audit", "tail"],
    ["audit", "export"],
    ["report"],
    ["manifest", "pin", "--yes"],
    ["manifest", "check"],
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=" ".join)
def test_every_admin_command_refuses_a_world_writable_state_directory(
        home: Path, deskgate: Run, command: list[str]) -> None:
    path, fix = make_world_writable_home(home)
    before = snapshot(home)
    refused(deskgate(*command), str(path), fix)
    assert snapshot(home) == before


def test_a_refusal_is_lifted_by_the_fix_it_names(home: Path, deskgate: Run) -> None:
    """The message is actionable: running its command makes the same start succeed."""
    make_group_writable_keys(home)
    refused(deskgate("keys", "list"), "chmod 700")
    (home / "keys").chmod(0o700)
    result = deskgate("keys", "list")
    assert result.returncode == 0, result.stderr


def test_a_state_directory_that_does_not_exist_yet_is_created_private_under_umask_000(tmp_path: Path) -> None:
    home = tmp_path / "new" / "deeper" / "home"
    done = subprocess.run([*CLI, "init"], env=cli_env(home), capture_output=True, text=True, timeout=120, umask=0)
    assert done.returncode == 0, done.stderr
    for directory in (tmp_path / "new", tmp_path / "new" / "deeper", home):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory



def test_the_composition_root_refuses_unsafe_state_too(home: Path) -> None:
    """`Runtime.open` (what tests, benchmarks and `serve` build on) checks before it reads the settings."""
    (home / "deskgate.toml").write_text("[server]\nport = 0\n")  # invalid: read first, it would fail otherwise
    (home / "deskgate.toml").chmod(0o666)
    with pytest.raises(ConfigError, match="chmod 600"):
        Runtime.open(Paths(home))
