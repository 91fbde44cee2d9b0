"""Registered platform clients: who may ask `/oauth/token` for session tokens, and how each proves it.

An agent platform (one session token per conversation) is registered by an admin with
`deskgate clients add NAME --role ROLE` and gets:

    client_id      `dgc_` + 24 random url-safe characters; public, names the client everywhere
    name           the `sub` of every token it is issued; never reused, even after revocation
    role           its scopes (config/roles.toml): a request may narrow them, never widen them
    max_ttl        the lifetime of its tokens (capped again by tokens.max_ttl when issued)
    max_refund     optional ceiling on the payout cap its sessions carry (and the cap when none is asked)
    allow_unbound  whether a session may be bound to no customer and no ticket (default: no)
    credential     a client secret (`client_secret_basic` / `client_secret_post`), shown once and
                   stored only as an argon2id hash; or public keys for `private_key_jwt` (RFC 7523)
                   with one algorithm pinned at registration

Client authentication protocol. Each failure raises `AuthenticationError` (the token endpoint answers
`invalid_client`; the precise `code` goes to the audit log) and nothing after it runs:

    0. lockout    FAILURES_ALLOWED failures of this client id within the current           locked_out
                  FAILURE_WINDOW: refused before any credential is examined
    1. client     the client exists, is not revoked, and is registered for the method      unknown_client,
                  used (a secret client never authenticates by assertion, or back)          revoked_client,
                                                                                            wrong_method
    2a. secret    argon2id verification (the library compares in constant time); an        bad_secret
                  unknown client costs the same (a dummy hash is verified)
    2b. assertion at most MAX_ASSERTION_BYTES; no `crit`, no key or key location in the    bad_assertion,
                  header; `alg` exactly the client's pinned algorithm, never the           alg_not_allowed,
                  assertion's choice; a key of this client by `kid` (or its only key);     unknown_key,
                  the signature by PyJWT with that one algorithm; iss = sub = client_id;   bad_signature,
                  aud one string, exactly the token endpoint or the issuer identifier;     wrong_issuer,
                  exp/nbf/iat integers, against our clock with ASSERTION_LEEWAY; exp at    wrong_audience,
                  most ASSERTION_MAX_LIFETIME ahead (and after iat); jti used once         expired, too_long,
                  (remembered until exp)                                                   replayed

Every failure of steps 1-2 counts against the client id (ids of no registered client share one
bucket; the counters are the state store's `Counters`), so guessing a secret costs FAILURE_WINDOW per
FAILURES_ALLOWED attempts. Nothing here ever
logs, stores or repeats a secret or an assertion.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError as InvalidArgon2Hash
from argon2.exceptions import VerificationError

from deskgate.scopes.tokens import SUBJECT, _check_amount
from deskgate.server.errors import AuthenticationError, InvalidArguments
from deskgate.server.store.db import Database, Row, Tx
from deskgate.server.store.migrations import Migration, upgrade
from deskgate.server.store.state import Counters

__all__ = ["ASSERTION_ALGORITHMS", "CLIENT_ID", "OAUTH_MIGRATIONS", "Client", "ClientRegistry", "claimed_client",
           "client_keys", "unique_members"]

CLIENT_ID = re.compile(r"^dgc_[A-Za-z0-9_-]{24}$")
CLIENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_SECRET_BYTES = 256
MAX_ASSERTION_BYTES = 8192
ASSERTION_MAX_LIFETIME = 300   # seconds an assertion may live (exp - now, exp - iat)
ASSERTION_LEEWAY = 30
FAILURES_ALLOWED = 10          # failed authentications per client id per window
FAILURE_WINDOW = 300
MAX_CLIENT_KEYS = 10
ASSERTION_ALGORITHMS = ("EdDSA", "ES256", "ES384", "RS256", "PS256")
AuthMethod = Literal["client_secret", "private_key_jwt"]

# Algorithms each kind of public key can verify; the first is the default for that key.
_ALGORITHMS_OF_KEY = {("OKP", "Ed25519"): ("EdDSA",), ("EC", "P-256"): ("ES256",), ("EC", "P-384"): ("ES384",),
                      ("RSA", None): ("RS256", "PS256")}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"})
_MIN_RSA_BITS = 2048
# RFC 9106 / OWASP's lighter argon2id profile: secrets are 256 random bits, so the hash only has to make a
# stolen table useless, while every concurrent token request pays its memory (19 MiB each).
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
_HASHING_THREADS = 4  # argon2 runs in at most 4 threads at once: failed logins cannot exhaust memory
_FAILURES = "oauth.client_auth_failures:"

OAUTH_MIGRATIONS = [
    Migration(1, "platform clients", """
