"""`deskgate clients ...` through Typer's CLI runner, on the embedded store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from deskgate.scopes.clients import ClientRegistry
from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier
from deskgate.server.cli import clients as clients_cli
from deskgate.server.cli import token as token_cli
from deskgate.server.errors import AuthenticationError
from deskgate.server.settings import Paths, Settings
from deskgate.server.store.db import SqliteDatabase
from deskgate.server.store.state import StateStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli(paths: Paths, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("DESKGATE_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "300")
    return CliRunner()


def run(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(clients_cli.app, list(args))


def add(cli: CliRunner, *args: str) -> tuple[str, str]:
    """`clients add`: (client_id, the second line's value: the secret, or the auth method of a key client)."""
    result = run(cli, "add", *args)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    (first, id_), (second, value) = (line.split(": ", 1) for line in lines)
    assert first == "client_id" and second in ("client_secret", "token_endpoint_auth_method")
    return id_, value


def on_disk(home: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in home.rglob("*") if p.is_file())


async def test_add_prints_exactly_the_client_id_and_the_secret_which_is_stored_nowhere(cli: CliRunner,
                                                                                       paths: Paths) -> None:
    """Two lines, `client_id: ...` and `client_secret: ...`; the secret authenticates, and no file under the
    state directory (database, audit log) contains it."""
    client_id, secret = add(cli, "platform-a", "--role", "tier1-agent", "--max-ttl", "1h", "--max-refund", "25")
    assert client_id.startswith("dgc_") and secret.startswith("dgs_")
    assert secret not in on_disk(paths.home)
    assert "client.added" in on_disk(paths.home)
    db = SqliteDatabase(paths.state_db)
    try:
        db.write_sync(lambda tx: None)
        StateStore(db).upgrade()
        found = await ClientRegistry(db).authenticate_secret(client_id, secret)
    finally:
        db.close()
    assert (found.name, found.max_ttl, found.max_refund, found.allow_unbound) == ("platform-a", 3600, "25", False)


def test_list_shows_clients_without_any_credential(cli: CliRunner) -> None:
    """`list --json` is one array of every client's settings; no secret and no hash, in either format."""
    _, secret = add(cli, "platform-a", "--role", "billing-agent", "--allow-unbound")
    listed = run(cli, "list", "--json")
    assert listed.exit_code == 0
    (entry,) = json.loads(listed.stdout)
    assert entry["name"] == "platform-a" and entry["role"] == "billing-agent" and entry["allow_unbound"] is True
    assert entry["token_endpoint_auth_methods"] == ["client_secret_basic", "client_secret_post"]
    table = run(cli, "list")
    for text in (listed.stdout, table.stdout):
        assert secret not in text and "argon2" not in text
    assert "platform-a" in table.stdout


def test_add_refuses_an_unknown_role_a_ttl_above_the_maximum_and_a_reused_name(cli: CliRunner) -> None:
    """Bad input exits non-zero with one line on stderr and registers nothing."""
    add(cli, "platform-a", "--role", "tier1-agent")
    for args in (("platform-b", "--role", "root"), ("platform-b", "--role", "tier1-agent", "--max-ttl", "9h"),
                 ("platform-b", "--role", "tier1-agent", "--max-ttl", "soon"), ("platform-a", "--role", "tier1-agent"),
                 ("platform-b", "--role", "tier1-agent", "--jwt-alg", "EdDSA")):
        result = run(cli, "add", *args)
        assert result.exit_code == 1 and result.stderr.startswith("error: "), args
    assert [c["name"] for c in json.loads(run(cli, "list", "--json").stdout)] == ["platform-a"]


def test_a_private_key_jwt_client_is_registered_from_its_public_jwks(cli: CliRunner, tmp_path: Path) -> None:
    """`--jwks-file` registers the public key and pins its algorithm; no secret is printed; a private key is
    refused."""
    key = Ed25519PrivateKey.generate()
    public = json.loads(jwt.get_algorithm_by_name("EdDSA").to_jwk(key.public_key()))
    (tmp_path / "public.json").write_text(json.dumps({"keys": [{**public, "kid": "k1"}]}))
    client_id, method = add(cli, "platform-jwt", "--role", "tier1-agent", "--jwks-file", str(tmp_path / "public.json"))
    assert client_id.startswith("dgc_") and method == "private_key_jwt"
    (entry,) = json.loads(run(cli, "list", "--json").stdout)
    assert entry["jwt_alg"] == "EdDSA" and entry["key_ids"] == ["k1"]
    (tmp_path / "private.json").write_text(jwt.get_algorithm_by_name("EdDSA").to_jwk(key))
    refused = run(cli, "add", "platform-x", "--role", "tier1-agent", "--jwks-file", str(tmp_path / "private.json"))
    assert refused.exit_code == 1 and "private" in refused.stderr


async def test_revoke_stops_the_client_and_every_token_it_was_issued(cli: CliRunner, paths: Paths,
                                                                     settings: Settings) -> None:
    """After `clients revoke`, its secret no longer authenticates and its earlier tokens are refused."""
    client_id, secret = add(cli, "platform-a", "--role", "tier1-agent")
    db = SqliteDatabase(paths.state_db)
    try:
        store = StateStore(db)
        store.upgrade()
        keys = SigningKeys(paths, settings.tokens)
        keys.ensure()
        token, _ = TokenIssuer(keys, store.tokens, settings.tokens).issue(
            "platform-a", {"orders:read"}, 600, client_id=client_id, customer="C-1")
        result = run(cli, "revoke", client_id)
        assert result.exit_code == 0 and "revoked client" in result.stdout
        with pytest.raises(AuthenticationError) as caught:
            TokenVerifier(keys, store.tokens, settings.tokens).verify_sync(token)
        assert caught.value.code == "revoked"
        with pytest.raises(AuthenticationError) as refused:
            await ClientRegistry(db).authenticate_secret(client_id, secret)
        assert refused.value.code == "revoked_client"
        (entry,) = json.loads(run(cli, "list", "--json").stdout)
        assert entry["revoked_at"] is not None and entry["revoked_at"] <= time.time()
    finally:
        db.close()
    assert run(cli, "revoke", "dgc_" + "N" * 24).exit_code == 1
    assert run(cli, "revoke", "not-an-id").exit_code == 2


def test_the_cli_token_issue_keeps_working_next_to_clients(cli: CliRunner) -> None:
    """Registering clients changes nothing for `token issue`: it still prints only the token."""
    add(cli, "platform-a", "--role", "tier1-agent")
    result = cli.invoke(token_cli.app, ["issue", "--sub", "agent-7", "--role", "tier1-agent"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 1 and result.stdout.count(".") == 2
