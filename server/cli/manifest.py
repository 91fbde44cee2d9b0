"""`deskgate manifest ...`: print, pin, diff and check the tool manifest security reviews.

    deskgate manifest [--format json|md]     the served manifest (canonical JSON, or the review document)
    deskgate manifest pin [--lock PATH]      pin it for this deployment ($DESKGATE_HOME/manifest.lock)
    deskgate manifest pin --release          pin it as released (the repository's config/manifest.lock)
    deskgate manifest diff OLD NEW           OLD/NEW: a lock or manifest file, or git:REV meaning
                                             config/manifest.lock at REV in the current git repository
    deskgate manifest check [--lock PATH]    exit 1, saying what changed, unless the served manifest is pinned

Exit codes: 0 fine; 1 a finding (`diff` found changes, `check` found a mismatch, `pin` declined);
2 an error (unreadable or forged lock, bad argument).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from deskgate.config import packaged
from deskgate.server.cli.common import record_admin
from deskgate.server.errors import ConfigError, DeskgateError
from deskgate.server.manifest import lock, sources
from deskgate.server.manifest.build import canonical_bytes
from deskgate.server.manifest.diff import diff, render_diff
from deskgate.server.manifest.lock import RELEASE_LOCK, ManifestMismatch
from deskgate.server.manifest.review import render_markdown
from deskgate.server.settings import Paths, load_settings

app = typer.Typer(help="Print, pin, diff and check the tool manifest that security reviews.")

GIT_PREFIX = "git:"
_GIT_REV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/~^@{}-]{0,199}$")  # never an option, never a path escape


LockOption = Annotated[Path | None, typer.Option("--lock", help="lock file (default $DESKGATE_HOME/manifest.lock)")]
ReleaseOption = Annotated[bool, typer.Option("--release", help="the repository's config/manifest.lock (as released)")]


class Format(StrEnum):
    JSON = "json"
    MD = "md"


@contextmanager
def _errors() -> Iterator[None]:
    """A mismatch is a finding (exit 1); any other deskgate error is exit 2. Never a traceback."""
    try:
        yield
    except ManifestMismatch as exc:
        typer.echo(f"deskgate: {exc.diagnostics()}", err=True)
        raise typer.Exit(1) from None
    except DeskgateError as exc:
        typer.echo(f"deskgate: {exc.diagnostics()}", err=True)
        raise typer.Exit(2) from None


@app.callback(invoke_without_command=True)
def show(
    ctx: typer.Context,
    format: Annotated[Format, typer.Option("--format", help="json (canonical) or md (review document)")] = Format.JSON,
) -> None:
    """Print the served manifest."""
    if ctx.invoked_subcommand is not None:
        return
    with _errors():
        manifest = sources.served_manifest()
        text = canonical_bytes(manifest).decode() + "\n" if format is Format.JSON else render_markdown(manifest)
    typer.echo(text, nl=False)


@app.command()
def pin(
    lock_path: LockOption = None,
    release: ReleaseOption = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="pin without asking")] = False,
) -> None:
    """Pin the served manifest: shows what changes against the current lock, then asks."""
    with _errors():
        target = _target(lock_path, release)
        manifest = sources.served_manifest()
        # A deployment's first pin is reviewed against the released lock: what this deployment changes.
        against = target if target.exists() else None if release else packaged(RELEASE_LOCK)
        if against is not None:
            changes = diff(lock.load(against), manifest)
            if not changes and against == target:
                typer.echo(f"{target} already pins {manifest['manifest_hash']}", err=True)
                return
            if against != target:
                typer.echo(f"{target} does not exist: changes against the released lock {against}:", err=True)
            typer.echo(render_diff(changes), err=True, nl=False)
        else:
            typer.echo(f"{target} does not exist: pinning {len(manifest['tools'])} tools for the first time", err=True)
        if not yes and not typer.confirm(f"Pin manifest {manifest['manifest_hash'][:12]} in {target}?", err=True):
            raise typer.Exit(1)
        pinned = lock.pin(manifest, target)
        if not release:  # a deployment's review decision belongs in its audit log; a release lock is a file
            paths = Paths.from_env()
            record_admin(paths, load_settings(paths), "manifest.pinned", manifest_hash=pinned, lock=str(target))
        typer.echo(f"pinned {pinned} in {target}", err=True)


@app.command("diff")
def diff_command(
    old: Annotated[str, typer.Argument(help="lock or manifest file, or git:REV")],
    new: Annotated[str, typer.Argument(help="lock or manifest file, or git:REV")],
) -> None:
    """Show what changed from OLD to NEW, risk-raising changes first (exit 1 when anything did)."""
    with _errors():
        changes = diff(_read(old), _read(new))
    typer.echo(render_diff(changes), nl=False)
    if changes:
        raise typer.Exit(1)


@app.command()
def check(
    lock_path: LockOption = None,
    release: ReleaseOption = False,
) -> None:
    """Exit 0 only when the served manifest is exactly the pinned one."""
    with _errors():
        target = _target(lock_path, release)
        manifest = sources.served_manifest()
        lock.check(manifest, target)
    typer.echo(f"{target} pins the served manifest {manifest['manifest_hash']}")


def _target(lock_path: Path | None, release: bool) -> Path:
    if release and lock_path is not None:
        raise ConfigError("give --lock or --release, not both")
    return packaged(RELEASE_LOCK) if release else lock_path or Paths.from_env().manifest_lock


def _read(source: str) -> dict[str, Any]:
    if not source.startswith(GIT_PREFIX):
        return lock.load(Path(source))
    rev = source[len(GIT_PREFIX):]
    if not _GIT_REV.match(rev) or ".." in rev:
        raise ConfigError(f"not a git revision: {rev!r}")
    try:  # in the repository the command runs in, like any git command
        shown = subprocess.run(  # noqa: S603 - fixed argv, the revision validated above
            ["git", "show", f"{rev}:config/{RELEASE_LOCK}"],  # noqa: S607 - git from PATH
            capture_output=True, check=False, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run git: {exc}") from None
    if shown.returncode != 0:
        message = shown.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigError(f"git show {rev}:config/{RELEASE_LOCK} failed: {message[-1] if message else 'no output'}")
    return lock.parse(shown.stdout, source)
