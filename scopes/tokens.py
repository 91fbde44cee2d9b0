"""Session tokens: issuing and verifying RFC 9068 access-token JWTs, following RFC 8725.

A token is `base64url(header) . base64url(claims) . base64url(Ed25519 signature)`:

    header  {"alg": "EdDSA", "kid": <RFC 7638 thumbprint of one of our keys>, "typ": "at+jwt"}
    claims  iss aud sub client_id iat nbf exp jti scope sid
            and, when the admin bound the session: customer, ticket, max_refund (a decimal string),
            manifest_hash

Verification protocol. Each step refuses with `AuthenticationError` (reason always "invalid
token", the precise `code` for the audit log), and nothing after a refusal runs:

    1. size       the token is at most `tokens.max_token_bytes`, before any parsing   too_large
                  and exactly three unpadded base64url segments of JSON objects      malformed
                  without duplicate members
    2. header     only alg, typ, kid; no crit                                         crit_refused
                  no key or key location in the token (jwk, jku, x5u, x5c, ...)       foreign_key_header
                  nothing else                                                        unexpected_header
                  alg exactly "EdDSA" - the server's choice, never the token's        alg_not_allowed
                  typ exactly "at+jwt" (no other kind of JWT is accepted as one)      wrong_typ
    3. key        kid looked up among our own verifying keys only                    bad_kid, unknown_kid
    4. shape      every required claim present with its exact type: time claims are   missing_claim,
                  integers (not strings, floats or booleans); no unknown claim        bad_claim, bad_time_claim,
                                                                                      unexpected_claim
    5. signature  PyJWT with algorithms=["EdDSA"] and our key, then its registered-   bad_signature
                  claim checks: every claim required, iss exact, aud exactly ours     wrong_issuer, wrong_audience
                  (strict: a list is refused even if it holds ours), exp/nbf/iat      expired, not_yet_valid
                  against the clock with the configured leeway
    6. rules      lifetime (exp - iat) positive and at most max_ttl; every scope in   lifetime_too_long,
                  the catalogue                                                       unknown_scope
    7. revocation the jti, the sid, or the sub (for tokens issued before a subject    revoked
                  revocation) - on EVERY call, a cache hit included

Steps 1-6 depend only on the token bytes, so their result (a `Session`, which holds no token) is
cached until `exp`, keyed by the SHA-256 of the token; step 7 never is. Callers MUST NOT log a
token: `Session` and `AuthenticationError` never contain one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import jwt

from deskgate.scopes.catalogue import unknown_scopes
from deskgate.scopes.keys import KID, SigningKeys, b64url_decode
from deskgate.scopes.session import Session
from deskgate.server.errors import AuthenticationError, InvalidArguments
from deskgate.server.settings import TokensSection, parse_duration
from deskgate.server.store.state import IssuedToken, TokenLedger

__all__ = ["ALGORITHM", "SUBJECT", "TOKEN_ID", "TOKEN_TYPE", "Inspection", "TokenIssuer", "TokenVerifier",
           "token_fingerprint"]

ALGORITHM = "EdDSA"
TOKEN_TYPE = "at+jwt"  # noqa: S105 - the RFC 9068 media type, not a secret
DEFAULT_CLIENT_ID = "deskgate-cli"

_SEGMENTS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")  # empty signature: refused by the checks
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"})
_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
_REQUIRED = ("iss", "aud", "sub", "client_id", "iat", "nbf", "exp", "jti", "scope", "sid")
_TIME_CLAIMS = ("iat", "nbf", "exp")
TOKEN_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")              # jti, sid: random, url-safe
SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$")  # sub, client_id: an agent or a person
_OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")  # customer, ticket: e.g. C-1042, T-880
_AMOUNT = re.compile(r"^[0-9]{1,12}(\.[0-9]{1,2})?$")
_MANIFEST_HASH = re.compile(r"^[0-9a-f]{64}$")
_STRING_CLAIMS = {"iss": None, "sub": SUBJECT, "client_id": SUBJECT, "jti": TOKEN_ID, "sid": TOKEN_ID,
                  "scope": None}
_OPTIONAL_CLAIMS = {"customer": _OBJECT_ID, "ticket": _OBJECT_ID, "max_refund": _AMOUNT,
                    "manifest_hash": _MANIFEST_HASH}
_PYJWT_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    # Order matters: subclasses before the classes they extend.
    (jwt.InvalidSignatureError, "bad_signature"),
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not_yet_valid"),
    (jwt.InvalidAudienceError, "wrong_audience"),
    (jwt.InvalidIssuerError, "wrong_issuer"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidIssuedAtError, "bad_time_claim"),
)


def _refuse(code: str) -> AuthenticationError:
    return AuthenticationError("invalid token", code=code)


def token_fingerprint(token: str) -> str:
    """A short, one-way name for a token, for logs and audit records (never the token)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class TokenIssuer:
    """Signs session tokens with the current key and records each one (metadata only) in the ledger."""

    def __init__(self, keys: SigningKeys, ledger: TokenLedger, tokens: TokensSection, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._ledger = ledger
        self._settings = tokens
        self._max_ttl = parse_duration(tokens.max_ttl)
        self._clock = clock

    def issue(self, sub: str, scopes: Iterable[str], ttl: int, *, customer: str | None = None,
              ticket: str | None = None, max_refund: Decimal | str | None = None,
              client_id: str = DEFAULT_CLIENT_ID, manifest_hash: str | None = None) -> tuple[str, IssuedToken]:
        """A new token for one agent session; `ttl` (seconds) is capped by `tokens.max_ttl`.

        Bad input raises `InvalidArguments` and issues nothing. The token is returned only after
        its record is durable, so every token that exists can be listed and revoked.
        """
        granted = _check_issue_arguments(sub, scopes, ttl, client_id, customer, ticket, manifest_hash)
        refund = _check_amount(max_refund)
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._settings.issuer, "aud": self._settings.audience, "sub": sub, "client_id": client_id,
            "iat": now, "nbf": now, "exp": now + min(ttl, self._max_ttl),
            "jti": secrets.token_urlsafe(24), "sid": secrets.token_urlsafe(24), "scope": " ".join(granted),
        }
        optional = {"customer": customer, "ticket": ticket, "max_refund": refund, "manifest_hash": manifest_hash}
        claims.update({k: v for k, v in optional.items() if v is not None})
        kid, private = self._keys.signing_key()
        token = jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid, "typ": TOKEN_TYPE})
        record = IssuedToken(jti=claims["jti"], sub=sub, sid=claims["sid"], client_id=client_id,
                             scopes=claims["scope"], customer=customer, ticket=ticket, max_refund=refund,
                             kid=kid, issued_at=now, expires_at=claims["exp"])
        self._ledger.record_sync(record)
        return token, record


