"""Platform clients (`scopes/clients.py`): registration, secrets, private_key_jwt assertions, lockout.

Runs on both engines (`database`). Assertions are real JWTs signed with real keys (`assertion` makes
each attack one line); the clock is a list the test moves, never a sleep.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePrivateKey, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key as rsa_key

from deskgate.scopes.clients import (
    ASSERTION_MAX_LIFETIME,
    FAILURE_WINDOW,
    FAILURES_ALLOWED,
    Client,
    ClientRegistry,
    client_keys,
)
from deskgate.server.errors import AuthenticationError, InvalidArguments
from deskgate.server.store.db import Database
from deskgate.server.store.state import StateStore

pytestmark = pytest.mark.anyio
TOKEN_ENDPOINT = "https://deskgate.example/oauth/token"
ISSUER = "https://deskgate.example"
AUDIENCES = frozenset({TOKEN_ENDPOINT, ISSUER})


def public_jwk(key: Any, **extra: str) -> dict[str, Any]:
    """The public JWK of a private key, with extra members (kid, use, alg)."""
    name = "EdDSA" if isinstance(key, Ed25519PrivateKey) else "ES256" if isinstance(key, EllipticCurvePrivateKey) \
        else "RS256"
    algorithm = jwt.get_algorithm_by_name(name)
    return {**json.loads(algorithm.to_jwk(key.public_key())), **extra}


@pytest.fixture
def now() -> list[float]:
    return [1_800_000_000.0]


@pytest.fixture
def registry(database: Database, store: StateStore, now: list[float]) -> ClientRegistry:
    """The registry over a database whose state store (its failure counters) is upgraded too."""
    clients = ClientRegistry(database, clock=lambda: now[0])
    clients.upgrade()
    return clients


@pytest.fixture
def signer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def jwt_client(registry: ClientRegistry, signer: Ed25519PrivateKey) -> Client:
    client, secret = registry.add_sync("platform-jwt", "tier1-agent", max_ttl=600,
                                       jwks=json.dumps({"keys": [public_jwk(signer, kid="k1")]}))
    assert secret is None
    return client


@pytest.fixture
def assertion(jwt_client: Client, signer: Ed25519PrivateKey, now: list[float]) -> Callable[..., str]:
    """A client assertion for `jwt_client`, with whatever claims or header a test changes."""

    def make(*, claims: dict[str, Any] | None = None, drop: tuple[str, ...] = (), key: Any = None,
             algorithm: str = "EdDSA", headers: dict[str, Any] | None = None) -> str:
        issued = int(now[0])
        body = {"iss": jwt_client.client_id, "sub": jwt_client.client_id, "aud": TOKEN_ENDPOINT, "iat": issued,
                "exp": issued + 60, "jti": uuid.uuid4().hex, **(claims or {})}
        for name in drop:
            body.pop(name)
        return jwt.encode(body, key or signer, algorithm=algorithm, headers={"kid": "k1", **(headers or {})})

    return make


async def refused(code: str, attempt: Any) -> None:
    with pytest.raises(AuthenticationError) as caught:
        await attempt
    assert caught.value.code == code
    assert caught.value.reason == "client authentication failed"


async def test_a_new_client_gets_a_secret_once_and_the_store_keeps_only_its_argon2id_hash(
        registry: ClientRegistry, database: Database) -> None:
    """The secret is returned by `add` and nowhere else: the table holds an argon2id hash, the repr neither."""
    client, secret = registry.add_sync("platform-a", "tier1-agent", max_ttl=3600)
    assert secret is not None and secret.startswith("dgs_") and len(secret) >= 40
    stored = database.read_sync(lambda tx: tx.query("SELECT * FROM oauth_clients"))
    assert secret not in repr(stored) and "$argon2id$" in repr(stored)
    assert "argon2" not in repr(client) and "argon2" not in json.dumps(registry.list_sync()[0].listing())
    assert (await registry.authenticate_secret(client.client_id, secret)).name == "platform-a"


async def test_a_wrong_secret_an_unknown_client_and_a_revoked_client_are_refused(registry: ClientRegistry) -> None:
    """Each is `invalid_client` to the caller; the audit code says which it was."""
    client, secret = registry.add_sync("platform-a", "tier1-agent", max_ttl=3600)
    assert secret is not None
    await refused("bad_secret", registry.authenticate_secret(client.client_id, secret[:-1] + "x"))
    await refused("bad_secret", registry.authenticate_secret(client.client_id, ""))
    await refused("unknown_client", registry.authenticate_secret("dgc_" + "A" * 24, secret))
    await refused("unknown_client", registry.authenticate_secret("platform-a", secret))
    revoked = registry.revoke_sync(client.client_id)
    assert revoked is not None and revoked.revoked_at is not None
    await refused("revoked_client", registry.authenticate_secret(client.client_id, secret))


async def test_a_secret_client_cannot_authenticate_by_assertion_nor_a_key_client_by_secret(
        registry: ClientRegistry, jwt_client: Client, assertion: Callable[..., str]) -> None:
    """The method is part of the registration: a client never switches to another one."""
    secret_client, _ = registry.add_sync("platform-a", "tier1-agent", max_ttl=3600)
    await refused("wrong_method", registry.authenticate_secret(jwt_client.client_id, "dgs_anything"))
    forged = assertion(claims={"iss": secret_client.client_id, "sub": secret_client.client_id})
    await refused("wrong_method", registry.authenticate_assertion(forged, audiences=AUDIENCES, client_id=None))


async def test_failed_authentications_lock_out_that_client_id_until_the_window_ends(
        registry: ClientRegistry, now: list[float]) -> None:
    """After FAILURES_ALLOWED failures even the right secret is refused (no argon2 work is done); other
    clients are unaffected; the next window admits it again."""
    client, secret = registry.add_sync("platform-a", "tier1-agent", max_ttl=3600)
    other, other_secret = registry.add_sync("platform-b", "tier1-agent", max_ttl=3600)
    assert secret is not None and other_secret is not None
    now[0] = now[0] - now[0] % FAILURE_WINDOW
    for _ in range(FAILURES_ALLOWED):
        await refused("bad_secret", registry.authenticate_secret(client.client_id, "dgs_guess"))
    await refused("locked_out", registry.authenticate_secret(client.client_id, secret))
    assert (await registry.authenticate_secret(other.client_id, other_secret)).client_id == other.client_id
    assert registry.retry_after() == FAILURE_WINDOW
    now[0] += FAILURE_WINDOW
    assert (await registry.authenticate_secret(client.client_id, secret)).client_id == client.client_id


async def test_guessing_client_ids_is_throttled_in_one_shared_bucket(registry: ClientRegistry) -> None:
    """Ids of no registered client share one failure counter, so id guessing is rate limited too."""
    for n in range(FAILURES_ALLOWED):
        await refused("unknown_client", registry.authenticate_secret(f"dgc_{n:024d}", "dgs_guess"))
    await refused("locked_out", registry.authenticate_secret("dgc_" + "Z" * 24, "dgs_guess"))


async def test_client_names_are_never_reused_and_must_be_plain(registry: ClientRegistry) -> None:
    """A name is the `sub` of the client's tokens: a second client may not take it, even after revocation."""
    client, _ = registry.add_sync("platform-a", "tier1-agent", max_ttl=3600)
    registry.revoke_sync(client.client_id)
    for name in ("platform-a", "", "-x", "a b", "x" * 65, "evil\nname"):
        with pytest.raises(InvalidArguments):
            registry.add_sync(name, "tier1-agent", max_ttl=3600)
    with pytest.raises(InvalidArguments):
        registry.add_sync("platform-c", "tier1-agent", max_ttl=3600, max_refund="-5")


