"""deskgate as an OAuth 2.0 authorization server, end to end: `deskgate serve` in its own process, real
HTTP token requests, real MCP clients (the SDK's own client-credentials providers among them) using the
tokens over Streamable HTTP. Runs on SQLite and, with DESKGATE_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import jwt
import keyring
import keyring.backends.fail
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from mcp import Client
from mcp.client.auth.extensions.client_credentials import (
    ClientCredentialsOAuthProvider,
    PrivateKeyJWTOAuthProvider,
    SignedJWTParameters,
)
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthMetadata, OAuthToken

from deskgate.scopes.clients import Client as PlatformClient
from deskgate.scopes.clients import ClientRegistry
from deskgate.scopes.grants import SESSION_TYPE
from deskgate.server.oauth import JWT_BEARER, MAX_BODY_BYTES
from tests.e2e.conftest import Deployment, call
from tests.e2e.test_transports import http_client

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def key_in_a_file() -> Iterator[None]:
    """The server process signs here, so the deployment's key must be where that process finds it: no
    in-process keyring (the tests under tests/scopes register a memory one that keyring would pick)."""
    before = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(before)


@pytest.fixture
def server(http_server: str) -> str:
    """`deskgate serve --transport http` (tests/e2e/conftest.py): its base URL is the issuer."""
    return http_server


def register(deployment: Deployment, name: str = "platform-a", role: str = "billing-agent",
             **options: Any) -> tuple[PlatformClient, str | None]:
    """A platform client registered in the deployment's store (the CLI's own registry call)."""
    return ClientRegistry(deployment.runtime.state_db).add_sync(name, role, **{"max_ttl": 600, **options})


def session(**fields: str) -> str:
    return json.dumps([{"type": SESSION_TYPE, **fields}])


async def token_request(base: str, data: dict[str, str] | bytes, *, auth: tuple[str, str] | None = None,
                        headers: dict[str, str] | None = None) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        if isinstance(data, bytes):
            return await http.post(f"{base}/oauth/token", content=data, auth=auth, headers={
                "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
        return await http.post(f"{base}/oauth/token", data=data, auth=auth, headers=headers)


def issued(deployment: Deployment) -> list[Any]:
    return deployment.runtime.state.tokens.list_sync(include_expired=True, now=int(time.time()))


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_platform_client_gets_a_bound_session_token_and_uses_it_over_streamable_http(
        deployment: Deployment, server: str, mode: str) -> None:
    """client_credentials + RFC 9396 deskgate_session + RFC 8707 resource: a token bound to C-1, capped by the
    client's ceiling, which reaches C-1's order and is refused another customer's; listed in the inventory
    and audited like a CLI-issued token, without the token or the secret in the audit log."""
    client, secret = register(deployment, max_refund="20")
    assert secret is not None
    response = await token_request(server, {
        "grant_type": "client_credentials", "resource": f"{server}/mcp",
        "authorization_details": session(customer_id=deployment.demo.customer_id)}, auth=(client.client_id, secret))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 600
    assert body["scope"] == " ".join(sorted(deployment.runtime.roles.scopes_of("billing-agent")))
    assert body["authorization_details"] == [{"type": SESSION_TYPE, "customer_id": deployment.demo.customer_id,
                                              "max_refund": "20"}]
    other = deployment.rows("SELECT id FROM orders WHERE customer_id <> ? ORDER BY id LIMIT 1",
                            (deployment.demo.customer_id,))[0][0]
    async with http_client(server, body["access_token"], mode) as mcp:
        assert (await call(mcp, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
        foreign = await call(mcp, "get_order", order_id=other)
        assert foreign["status"] == "denied" and foreign["code"] == "binding"
    (record,) = issued(deployment)
    assert (record.sub, record.client_id, record.customer, record.max_refund) == (
        "platform-a", client.client_id, deployment.demo.customer_id, "20")
    audit = deployment.audit_text()
    assert body["access_token"] not in audit and secret not in audit
    (event,) = [r for r in deployment.audit_records() if r.get("action") == "token.issued"]
    assert event["via"] == "oauth" and event["jti"] == record.jti and event["auth_method"] == "client_secret_basic"


async def test_client_secret_post_authenticates_as_well(deployment: Deployment, server: str) -> None:
    """RFC 6749 §2.3.1: client_id and client_secret in the body; a narrower scope is granted as asked."""
    client, secret = register(deployment, role="tier1-agent")
    assert secret is not None
    response = await token_request(server, {
        "grant_type": "client_credentials", "client_id": client.client_id, "client_secret": secret,
        "scope": "orders:read tickets:read", "authorization_details": session(ticket_id=deployment.demo.pii_ticket)})
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "orders:read tickets:read"
    async with http_client(server, response.json()["access_token"], "auto") as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert {"get_order", "get_ticket"} <= names and "add_ticket_note" not in names


async def test_bad_token_requests_are_refused_with_their_rfc_6749_error_and_issue_nothing(
        deployment: Deployment, server: str) -> None:
    """Each refusal has its registered error, `no-store`, 401 + WWW-Authenticate for client authentication;
    nothing is issued; each is audited without the secret."""
    client, secret = register(deployment, role="tier1-agent", max_refund="50")
    revoked, revoked_secret = register(deployment, name="platform-gone", role="tier1-agent")
    assert secret is not None and revoked_secret is not None
    ClientRegistry(deployment.runtime.state_db).revoke_sync(revoked.client_id)
    ok = {"grant_type": "client_credentials", "authorization_details": session(customer_id="C-1")}
    me = (client.client_id, secret)
    cases: list[tuple[str, dict[str, str] | bytes, tuple[str, str] | None, dict[str, str], int, str]] = [
        ("wrong secret", ok, (client.client_id, secret[:-2] + "xx"), {}, 401, "invalid_client"),
        ("unknown client", ok, ("dgc_" + "Q" * 24, secret), {}, 401, "invalid_client"),
        ("revoked client", ok, (revoked.client_id, revoked_secret), {}, 401, "invalid_client"),
        ("no client authentication", ok, None, {}, 401, "invalid_client"),
        ("two authentication methods", {**ok, "client_secret": secret, "client_id": client.client_id}, me, {}, 400,
         "invalid_request"),
        ("no grant_type", {"authorization_details": ok["authorization_details"]}, me, {}, 400, "invalid_request"),
        ("password grant", {**ok, "grant_type": "password"}, me, {}, 400, "unsupported_grant_type"),
        ("scope beyond the role", {**ok, "scope": "orders:read refunds:write"}, me, {}, 400, "invalid_scope"),
        ("payout cap above the client's ceiling", {**ok, "authorization_details": session(
            customer_id="C-1", max_refund="500")}, me, {}, 400, "invalid_authorization_details"),
        ("unbound session", {"grant_type": "client_credentials"}, me, {}, 400, "invalid_authorization_details"),
        ("unknown details type", {**ok, "authorization_details": '[{"type": "payment_initiation"}]'}, me, {}, 400,
         "invalid_authorization_details"),
        ("another resource", {**ok, "resource": "https://evil.example/mcp"}, me, {}, 400, "invalid_target"),
        ("oversized body", b"grant_type=client_credentials&pad=" + b"a" * MAX_BODY_BYTES, me, {}, 400,
         "invalid_request"),
        ("malformed body", b"grant_type=client_credentials&&%ff%fe=1", me, {}, 400, "invalid_request"),
        ("JSON body", json.dumps(ok).encode(), me, {"Content-Type": "application/json"}, 400, "invalid_request"),
        ("repeated parameter", b"grant_type=client_credentials&grant_type=client_credentials", me, {}, 400,
         "invalid_request"),
    ]
    for what, data, auth, headers, status, error in cases:
        response = await token_request(server, data, auth=auth, headers=headers)
        assert (response.status_code, response.json()["error"]) == (status, error), what
        assert response.headers["cache-control"] == "no-store", what
        assert secret not in response.text and "error_description" in response.json(), what
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Basic"), what
    assert issued(deployment) == []
    refusals = [r for r in deployment.audit_records() if r.get("action") == "oauth.token_refused"]
    assert [r["error"] for r in refusals] == [error for *_, error in cases]
    assert {"bad_secret", "unknown_client", "revoked_client", "scope_beyond_role", "refund_above_ceiling",
            "unbound_session", "wrong_resource", "body_too_large"} <= {r["code"] for r in refusals}
    assert secret not in deployment.audit_text() and revoked_secret not in deployment.audit_text()


async def test_failed_client_authentication_is_rate_limited_per_client_id(deployment: Deployment,
                                                                          server: str) -> None:
    """After 10 failures within the window even the right secret gets 429 with Retry-After; another client
    is not affected."""
    client, secret = register(deployment)
    other, other_secret = register(deployment, name="platform-b")
    assert secret is not None and other_secret is not None
    request = {"grant_type": "client_credentials", "authorization_details": session(customer_id="C-1")}
    statuses = [(await token_request(server, request, auth=(client.client_id, "dgs_guess"))).status_code
                for _ in range(10)]
    locked = await token_request(server, request, auth=(client.client_id, secret))
    if locked.status_code != 429:  # the failures straddled a window boundary: one more round fills this one
        statuses += [(await token_request(server, request, auth=(client.client_id, "dgs_guess"))).status_code
                     for _ in range(10)]
        locked = await token_request(server, request, auth=(client.client_id, secret))
    assert set(statuses) == {401}
    assert locked.status_code == 429 and locked.json()["error"] == "invalid_client"
    assert 0 < int(locked.headers["retry-after"]) <= 300
    assert (await token_request(server, request, auth=(other.client_id, other_secret))).status_code == 200


def assertion_for(client: PlatformClient, key: Ed25519PrivateKey, audience: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": client.client_id, "sub": client.client_id, "aud": audience, "iat": now,
                       "exp": now + 60, "jti": uuid.uuid4().hex}, key, algorithm="EdDSA")


async def test_a_private_key_jwt_client_gets_a_token_once_per_assertion(deployment: Deployment, server: str) -> None:
    """RFC 7523: an assertion signed by the registered key authenticates; replaying it is invalid_client, and
    an assertion signed by another key too."""
    key = Ed25519PrivateKey.generate()
    jwks = json.dumps(json.loads(jwt.get_algorithm_by_name("EdDSA").to_jwk(key.public_key())))
    client, _ = register(deployment, name="platform-jwt", jwks=jwks)
    signed = assertion_for(client, key, f"{server}/oauth/token")
    request = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER, "client_assertion": signed,
               "authorization_details": session(customer_id="C-1")}
    assert (await token_request(server, request)).status_code == 200
    replayed = await token_request(server, request)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
    forged = assertion_for(client, Ed25519PrivateKey.generate(), f"{server}/oauth/token")
    assert (await token_request(server, {**request, "client_assertion": forged})).status_code == 401
    refusals = [r for r in deployment.audit_records() if r.get("action") == "oauth.token_refused"]
    assert [(r["code"], r["client_id"]) for r in refusals] == [("replayed", client.client_id),
                                                               ("bad_signature", client.client_id)]
    assert len(issued(deployment)) == 1


async def test_metadata_names_this_issuer_and_the_protected_resource_points_at_it(server: str) -> None:
    """RFC 9728 metadata of /mcp names an authorization server whose RFC 8414 metadata exists and names itself;
    its authorization endpoint refuses clearly instead of answering 404."""
    async with httpx2.AsyncClient(timeout=30) as http:
        resource = (await http.get(f"{server}/.well-known/oauth-protected-resource/mcp")).json()
        assert resource["resource"] == f"{server}/mcp" and resource["authorization_servers"] == [server]
        answer = await http.get(f"{server}/.well-known/oauth-authorization-server")
        metadata = OAuthMetadata.model_validate(answer.json())
        assert str(metadata.issuer) == server and str(metadata.token_endpoint) == f"{server}/oauth/token"
        assert answer.json()["grant_types_supported"] == ["client_credentials"]
        assert answer.json()["authorization_details_types_supported"] == [SESSION_TYPE]
        authorize = await http.get(f"{server}/oauth/authorize?response_type=code&client_id=x")
        assert (authorize.status_code, authorize.json()["error"]) == (400, "unsupported_response_type")


class MemoryTokens:
    """The SDK's `TokenStorage`, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@asynccontextmanager
