"""Issuing and verifying genuine tokens: claims, the ledger, rotation, and the verification cache."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from decimal import Decimal

import pytest

from deskgate.scopes.keys import SigningKeys
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier
from deskgate.server.errors import AuthenticationError, InvalidArguments
from deskgate.server.settings import Paths, Settings
from deskgate.server.store.state import StateStore


def decoded(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header, claims = (json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in token.split(".")[:2])
    return header, claims


@pytest.mark.anyio
async def test_an_issued_token_verifies_into_its_session(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """sub, sid, jti, scopes, bindings and the refund limit survive the round trip."""
    token, record = issuer.issue("agent-7", ["orders:read", "refunds:write"], 900, customer="C-1042",
                                 ticket="T-880", max_refund="49.90")
    session = await verifier.verify(token)
    assert (session.sub, session.sid, session.jti) == ("agent-7", record.sid, record.jti)
    assert session.scopes == {"orders:read", "refunds:write"}
    assert (session.customer, session.ticket, session.max_refund) == ("C-1042", "T-880", Decimal("49.90"))
    assert session.expires_at - session.issued_at == 900
    assert verifier.verify_sync(token) == session


def test_an_issued_token_has_the_rfc_9068_header_and_claims(issuer: TokenIssuer, keys: SigningKeys,
                                                            settings: Settings) -> None:
    """typ at+jwt, alg EdDSA, our kid; iss, aud, sub, client_id, iat, nbf, exp, jti, scope, sid."""
    token, record = issuer.issue("agent-7", ["tickets:read", "notes:write"], 600)
    header, claims = decoded(token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": keys.current_kid}
    assert set(claims) == {"iss", "aud", "sub", "client_id", "iat", "nbf", "exp", "jti", "scope", "sid"}
    assert claims["iss"] == settings.tokens.issuer and claims["aud"] == settings.tokens.audience
    assert claims["scope"] == "notes:write tickets:read"
    assert claims["iat"] == claims["nbf"] == record.issued_at and claims["exp"] == record.expires_at


def test_every_token_gets_a_fresh_jti_and_sid(issuer: TokenIssuer) -> None:
    """Two sessions for the same agent never share an id."""
    _, first = issuer.issue("agent-7", ["orders:read"], 600)
    _, second = issuer.issue("agent-7", ["orders:read"], 600)
    assert first.jti != second.jti and first.sid != second.sid


def test_the_ttl_is_capped_by_max_ttl(issuer: TokenIssuer) -> None:
    """Asking for a week gets max_ttl (8h)."""
    _, record = issuer.issue("agent-7", ["orders:read"], 7 * 86400)
    assert record.expires_at - record.issued_at == 8 * 3600


def test_the_ledger_records_metadata_and_never_the_token(issuer: TokenIssuer, store: StateStore) -> None:
    """`token list` can show every token, but no row holds a token or its signature."""
    token, record = issuer.issue("agent-7", ["orders:read"], 600, customer="C-1")
    (listed,) = store.tokens.list_sync(include_expired=True, now=int(time.time()))
    assert listed == record
    rows = store.db.read_sync(lambda tx: tx.query("SELECT * FROM issued_tokens"))
    flat = " ".join(str(v) for row in rows for v in row)
    assert token not in flat and token.split(".")[2] not in flat


@pytest.mark.parametrize("kwargs, message", [
    ({"scopes": ["orders:read", "root:all"]}, "unknown scope"),
    ({"scopes": []}, "at least one scope"),
    ({"sub": ""}, "sub"),
    ({"sub": "agent 7\n"}, "sub"),
    ({"ttl": 0}, "ttl"),
    ({"ttl": -5}, "ttl"),
    ({"customer": "C-1; DROP TABLE"}, "customer"),
    ({"ticket": "../T-1"}, "ticket"),
    ({"max_refund": "-1"}, "max_refund"),
    ({"max_refund": "NaN"}, "max_refund"),
    ({"max_refund": "1.001"}, "max_refund"),
    ({"max_refund": "lots"}, "max_refund"),
    ({"client_id": "has space"}, "client_id"),
])
def test_bad_issue_arguments_are_refused_and_record_nothing(issuer: TokenIssuer, store: StateStore,
                                                            kwargs: dict[str, object], message: str) -> None:
    """Each bad input is InvalidArguments with a clear reason, and no token is recorded."""
    arguments: dict[str, object] = {"sub": "agent-7", "scopes": ["orders:read"], "ttl": 600, **kwargs}
    with pytest.raises(InvalidArguments, match=message):
        issuer.issue(**arguments)  # type: ignore[arg-type]
    assert store.tokens.list_sync(include_expired=True, now=0) == []


@pytest.mark.anyio
async def test_tokens_signed_before_a_rotation_verify_and_new_ones_carry_the_new_kid(
        keys: SigningKeys, issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Rotation breaks no session: old tokens verify until they expire; the JWKS shows both keys."""
    old_token, old_record = issuer.issue("agent-7", ["orders:read"], 600)
    new_kid = keys.rotate().kid
    new_token, new_record = issuer.issue("agent-7", ["orders:read"], 600)
    assert old_record.kid != new_kid and new_record.kid == new_kid
    assert decoded(new_token)[0]["kid"] == new_kid
    assert (await verifier.verify(old_token)).jti == old_record.jti
    assert (await verifier.verify(new_token)).jti == new_record.jti
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new_kid, old_record.kid]