def _check_issue_arguments(sub: str, scopes: Iterable[str], ttl: int, client_id: str, customer: str | None,
                           ticket: str | None, manifest_hash: str | None) -> list[str]:
    granted = sorted(set(scopes))
    if not isinstance(sub, str) or not SUBJECT.match(sub):
        raise InvalidArguments("sub must be 1-128 characters: letters, digits and . _ @ : + -")
    if not isinstance(client_id, str) or not SUBJECT.match(client_id):
        raise InvalidArguments("client_id must be 1-128 characters: letters, digits and . _ @ : + -")
    if not granted:
        raise InvalidArguments("a token needs at least one scope")
    unknown = unknown_scopes(set(granted))
    if unknown:
        raise InvalidArguments(f"unknown scope(s): {', '.join(sorted(unknown))}")
    if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0:
        raise InvalidArguments("ttl must be a positive number of seconds")
    for name, value in (("customer", customer), ("ticket", ticket)):
        if value is not None and not _OBJECT_ID.match(value):
            raise InvalidArguments(f"{name} must be an identifier like C-1042 (letters, digits, _ and -)")
    if manifest_hash is not None and not _MANIFEST_HASH.match(manifest_hash):
        raise InvalidArguments("manifest_hash must be 64 lowercase hex digits")
    return granted


def _check_amount(amount: Decimal | str | None) -> str | None:
    if amount is None:
        return None
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidArguments("max_refund must be a decimal amount like 50 or 49.99") from None
    text = format(value, "f")
    if not value.is_finite() or value < 0 or not _AMOUNT.match(text):
        raise InvalidArguments("max_refund must be a non-negative amount with at most 2 decimals")
    return text


@dataclass(frozen=True, slots=True)
class Inspection:
    """What `token inspect` shows: the decoded parts (unverified) and the verdict."""

    header: dict[str, Any] | None
    claims: dict[str, Any] | None
    session: Session | None
    refusal: AuthenticationError | None