CREATE TABLE oauth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    secret_hash TEXT,
    jwks TEXT,
    jwt_alg TEXT,
    max_ttl BIGINT NOT NULL,
    max_refund TEXT,
    allow_unbound BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE TABLE oauth_assertions (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX oauth_assertions_expiry ON oauth_assertions (expires_at)"""),
]

_COLUMNS = ("client_id, name, role, auth_method, max_ttl, max_refund, allow_unbound, created_at, revoked_at,"
            " jwt_alg, jwks, secret_hash")


@dataclass(frozen=True, slots=True)
class Client:
    """One registered platform client. Its repr shows neither the secret hash nor the keys."""

    client_id: str
    name: str
    role: str
    auth_method: AuthMethod
    max_ttl: int
    max_refund: str | None
    allow_unbound: bool
    created_at: int
    revoked_at: int | None
    jwt_alg: str | None = None
    jwks: str | None = field(default=None, repr=False)
    secret_hash: str | None = field(default=None, repr=False)

    @classmethod
    def from_row(cls, row: Row) -> Client:
        return cls(row[0], row[1], row[2], row[3], int(row[4]), row[5], bool(row[6]), int(row[7]),
                   None if row[8] is None else int(row[8]), row[9], row[10], row[11])

    def listing(self) -> dict[str, Any]:
        """What `clients list --json` shows: everything but the credential itself."""
        keys = json.loads(self.jwks)["keys"] if self.jwks else []
        return {"client_id": self.client_id, "name": self.name, "role": self.role,
                "token_endpoint_auth_methods": ["private_key_jwt"] if self.auth_method == "private_key_jwt"
                else ["client_secret_basic", "client_secret_post"],
                "jwt_alg": self.jwt_alg, "key_ids": [k.get("kid") for k in keys], "max_ttl": self.max_ttl,
                "max_refund": self.max_refund, "allow_unbound": self.allow_unbound,
                "created_at": self.created_at, "revoked_at": self.revoked_at}


def _refuse(code: str) -> AuthenticationError:
    return AuthenticationError("client authentication failed", code=code)


def client_keys(text: str, algorithm: str | None = None) -> tuple[str, str]:
    """A client's JWK Set (or one JWK) checked for `private_key_jwt`: (public JWKS JSON, pinned algorithm).

    Refused with `InvalidArguments`: anything but public OKP/Ed25519, EC P-256/P-384 or RSA (2048 bits
    and more) signing keys; private or symmetric members; keys that do not share one algorithm; several
    keys without distinct `kid`s.
    """
    try:
        parsed = json.loads(text, object_pairs_hook=unique_members)
    except (ValueError, RecursionError):
        raise InvalidArguments("the JWKS file is not a JSON object (duplicate members are refused)") from None
    keys = parsed.get("keys") if isinstance(parsed, dict) and "keys" in parsed else [parsed]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_CLIENT_KEYS:
        raise InvalidArguments(f"the JWKS must hold 1 to {MAX_CLIENT_KEYS} keys")
    chosen: set[str] = set()
    for key in keys:
        chosen.add(_check_public_key(key, algorithm))
    if len(chosen) != 1:
        raise InvalidArguments("every key of a client must use the same algorithm (pass --jwt-alg)")
    kids = [k.get("kid") for k in keys]
    if len(keys) > 1 and (None in kids or len(set(kids)) != len(kids)):
        raise InvalidArguments("several keys need distinct kid values")
    return json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":")), chosen.pop()


def _check_public_key(key: Any, algorithm: str | None) -> str:
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values() if not isinstance(v, list)):
        raise InvalidArguments("each key must be a JWK object")
    if key.keys() & _PRIVATE_MEMBERS:
        raise InvalidArguments("the JWKS holds private or symmetric key material; give only the public key")
    kind = (str(key.get("kty")), None if key.get("kty") == "RSA" else str(key.get("crv")))
    possible = _ALGORITHMS_OF_KEY.get(kind)
    if possible is None:
        raise InvalidArguments("keys must be OKP Ed25519, EC P-256 or P-384, or RSA")
    if key.get("use", "sig") != "sig":
        raise InvalidArguments("keys must be signing keys (use: sig)")
    chosen = algorithm or key.get("alg") or possible[0]
    if chosen not in possible or key.get("alg", chosen) != chosen:
        raise InvalidArguments(f"a {kind[0]} key cannot verify {chosen}; it can verify {', '.join(possible)}")
    try:
        loaded = jwt.PyJWK(key, algorithm=chosen).key
    except (jwt.PyJWTError, ValueError, TypeError):
        raise InvalidArguments("a key of the JWKS could not be loaded") from None
    if kind[0] == "RSA" and loaded.key_size < _MIN_RSA_BITS:
        raise InvalidArguments(f"RSA keys must have at least {_MIN_RSA_BITS} bits")
    return str(chosen)


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads` object hook refusing duplicate member names (parsers disagree on which one wins)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member")
    return out


class ClientRegistry:
    """The registered clients and their credential checks, on either engine (component "oauth")."""

    def __init__(self, db: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._failures = Counters(db)
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()
        self._hashing: anyio.CapacityLimiter | None = None  # made on the event loop, at first use

    def upgrade(self) -> list[Migration]:
        return upgrade(self._db, "oauth", OAUTH_MIGRATIONS)

    # -- administration (the CLI) ------------------------------------------------------------------

    def add_sync(self, name: str, role: str, *, max_ttl: int, max_refund: str | None = None,
                 allow_unbound: bool = False, jwks: str | None = None,
                 jwt_alg: str | None = None) -> tuple[Client, str | None]:
        """Register a client: (the client, its secret) - the secret exists only in this return value.

        With `jwks` (see `client_keys`) the client authenticates by `private_key_jwt` and gets no secret.
        """
        if not CLIENT_NAME.match(name) or not SUBJECT.match(name):
            raise InvalidArguments("a client name is 1-64 characters: letters, digits and . _ -")
        if not isinstance(max_ttl, int) or max_ttl <= 0:
            raise InvalidArguments("max_ttl must be a positive number of seconds")
        ceiling = _check_amount(max_refund)
        secret: str | None = None
        if jwks is not None:
            keys, alg = client_keys(jwks, jwt_alg)
            method: AuthMethod = "private_key_jwt"
            secret_hash = None
        elif jwt_alg is not None:
            raise InvalidArguments("--jwt-alg needs --jwks-file")
        else:
            keys, alg, method = None, None, "client_secret"
            secret = "dgs_" + secrets.token_urlsafe(32)
            secret_hash = _HASHER.hash(secret)
        client = Client("dgc_" + secrets.token_urlsafe(18), name, role, method, max_ttl, ceiling, allow_unbound,
                        int(self._clock()), None, alg, keys, secret_hash)

        def insert(tx: Tx) -> None:
            if tx.one("SELECT 1 FROM oauth_clients WHERE name = ?", (name,)):
                raise InvalidArguments(f"a client named {name} exists (names are never reused)")
            tx.execute(f"INSERT INTO oauth_clients ({_COLUMNS}) VALUES ({', '.join('?' * 12)})",  # noqa: S608 - fixed column list
                       (client.client_id, name, role, method, max_ttl, ceiling, int(allow_unbound),
                        client.created_at, None, alg, keys, secret_hash))

        self._db.write_sync(insert)
        return client, secret

    def list_sync(self) -> list[Client]:
        rows = self._db.read_sync(lambda tx: tx.query(
            f"SELECT {_COLUMNS} FROM oauth_clients ORDER BY created_at, client_id"))  # noqa: S608 - fixed column list
        return [Client.from_row(r) for r in rows]

    def revoke_sync(self, client_id: str) -> Client | None:
        """Revoke a client (no new token from now on); None when no such client exists."""
        now = int(self._clock())

        def revoke(tx: Tx) -> Client | None:
            tx.execute("UPDATE oauth_clients SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL",
                       (now, client_id))
            return _fetch(tx, client_id)

        return self._db.write_sync(revoke) if CLIENT_ID.match(client_id) else None

    # -- authentication (the token endpoint) --------------------------------------------------------

    async def authenticate_secret(self, client_id: str, secret: str) -> Client:
        """`client_secret_basic` / `client_secret_post`: the client, or `AuthenticationError`."""
        client = await self._lookup(client_id)
        bucket = client.client_id if client else "unknown"
        await self._not_locked_out(bucket)
        try:
            # 2a. always one argon2 verification, so an unknown client answers as slowly as a known one
            stored = client.secret_hash if client is not None and client.secret_hash else self._dummy_hash()
            if self._hashing is None:
                self._hashing = anyio.CapacityLimiter(_HASHING_THREADS)
            matches = await anyio.to_thread.run_sync(_matches, stored, secret, limiter=self._hashing)
            usable = self._usable(client, "client_secret")
            if not matches:
                raise _refuse("bad_secret")
        except AuthenticationError:
            await self._count_failure(bucket)
            raise
        return usable

    async def authenticate_assertion(self, assertion: str, *, audiences: frozenset[str],
                                     client_id: str | None) -> Client:
        """`private_key_jwt` (RFC 7523 §2.2): the client, or `AuthenticationError`."""
        claimed = claimed_client(assertion)
        client = await self._lookup(claimed) if claimed is not None else None
        bucket = client.client_id if client else "unknown"
        await self._not_locked_out(bucket)
        try:
            if client_id is not None and client_id != claimed:
                raise _refuse("wrong_issuer")
            usable = self._usable(client, "private_key_jwt")
            claims = _verified_assertion(usable, assertion, audiences, int(self._clock()))
            if not await self._first_use(usable.client_id, claims["jti"], claims["exp"]):
                raise _refuse("replayed")
        except AuthenticationError:
            await self._count_failure(bucket)
            raise
        return usable

    async def _lookup(self, client_id: str) -> Client | None:
        if not CLIENT_ID.match(client_id):
            return None
        return await self._db.read(lambda tx: _fetch(tx, client_id))

    @staticmethod
    def _usable(client: Client | None, method: AuthMethod) -> Client:
        # 1. the client exists, is active and uses this method
        if client is None:
            raise _refuse("unknown_client")
        if client.revoked_at is not None:
            raise _refuse("revoked_client")
        if client.auth_method != method:
            raise _refuse("wrong_method")
        return client

    def _window(self) -> int:
        now = int(self._clock())
        return now - now % FAILURE_WINDOW

    def retry_after(self) -> int:
        """Seconds until the current failure window ends (the `Retry-After` of a locked-out client)."""
        now = int(self._clock())
        return FAILURE_WINDOW - now % FAILURE_WINDOW

    async def _not_locked_out(self, bucket: str) -> None:
        # 0. lockout, before any credential is examined (and before argon2 spends memory on it)
        if await self._failures.get(_FAILURES + bucket, self._window()) >= FAILURES_ALLOWED:
            raise _refuse("locked_out")

    async def _count_failure(self, bucket: str) -> None:
        await self._failures.add_within(_FAILURES + bucket, self._window(), 1, None)

    async def _first_use(self, client_id: str, jti: str, expires_at: int) -> bool:
        now = int(self._clock())

        def record(tx: Tx) -> bool:
            tx.execute("DELETE FROM oauth_assertions WHERE expires_at < ?", (now - ASSERTION_LEEWAY - 1,))
            return tx.execute("INSERT INTO oauth_assertions (client_id, jti, expires_at) VALUES (?, ?, ?)"
                              " ON CONFLICT (client_id, jti) DO NOTHING", (client_id, jti, expires_at)) == 1

        return await self._db.write(record)

    def _dummy_hash(self) -> str:
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = _HASHER.hash(secrets.token_urlsafe(32))
            return self._dummy


def _fetch(tx: Tx, client_id: str) -> Client | None:
    row = tx.one(f"SELECT {_COLUMNS} FROM oauth_clients WHERE client_id = ?", (client_id,))  # noqa: S608 - fixed column list
    return Client.from_row(row) if row else None


def _matches(stored: str, secret: str) -> bool:
    if not isinstance(secret, str) or not 0 < len(secret.encode("utf-8", "surrogatepass")) <= MAX_SECRET_BYTES:
        return False
    try:
        return _HASHER.verify(stored, secret)
    except (VerificationError, InvalidArgon2Hash):  # a mismatch is a VerificationError
        return False


def claimed_client(assertion: str) -> str | None:
    """The client an assertion says it comes from (its `iss`, unverified): only to find the keys."""
    if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION_BYTES:
        return None
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) and CLIENT_ID.match(issuer) else None


def _verified_assertion(client: Client, assertion: str, audiences: frozenset[str], now: int) -> dict[str, Any]:
    """2b. The claims of a client assertion this client signed for us, or `AuthenticationError`."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise _refuse("bad_assertion") from None
    if header.keys() & _KEY_HEADERS:
        raise _refuse("bad_assertion")
    if header.get("alg") != client.jwt_alg or client.jwt_alg not in ASSERTION_ALGORITHMS:
        raise _refuse("alg_not_allowed")
    key = _key_for(client, header.get("kid"))
    if key is None:
        raise _refuse("unknown_key")
    try:
        # The signature, by PyJWT with the one pinned algorithm; the times below, against our clock.
        claims: dict[str, Any] = jwt.decode(
            assertion, key, algorithms=[client.jwt_alg],
            options={"require": ["iss", "sub", "aud", "exp", "jti"], "verify_aud": False, "verify_exp": False,
                     "verify_nbf": False, "verify_iat": False})
    except jwt.InvalidSignatureError:
        raise _refuse("bad_signature") from None
    except jwt.PyJWTError:
        raise _refuse("bad_assertion") from None
    if claims["iss"] != client.client_id or claims["sub"] != client.client_id:
        raise _refuse("wrong_issuer")
    if not isinstance(claims["aud"], str) or claims["aud"] not in audiences:
        raise _refuse("wrong_audience")
    exp, iat, nbf = claims["exp"], claims.get("iat", now), claims.get("nbf", now)
    if any(type(t) is not int for t in (exp, iat, nbf)):  # integers only: no "123", 1.5 or true
        raise _refuse("bad_assertion")
    if exp <= now - ASSERTION_LEEWAY:
        raise _refuse("expired")
    if iat > now + ASSERTION_LEEWAY or nbf > now + ASSERTION_LEEWAY:
        raise _refuse("not_yet_valid")
    if exp - now > ASSERTION_MAX_LIFETIME + ASSERTION_LEEWAY or exp - iat > ASSERTION_MAX_LIFETIME:
        raise _refuse("too_long")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 200 or not jti.isprintable():
        raise _refuse("bad_assertion")
    return claims


def _key_for(client: Client, kid: Any) -> Any:
    keys: list[dict[str, Any]] = json.loads(client.jwks or '{"keys": []}')["keys"]
    if kid is None:
        chosen = keys[0] if len(keys) == 1 else None
    else:
        chosen = next((k for k in keys if k.get("kid") == kid), None)
    return None if chosen is None else jwt.PyJWK(chosen, algorithm=client.jwt_alg).key