async def sdk_client(server: str, provider: httpx2.Auth) -> AsyncIterator[Client]:
    http = httpx2.AsyncClient(auth=provider, timeout=30)
    async with http, Client(streamable_http_client(f"{server}/mcp", http_client=http)) as client:
        yield client


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post", "private_key_jwt"])
async def test_the_mcp_sdk_client_credentials_providers_discover_us_get_a_token_and_call_a_tool(
        deployment: Deployment, server: str, method: str) -> None:
    """The SDK's own providers, from a 401 alone: RFC 9728 discovery, RFC 8414 metadata (issuer checked),
    the token request with `resource`, then real MCP calls with the token."""
    storage = MemoryTokens()
    provider: httpx2.Auth
    if method == "private_key_jwt":
        key = Ed25519PrivateKey.generate()
        jwks = json.dumps(json.loads(jwt.get_algorithm_by_name("EdDSA").to_jwk(key.public_key())))
        client, _ = register(deployment, role="tier1-agent", allow_unbound=True, jwks=jwks)
        pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
        signer = SignedJWTParameters(issuer=client.client_id, subject=client.client_id, signing_key=pem,
                                     signing_algorithm="EdDSA", lifetime_seconds=60)
        provider = PrivateKeyJWTOAuthProvider(f"{server}/mcp", storage, client.client_id,
                                              signer.create_assertion_provider(), issuer=server)
    else:
        client, secret = register(deployment, role="tier1-agent", allow_unbound=True)
        assert secret is not None
        provider = ClientCredentialsOAuthProvider(f"{server}/mcp", storage, client.client_id, secret,
                                                  token_endpoint_auth_method=method, issuer=server)  # type: ignore[arg-type]  # a Literal, parametrized
    async with sdk_client(server, provider) as mcp:
        names = {t.name for t in (await mcp.list_tools()).tools}
        assert "get_order" in names and "issue_refund" not in names
        assert (await call(mcp, "get_order", order_id=deployment.demo.delivered_order))["status"] == "ok"
    assert storage.tokens is not None and storage.tokens.scope is not None
    (record,) = issued(deployment)
    assert record.client_id == client.client_id and record.customer is None
    (event,) = [r for r in deployment.audit_records() if r.get("action") == "token.issued"]
    assert event["auth_method"] == method


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_a_token_whose_issuance_cannot_be_audited_is_revoked_and_not_handed_out(
        deployment: Deployment, server: str) -> None:
    """Fail closed: with the audit log unwritable the request answers server_error, and the token the issuer
    already recorded is revoked, so no unaudited token can work."""
    client, secret = register(deployment)
    assert secret is not None
    shutil.rmtree(deployment.home / "audit")
    (deployment.home / "audit").write_text("not a directory")
    response = await token_request(server, {"grant_type": "client_credentials",
                                            "authorization_details": session(customer_id="C-1")},
                                   auth=(client.client_id, secret))
    assert (response.status_code, response.json()["error"]) == (500, "server_error")
    assert "access_token" not in response.text
    (record,) = issued(deployment)
    assert record.revoked


