"""`deskgate token ...`: issue, revoke, list and inspect session tokens.

`issue` prints the token and nothing else on stdout, so `TOKEN=$(deskgate token issue ...)` works;
notes go to stderr. After `deskgate login`, the session issued is linked to that person (like one issued
in the console): its calls count as their requests, which they can never approve. No other command ever
prints a token, and none is stored: the inventory holds each token's jti and metadata. Every change is
appended to the audit log as an admin record.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.roles import load_roles
from deskgate.scopes.tokens import DEFAULT_CLIENT_ID, SUBJECT, TOKEN_ID, TokenIssuer, TokenVerifier
from deskgate.server.cli.common import cli_errors, iso, record_admin
from deskgate.server.cli.login import login_if_any
from deskgate.server.errors import InvalidArguments
from deskgate.server.manifest.sources import served_manifest
from deskgate.server.people.accounts import open_people
from deskgate.server.settings import Paths, Settings, database_url, load_settings, parse_duration
from deskgate.server.store.db import open_database
from deskgate.server.store.state import StateStore

app = typer.Typer(help="Issue, revoke, list and inspect session tokens.", no_args_is_help=True)


@dataclass
class _Admin:
    paths: Paths
    settings: Settings
    keys: SigningKeys
    store: StateStore

    def issuer(self) -> TokenIssuer:
        return TokenIssuer(self.keys, self.store.tokens, self.settings.tokens)

    def verifier(self) -> TokenVerifier:
        return TokenVerifier(self.keys, self.store.tokens, self.settings.tokens)

    def record(self, action: str, **fields: Any) -> None:
        record_admin(self.paths, self.settings, action, **fields)


@contextmanager
def _admin() -> Iterator[_Admin]:
    with cli_errors():
        paths = Paths.from_env()
        settings = load_settings(paths)
        store = StateStore(open_database(database_url(), paths.state_db))
        try:
            store.upgrade()
            yield _Admin(paths, settings, SigningKeys(paths, settings.tokens), store)
        finally:
            store.close()


def _usage(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command()
def issue(
    sub: Annotated[str, typer.Option(help="Who the session is for (an agent or a person).")],
    role: Annotated[str | None, typer.Option(help="A role from config/roles.toml, e.g. tier1-agent.")] = None,
    scopes: Annotated[str | None, typer.Option(help='Space-separated scopes, e.g. "orders:read notes:write".')] = None,
    ttl: Annotated[str | None, typer.Option(help="Lifetime like 30m or 8h (default tokens.default_ttl).")] = None,
    customer: Annotated[str | None, typer.Option(help="Bind the session to this customer, e.g. C-1042.")] = None,
    ticket: Annotated[str | None, typer.Option(help="Bind the session to this ticket, e.g. T-880.")] = None,
    max_refund: Annotated[str | None, typer.Option(help="Total the session may pay out, e.g. 50.00.")] = None,
    client_id: Annotated[str, typer.Option(help="The client application the token is for.")] = DEFAULT_CLIENT_ID,
) -> None:
    """Issue a session token and print only the token."""
    if (role is None) == (scopes is None):
        raise _usage("give exactly one of --role or --scopes")
    with _admin() as admin:
        people = open_people(admin.store.db, admin.settings, admin.paths)
        person = login_if_any(admin.paths, people)
        roles = load_roles(admin.paths.roles_file())  # the deployment's own roles.toml, when it has one
        granted = roles.scopes_of(role) if role is not None else frozenset((scopes or "").split())
        lifetime = _seconds(ttl or admin.settings.tokens.default_ttl)
        # With tokens.bind_manifest the token names the manifest it was issued under, and stops working
        # when the served tools change.
        bound = served_manifest()["manifest_hash"] if admin.settings.tokens.bind_manifest else None
        token, record = admin.issuer().issue(sub, granted, lifetime, customer=customer, ticket=ticket,
                                             max_refund=max_refund, client_id=client_id, manifest_hash=bound)
        if person is not None:
            try:
                people.link_token(person.person.name, record.sid, now=record.issued_at)
            except BaseException:
                # Unlinked, its calls could be approved by the person who issued it: it must not live.
                admin.store.tokens.revoke_sync("sid", record.sid, "issuer link failed", record.issued_at)
                raise
        admin.record("token.issued", jti=record.jti, sub=record.sub, sid=record.sid, scopes=record.scopes,
                     kid=record.kid, expires_at=record.expires_at, customer=record.customer,
                     ticket=record.ticket, max_refund=record.max_refund, role=role,
                     principal=person.person.name if person else None)
        if record.expires_at - record.issued_at < lifetime:
            typer.echo(f"note: ttl capped at tokens.max_ttl ({admin.settings.tokens.max_ttl})", err=True)
    typer.echo(token)


def _seconds(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError:
        raise InvalidArguments("--ttl must be a duration like 30m, 8h or 90s") from None


@app.command()
def revoke(
    jti: Annotated[str | None, typer.Argument(help="The token id (jti) to revoke.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Revoke every token of this session id.")] = None,
    sub: Annotated[str | None, typer.Option("--sub", help="Revoke every token issued to this subject so far.")] = None,
    reason: Annotated[str, typer.Option(help="Why (kept with the revocation).")] = "revoked by an admin",
) -> None:
    """Revoke a token, a session, or every token of a subject; takes effect on the next call."""
    targets = [(k, v) for k, v in (("jti", jti), ("sid", session), ("sub", sub)) if v is not None]
    if len(targets) != 1:
        raise _usage("give exactly one of JTI, --session or --sub")
    kind, value = targets[0]
    if not (SUBJECT if kind == "sub" else TOKEN_ID).match(value):
        raise _usage(f"{value!r} is not a well-formed {kind}")
    if not reason.isprintable() or not 0 < len(reason) <= 200:
        raise _usage("--reason must be 1-200 printable characters")
    with _admin() as admin:
        now = int(time.time())
        known = any(getattr(t, kind) == value for t in admin.store.tokens.list_sync(include_expired=True, now=now))
        admin.store.tokens.revoke_sync(kind, value, reason, now)  # type: ignore[arg-type]  # kind is one of the three
        admin.record("token.revoked", target=kind, value=value, reason=reason)
    if not known:
        typer.echo(f"note: no issued token has {kind} {value} in this inventory; revoked anyway", err=True)
    typer.echo(f"revoked {kind} {value}")


@app.command("list")
def list_tokens(
    all_: Annotated[bool, typer.Option("--all", help="Include expired tokens.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List issued tokens (metadata only; tokens are never stored)."""
    with _admin() as admin:
        now = int(time.time())
        issued = admin.store.tokens.list_sync(include_expired=all_, now=now)
    if as_json:
        typer.echo(json.dumps([{
            "jti": t.jti, "sub": t.sub, "sid": t.sid, "client_id": t.client_id, "scopes": t.scopes.split(),
            "customer": t.customer, "ticket": t.ticket, "max_refund": t.max_refund, "kid": t.kid,
            "issued_at": iso(t.issued_at), "expires_at": iso(t.expires_at),
            "state": "revoked" if t.revoked else "expired" if t.expires_at <= now else "active",
        } for t in issued], indent=2))
        return
    table = Table("jti", "sub", "sid", "scopes", "bindings", "expires (UTC)", "state")
    for t in issued:
        bindings = " ".join(f"{k}={v}" for k, v in (("customer", t.customer), ("ticket", t.ticket),
                                                    ("max_refund", t.max_refund)) if v is not None)
        state = "revoked" if t.revoked else "expired" if t.expires_at <= now else "active"
        table.add_row(t.jti, t.sub, t.sid, t.scopes.replace(" ", "\n"), bindings or "-", iso(t.expires_at), state)
    Console(soft_wrap=True).print(table)


@app.command()
def inspect(
    token: Annotated[str, typer.Argument(help="The token, or - to read it from stdin (keeps it out of history).")],
) -> None:
    """Decode a token and say whether it would be accepted, and if not, why (exit 1)."""
    if token == "-":  # noqa: S105 - the conventional name for stdin, not a password
        token = sys.stdin.readline().strip()
    with _admin() as admin:
        seen = admin.verifier().inspect(token)
    verdict: dict[str, Any] = {"header": seen.header, "claims": seen.claims}
    if seen.refusal is None:
        verdict["verdict"] = "accepted"
    else:
        verdict.update(verdict="refused", code=seen.refusal.code)
    # ensure_ascii: claims are unverified input and must not put escape sequences on a terminal.
    typer.echo(json.dumps(verdict, indent=2, ensure_ascii=True))
    if seen.refusal is not None:
        raise typer.Exit(1)