async def test_a_valid_assertion_authenticates_once_and_its_replay_is_refused(
        registry: ClientRegistry, jwt_client: Client, assertion: Callable[..., str]) -> None:
    """RFC 7523 client authentication; the jti is single use (also with `aud` = the issuer identifier)."""
    for audience in (TOKEN_ENDPOINT, ISSUER):
        token = assertion(claims={"aud": audience})
        found = await registry.authenticate_assertion(token, audiences=AUDIENCES, client_id=jwt_client.client_id)
        assert found.client_id == jwt_client.client_id
        await refused("replayed", registry.authenticate_assertion(token, audiences=AUDIENCES, client_id=None))


@pytest.mark.parametrize(("attack", "code"), [
    (lambda a, o: a(algorithm="HS256", key=b"k" * 32), "alg_not_allowed"),
    (lambda a, o: a(key=Ed25519PrivateKey.generate()), "bad_signature"),
    (lambda a, o: a(headers={"kid": "other"}), "unknown_key"),
    (lambda a, o: a(headers={"jku": "https://evil.example/jwks"}), "bad_assertion"),
    (lambda a, o: a(claims={"aud": "https://other.example/token"}), "wrong_audience"),
    (lambda a, o: a(claims={"aud": [TOKEN_ENDPOINT]}), "wrong_audience"),
    (lambda a, o: a(claims={"sub": "dgc_" + "B" * 24}), "wrong_issuer"),
    (lambda a, o: a(claims={"exp": int(o[0]) + ASSERTION_MAX_LIFETIME * 10}), "too_long"),
    (lambda a, o: a(claims={"exp": int(o[0]) - 3600, "iat": int(o[0]) - 3660}), "expired"),
    (lambda a, o: a(claims={"iat": int(o[0]) + 600, "exp": int(o[0]) + 660}), "not_yet_valid"),
    (lambda a, o: a(claims={"exp": str(int(o[0]) + 60)}), "bad_assertion"),
    (lambda a, o: a(drop=("jti",)), "bad_assertion"),
    (lambda a, o: a(drop=("exp",)), "bad_assertion"),
    (lambda a, o: a()[:-6] + "AAAAAA", "bad_signature"),
    (lambda a, o: "x" * 9000, "unknown_client"),
])
async def test_a_bad_assertion_is_refused(registry: ClientRegistry, jwt_client: Client, assertion: Callable[..., str],
                                          now: list[float], attack: Callable[..., str], code: str) -> None:
    """Algorithm pinned, our keys only, exact audience as one string, short lifetime, required claims."""
    token = attack(assertion, now)
    await refused(code, registry.authenticate_assertion(token, audiences=AUDIENCES, client_id=None))


