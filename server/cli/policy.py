"""`deskgate policy reload`: apply the deployment's policy and roles on every server process, no restart.

    deskgate policy reload    validate $DESKGATE_HOME/policy.toml and roles.toml (or the shipped ones),
                              refuse them unless the manifest they make is pinned (showing the diff),
                              publish them in the shared state store; every `deskgate serve` process
                              on that store applies them from its next call. SIGHUP to a server does
                              the same.

Exit codes: 0 published; 1 refused, not pinned (the diff is shown); 2 invalid (file and line shown).
Nothing changes unless it exits 0.
"""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from deskgate.server.cli.common import actor, record_admin
from deskgate.server.errors import DeskgateError
from deskgate.server.manifest.lock import ManifestMismatch
from deskgate.server.settings import Paths, load_settings

app = typer.Typer(help="Apply the deployment's policy without a restart.", no_args_is_help=True)


@app.command()
def reload(
    json_output: Annotated[bool, typer.Option("--json", help="print what was published as JSON")] = False,
) -> None:
    """Validate, check the pin, and apply the policy on every server process sharing the state store."""
    import json

    from deskgate.server.runtime import Runtime

    paths = Paths.from_env()
    try:
        runtime = Runtime.open(paths)
    except DeskgateError as exc:  # the files do not load: audited like any refused reload
        typer.echo(f"deskgate: policy not reloaded: {exc.diagnostics()}", err=True)
        record_admin(paths, load_settings(paths), "policy.reload_refused", code=exc.code, reason=exc.reason[:500])
        raise typer.Exit(2) from None
    try:
        served = runtime.reload_policy(actor())
    except ManifestMismatch as exc:
        typer.echo(f"deskgate: policy not reloaded: {exc.diagnostics()}", err=True)
        raise typer.Exit(1) from None
    except DeskgateError as exc:
        typer.echo(f"deskgate: policy not reloaded: {exc.diagnostics()}", err=True)
        raise typer.Exit(2) from None
    finally:
        anyio.run(runtime.aclose)
    published = {"policy_version": served.stage.version, "manifest_hash": served.manifest_hash}
    if json_output:
        typer.echo(json.dumps(published, sort_keys=True))
    else:
        typer.echo(f"published policy {published['policy_version'][:12]} (manifest {published['manifest_hash'][:12]}):"
                   " every server process on this state store applies it from its next call")