NODE_SDK = "@modelcontextprotocol/sdk@1.32.2"  # v1, whose auth-extensions offer ClientCredentialsProvider
NODE_CLIENT = Path(__file__).parent / "node" / "oauth_client.mjs"


@pytest.fixture(scope="session")
def node_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The TypeScript SDK installed from the npm registry next to our client script (once per run)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed")
    where = tmp_path_factory.mktemp("node-client")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", NODE_SDK], cwd=where, check=True,
                   timeout=600, capture_output=True)
    shutil.copy(NODE_CLIENT, where / NODE_CLIENT.name)
    return where / NODE_CLIENT.name


async def test_the_typescript_sdk_client_credentials_provider_gets_a_bound_session_and_calls_tools(
        deployment: Deployment, server: str, node_client: Path) -> None:
    """@modelcontextprotocol/sdk's ClientCredentialsProvider (its token request extended with a
    deskgate_session) discovers us from a 401, gets a token bound to C-1, and that token reaches C-1's
    order and is refused another customer's."""
    client, secret = register(deployment, role="tier1-agent")
    assert secret is not None
    foreign = deployment.rows("SELECT id FROM orders WHERE customer_id <> ? ORDER BY id LIMIT 1",
                              (deployment.demo.customer_id,))[0][0]
    with anyio.fail_after(120):
        done = await anyio.run_process(
            ["node", str(node_client), f"{server}/mcp", server, client.client_id, deployment.demo.customer_id,
             deployment.demo.delivered_order, foreign], env={**os.environ, "CLIENT_SECRET": secret}, check=False)
    assert done.returncode == 0, done.stderr.decode()
    answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert "get_order" in answer["tools"] and "issue_refund" not in answer["tools"]
    assert answer["own"]["status"] == "ok"
    assert (answer["foreign"]["status"], answer["foreign"]["code"]) == ("denied", "binding")
    (record,) = issued(deployment)
    assert (record.client_id, record.customer) == (client.client_id, deployment.demo.customer_id)