async def test_an_assertion_for_another_client_id_than_the_form_names_is_refused(
        registry: ClientRegistry, jwt_client: Client, assertion: Callable[..., str], now: list[float]) -> None:
    """A `client_id` parameter next to the assertion must name the assertion's own client."""
    await refused("wrong_issuer", registry.authenticate_assertion(assertion(), audiences=AUDIENCES,
                                                                  client_id="dgc_" + "C" * 24))


def test_a_client_jwks_must_hold_only_public_signing_keys_of_one_algorithm() -> None:
    """Private or symmetric material, weak RSA, unknown curves and mixed algorithms are refused at registration."""
    ed = Ed25519PrivateKey.generate()
    ec = generate_private_key(SECP256R1())
    rsa = rsa_key(public_exponent=65537, key_size=2048)
    assert client_keys(json.dumps(public_jwk(ed)))[1] == "EdDSA"
    assert client_keys(json.dumps(public_jwk(ec)))[1] == "ES256"
    assert client_keys(json.dumps(public_jwk(rsa)))[1] == "RS256"
    assert client_keys(json.dumps(public_jwk(rsa)), "PS256")[1] == "PS256"
    private = json.loads(jwt.get_algorithm_by_name("EdDSA").to_jwk(ed))
    weak = rsa_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key registration must refuse
    for text, algorithm in (
        (json.dumps(private), None),
        (json.dumps({"kty": "oct", "k": "c2VjcmV0"}), None),
        (json.dumps(public_jwk(weak)), None),
        (json.dumps(public_jwk(ed)), "RS256"),
        (json.dumps({"keys": [public_jwk(ed, kid="a"), public_jwk(ec, kid="b")]}), None),
        (json.dumps({"keys": [public_jwk(ed), public_jwk(Ed25519PrivateKey.generate())]}), None),
        (json.dumps(public_jwk(ed, use="enc")), None),
        ('{"kty": "OKP", "kty": "RSA"}', None),
        ("not json", None),
    ):
        with pytest.raises(InvalidArguments):
            client_keys(text, algorithm)
