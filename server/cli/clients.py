"""`deskgate clients ...`: register, list and revoke the platform clients of `/oauth/token`.

`add` prints exactly two lines on stdout, `client_id: ...` and `client_secret: ...` (for a
`private_key_jwt` client the second line is `token_endpoint_auth_method: private_key_jwt`); the secret
is shown this once and stored only as an argon2id hash. Every change is an admin record in the audit log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from deskgate.scopes.clients import CLIENT_ID, ClientRegistry
from deskgate.scopes.roles import load_roles
from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.errors import InvalidArguments
from deskgate.server.settings import Paths, Settings, database_url, load_settings, parse_duration
from deskgate.server.store.db import Database, open_database
from deskgate.server.store.state import TokenLedger

app = typer.Typer(help="Register, list and revoke OAuth platform clients (POST /oauth/token).",
                  no_args_is_help=True)


@dataclass
class _Admin:
    paths: Paths
    settings: Settings
    db: Database
    registry: ClientRegistry


@contextmanager
def _admin() -> Iterator[_Admin]:
    with cli_errors():
        paths = Paths.from_env()
        settings = load_settings(paths)
        db = open_database(database_url(), paths.state_db)
        try:
            registry = ClientRegistry(db)
            registry.upgrade()
            yield _Admin(paths, settings, db, registry)
        finally:
            db.close()


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The platform's name; the `sub` of every token it gets.")],
    role: Annotated[str, typer.Option(help="A role from config/roles.toml: the most its tokens may carry.")],
    max_ttl: Annotated[str | None, typer.Option(help="Lifetime of its tokens, e.g. 1h "
                                                "(default tokens.default_ttl, at most tokens.max_ttl).")] = None,
    max_refund: Annotated[str | None, typer.Option(help="Highest payout cap a session may carry, e.g. 50.00 "
                                                   "(also the cap of sessions that ask for none).")] = None,
    allow_unbound: Annotated[bool, typer.Option("--allow-unbound", help="Allow sessions bound to no customer "
                                                "and no ticket.")] = False,
    jwks_file: Annotated[Path | None, typer.Option(help="The client's public key(s) as a JWK or JWK Set: "
                                                   "authenticate by private_key_jwt, no secret.")] = None,
    jwt_alg: Annotated[str | None, typer.Option(help="The one algorithm its assertions use "
                                                "(default: from the key; RS256 for RSA).")] = None,
) -> None:
    """Register a platform client; print its client_id and, this once, its client_secret."""
    with _admin() as admin:
        load_roles(admin.paths.roles_file()).scopes_of(role)  # an unknown role is refused here, naming the known ones
        ttl = _seconds(max_ttl or admin.settings.tokens.default_ttl)
        if ttl > parse_duration(admin.settings.tokens.max_ttl):
            raise InvalidArguments(f"--max-ttl is above tokens.max_ttl ({admin.settings.tokens.max_ttl})")
        keys = _read(jwks_file) if jwks_file is not None else None
        client, secret = admin.registry.add_sync(name, role, max_ttl=ttl, max_refund=max_refund,
                                                 allow_unbound=allow_unbound, jwks=keys, jwt_alg=jwt_alg)
        record_admin(admin.paths, admin.settings, "client.added", **{
            k: v for k, v in client.listing().items() if k not in ("created_at", "revoked_at")})
    typer.echo(f"client_id: {client.client_id}")
    typer.echo(f"client_secret: {secret}" if secret is not None else "token_endpoint_auth_method: private_key_jwt")


def _seconds(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError:
        raise InvalidArguments("--max-ttl must be a duration like 30m, 1h or 90s") from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise InvalidArguments(f"cannot read the JWKS file {path}") from None


@app.command("list")
def list_clients(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array (no credential in it).")] = False,
) -> None:
    """List registered clients (never a secret or its hash)."""
    with _admin() as admin:
        clients = admin.registry.list_sync()
    if as_json:
        typer.echo(json.dumps([c.listing() for c in clients], indent=2, ensure_ascii=True))
        return
    table = Table("client_id", "name", "role", "auth", "max ttl", "max refund", "unbound", "created (UTC)", "state")
    for c in clients:
        table.add_row(c.client_id, c.name, c.role, "private_key_jwt" if c.jwks else "secret", f"{c.max_ttl}s",
                      c.max_refund or "-", "yes" if c.allow_unbound else "no", iso(c.created_at),
                      "active" if c.revoked_at is None else f"revoked {iso(c.revoked_at)}")
    Console(soft_wrap=True).print(table)


@app.command()
def revoke(
    client_id: Annotated[str, typer.Argument(help="The client_id to revoke.")],
    reason: Annotated[str, typer.Option(help="Why (kept with the token revocation).")] = "client revoked by an admin",
) -> None:
    """Revoke a client: no new token, and every token it was issued so far stops working at the next call."""
    if not CLIENT_ID.match(client_id):
        typer.echo(f"error: {client_id!r} is not a client_id (dgc_...)", err=True)
        raise typer.Exit(2)
    if not reason.isprintable() or not 0 < len(reason) <= 200:
        typer.echo("error: --reason must be 1-200 printable characters", err=True)
        raise typer.Exit(2)
    with _admin() as admin:
        client = admin.registry.revoke_sync(client_id)
        if client is None:
            raise InvalidArguments(f"no client has the id {client_id}")
        # Its tokens all carry sub = its name: a subject revocation ends every one issued until now.
        TokenLedger(admin.db).revoke_sync("sub", client.name, reason, int(time.time()))
        record_admin(admin.paths, admin.settings, "client.revoked", client_id=client_id, name=client.name,
                     reason=reason)
    typer.echo(f"revoked client {client_id} ({client.name}) and its tokens")