@pytest.mark.anyio
async def test_the_cache_is_keyed_by_a_hash_and_never_holds_the_raw_token(issuer: TokenIssuer,
                                                                          verifier: TokenVerifier) -> None:
    """What stays in memory after verification is SHA-256 digests and Sessions, no token."""
    token, _ = issuer.issue("agent-7", ["orders:read"], 600)
    session = await verifier.verify(token)
    assert verifier.cache_keys() == [hashlib.sha256(token.encode()).digest()]
    assert token not in repr(session) and token.split(".")[2] not in repr(session)


@pytest.mark.anyio
async def test_revocation_beats_the_cache(issuer: TokenIssuer, verifier: TokenVerifier, store: StateStore) -> None:
    """A cached token revoked a moment later is refused on its very next use, and leaves the cache."""
    token, record = issuer.issue("agent-7", ["orders:read"], 600)
    await verifier.verify(token)
    await verifier.verify(token)
    store.tokens.revoke_sync("sid", record.sid, "compromised", int(time.time()))
    with pytest.raises(AuthenticationError) as refusal:
        await verifier.verify(token)
    assert refusal.value.code == "revoked"
    assert verifier.cache_keys() == []


@pytest.mark.anyio
async def test_a_revocation_in_another_process_beats_the_cache(issuer: TokenIssuer, verifier: TokenVerifier,
                                                               store: StateStore) -> None:
    """Revocation is read from the shared store on every call, not from this process's memory."""
    token, record = issuer.issue("agent-7", ["orders:read"], 600)
    await verifier.verify(token)
    other_process = StateStore(store.db)  # a second store object: the CLI's view of the same database
    other_process.tokens.revoke_sync("jti", record.jti, "left the company", int(time.time()))
    with pytest.raises(AuthenticationError):
        verifier.verify_sync(token)


@pytest.mark.anyio
async def test_a_subject_revocation_spares_tokens_issued_after_it(keys: SigningKeys, settings: Settings,
                                                                  verifier: TokenVerifier, store: StateStore) -> None:
    """`revoke --sub` ends every earlier session of that agent; a token issued later works."""
    now = int(time.time())
    earlier = TokenIssuer(keys, store.tokens, settings.tokens, clock=lambda: now - 100)
    before, _ = earlier.issue("agent-7", ["orders:read"], 600)
    store.tokens.revoke_sync("sub", "agent-7", "rotate credentials", now - 50)
    later = TokenIssuer(keys, store.tokens, settings.tokens, clock=lambda: now)
    after, _ = later.issue("agent-7", ["orders:read"], 600)
    with pytest.raises(AuthenticationError):
        await verifier.verify(before)
    assert (await verifier.verify(after)).sub == "agent-7"


@pytest.mark.anyio
async def test_the_cache_is_bounded(keys: SigningKeys, store: StateStore, settings: Settings,
                                    issuer: TokenIssuer) -> None:
    """Old entries are evicted beyond the configured size; evicted tokens still verify (uncached)."""
    verifier = TokenVerifier(keys, store.tokens, settings.tokens, cache_size=2)
    tokens = [issuer.issue(f"agent-{i}", ["orders:read"], 600)[0] for i in range(3)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier.cache_keys()) == 2
    assert hashlib.sha256(tokens[0].encode()).digest() not in verifier.cache_keys()
    assert (await verifier.verify(tokens[0])).sub == "agent-0"


@pytest.mark.anyio
async def test_a_refused_token_is_never_cached(verifier: TokenVerifier, forge: object) -> None:
    """Only verified sessions enter the cache."""
    with pytest.raises(AuthenticationError):
        await verifier.verify(forge(claims={"aud": "other"}))  # type: ignore[operator]
    assert verifier.cache_keys() == []


def test_inspect_shows_claims_and_the_reason_for_refusal(issuer: TokenIssuer, verifier: TokenVerifier,
                                                         store: StateStore) -> None:
    """`token inspect` decodes the token and names the check it fails."""
    token, record = issuer.issue("agent-7", ["orders:read"], 600)
    seen = verifier.inspect(token)
    assert seen.refusal is None and seen.session is not None
    assert seen.claims is not None and seen.claims["jti"] == record.jti
    store.tokens.revoke_sync("jti", record.jti, "test", int(time.time()))
    seen = verifier.inspect(token)
    assert seen.refusal is not None and seen.refusal.code == "revoked"
    assert verifier.inspect("x" * 100_000).refusal.code == "too_large"  # type: ignore[union-attr]


def test_an_authentication_error_never_contains_the_token(issuer: TokenIssuer, verifier: TokenVerifier,
                                                          store: StateStore) -> None:
    """Neither the reason nor the diagnostics of a refusal carry the token."""
    token, record = issuer.issue("agent-7", ["orders:read"], 600)
    store.tokens.revoke_sync("jti", record.jti, "test", int(time.time()))
    with pytest.raises(AuthenticationError) as refusal:
        verifier.verify_sync(token)
    assert token not in str(refusal.value) and token not in refusal.value.diagnostics()
    assert refusal.value.__cause__ is None or token not in str(refusal.value.__cause__)


def test_tokens_from_a_server_restart_still_verify(paths: Paths, settings: Settings, issuer: TokenIssuer,
                                                   store: StateStore) -> None:
    """A new process (new SigningKeys, new verifier) verifies from the keyset file alone."""
    token, _ = issuer.issue("agent-7", ["orders:read"], 600)
    fresh = TokenVerifier(SigningKeys(paths, settings.tokens), store.tokens, settings.tokens)
    assert fresh.verify_sync(token).sub == "agent-7"