class TokenVerifier:
    """Verifies session tokens (see the module docstring for the protocol) and caches the result."""

    def __init__(self, keys: SigningKeys, ledger: TokenLedger, tokens: TokensSection, *,
                 cache_size: int = 4096) -> None:
        self._keys = keys
        self._ledger = ledger
        self._settings = tokens
        self._max_ttl = parse_duration(tokens.max_ttl)
        self._cache: OrderedDict[bytes, Session] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._pyjwt = jwt.PyJWT({"require": list(_REQUIRED), "strict_aud": True, "verify_signature": True})

    @property
    def audience(self) -> str:
        return self._settings.audience

    async def verify(self, token: str) -> Session:
        """The session a token proves, or `AuthenticationError`. Checks revocation on every call."""
        key, session = self._signed(token)
        if await self._ledger.is_revoked(session.jti, session.sid, session.sub, session.issued_at):
            raise self._revoked(key)
        return session

    def verify_sync(self, token: str) -> Session:
        """`verify` for the CLI and the stdio start-up, which run outside an event loop."""
        key, session = self._signed(token)
        if self._ledger.is_revoked_sync(session.jti, session.sid, session.sub, session.issued_at):
            raise self._revoked(key)
        return session

    def inspect(self, token: str) -> Inspection:
        """Decode a token for an admin and say whether (and why not) it would be accepted."""
        header = claims = None
        if isinstance(token, str) and len(token) <= self._settings.max_token_bytes and _SEGMENTS.match(token):
            parts = token.split(".")
            header, claims = _json_object(parts[0]), _json_object(parts[1])
        try:
            return Inspection(header, claims, self.verify_sync(token), None)
        except AuthenticationError as refusal:
            return Inspection(header, claims, None, refusal)

    def cache_keys(self) -> list[bytes]:
        """What the cache is keyed by: SHA-256 digests of tokens, never a token (for tests and metrics)."""
        with self._lock:
            return list(self._cache)

    def _revoked(self, key: bytes) -> AuthenticationError:
        with self._lock:
            self._cache.pop(key, None)
        return _refuse("revoked")

    def _signed(self, token: str) -> tuple[bytes, Session]:
        """Steps 1-6, or their cached result while the token is unexpired."""
        # 1. size, before anything else looks at the token
        if not isinstance(token, str) or len(token) > self._settings.max_token_bytes:
            raise _refuse("too_large" if isinstance(token, str) else "malformed")
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        now = time.time()  # the clock PyJWT checks `exp` against
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                if now < hit.expires_at:
                    self._cache.move_to_end(key)
                    return key, hit
                del self._cache[key]
        session = self._check(token)
        with self._lock:
            self._cache[key] = session
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return key, session

    def _check(self, token: str) -> Session:
        # 1. shape of the envelope
        if not _SEGMENTS.match(token):
            raise _refuse("malformed")
        encoded_header, encoded_claims, _ = token.split(".")
        header, claims = _json_object(encoded_header), _json_object(encoded_claims)
        if header is None or claims is None:
            raise _refuse("malformed")

        # 2. header, before any cryptography
        if "crit" in header:
            raise _refuse("crit_refused")
        if header.keys() & _KEY_HEADERS:
            raise _refuse("foreign_key_header")
        if header.keys() - _HEADER_MEMBERS:
            raise _refuse("unexpected_header")
        if header.get("alg") != ALGORITHM:
            raise _refuse("alg_not_allowed")
        if header.get("typ") != TOKEN_TYPE:
            raise _refuse("wrong_typ")

        # 3. key: only ours, looked up by a well-formed kid
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID.match(kid):
            raise _refuse("bad_kid")
        public = self._keys.verification_key(kid)
        if public is None:
            raise _refuse("unknown_kid")

        # 4. claim shapes: exact types, so nothing below coerces "123" or 1.5 or true into a time
        _check_claim_shapes(claims)

        # 5. signature, then PyJWT's registered-claim checks, the algorithm pinned by us
        try:
            self._pyjwt.decode_complete(
                token, public, algorithms=[ALGORITHM], audience=self._settings.audience,
                issuer=self._settings.issuer, leeway=self._settings.leeway_seconds,
            )
        except jwt.PyJWTError as exc:
            code = next((c for cls, c in _PYJWT_ERRORS if isinstance(exc, cls)), "malformed")
            raise _refuse(code) from None

        # 6. deployment rules
        lifetime = claims["exp"] - claims["iat"]
        if lifetime <= 0 or lifetime > self._max_ttl:
            raise _refuse("lifetime_too_long" if lifetime > 0 else "bad_time_claim")
        scopes = claims["scope"].split(" ")
        if "" in scopes:
            raise _refuse("bad_claim")
        if unknown_scopes(set(scopes)):
            raise _refuse("unknown_scope")
        return Session(
            sub=claims["sub"], sid=claims["sid"], jti=claims["jti"], client_id=claims["client_id"],
            scopes=frozenset(scopes), expires_at=claims["exp"], issued_at=claims["iat"],
            customer=claims.get("customer"), ticket=claims.get("ticket"),
            max_refund=Decimal(claims["max_refund"]) if "max_refund" in claims else None,
            manifest_hash=claims.get("manifest_hash"), kid=kid,
        )


def _check_claim_shapes(claims: dict[str, Any]) -> None:
    for name in _REQUIRED:
        if name not in claims:
            raise _refuse("missing_claim")
    if claims.keys() - set(_REQUIRED) - _OPTIONAL_CLAIMS.keys():
        raise _refuse("unexpected_claim")
    for name in _TIME_CLAIMS:
        if type(claims[name]) is not int:  # bool is an int subclass; `type` keeps it out
            raise _refuse("bad_time_claim")
    if not claims["aud"] or not isinstance(claims["aud"], str | list):
        raise _refuse("wrong_audience")
    for name, pattern in (*_STRING_CLAIMS.items(), *_OPTIONAL_CLAIMS.items()):
        value = claims.get(name)
        if name not in claims and name in _OPTIONAL_CLAIMS:
            continue
        if not isinstance(value, str) or not value or (pattern is not None and not pattern.match(value)):
            raise _refuse("bad_claim")


def _json_object(segment: str) -> dict[str, Any] | None:
    """A base64url JSON object with unique member names, or None."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            raise ValueError("duplicate member")
        return out

    try:
        value = json.loads(b64url_decode(segment), object_pairs_hook=unique)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None

