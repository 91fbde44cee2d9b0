"""The attack suite (issue 3, "Done when"): every forged or tampered token is refused, with its code.

Each case goes through the real verifier on a real ledger (both engines). A refusal is an
`AuthenticationError` whose reason is the generic "invalid token" and whose `code` says why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deskgate.scopes.keys import SigningKeys, b64url, thumbprint
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier
from deskgate.server.errors import AuthenticationError
from deskgate.server.settings import Paths, Settings, load_settings
from deskgate.server.store.state import StateStore

Forge = Callable[..., str]

HOUR = 3600


async def refused(verifier: TokenVerifier, token: str) -> str:
    """Verify through both entry points; both must refuse the same way. Returns the code."""
    with pytest.raises(AuthenticationError) as sync_refusal:
        verifier.verify_sync(token)
    with pytest.raises(AuthenticationError) as async_refusal:
        await verifier.verify(token)
    assert sync_refusal.value.code == async_refusal.value.code
    assert async_refusal.value.reason == "invalid token"
    return async_refusal.value.code


def encode_segment(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def attacker_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    x = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url(x)}


@pytest.mark.anyio
@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", "noNe"])
async def test_alg_none_in_any_casing_is_refused_before_any_crypto(verifier: TokenVerifier, forge: Forge,
                                                                  alg: str) -> None:
    """An unsigned token (`alg: none`, any casing, empty signature) never verifies."""
    assert await refused(verifier, forge(header={"alg": alg}, signature=b"")) == "alg_not_allowed"


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["raw", "pem"])
async def test_hs256_signed_with_our_public_key_is_refused(verifier: TokenVerifier, forge: Forge, keys: SigningKeys,
                                                           encoding: str) -> None:
    """The algorithm-confusion attack: HMAC keyed with our public key, which anyone can fetch."""
    public = keys.records()[0].public_key()
    secret = (public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) if encoding == "raw"
              else public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    unsigned = forge(header={"alg": "HS256"}).rsplit(".", 1)[0]
    token = f"{unsigned}.{b64url(hmac.new(secret, unsigned.encode(), hashlib.sha256).digest())}"
    assert await refused(verifier, token) == "alg_not_allowed"


@pytest.mark.anyio
@pytest.mark.parametrize("alg", ["RS256", "ES256", "Ed25519", "eddsa", "EDDSA", "EdDSA ", ""])
async def test_any_algorithm_other_than_exactly_eddsa_is_refused(verifier: TokenVerifier, forge: Forge,
                                                                 alg: str) -> None:
    """The server pins EdDSA; near-misses in spelling are other algorithms."""
    assert await refused(verifier, forge(header={"alg": alg})) == "alg_not_allowed"


@pytest.mark.anyio
async def test_alg_that_is_not_a_string_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """A list of algorithms (or any non-string) is not the pinned algorithm."""
    assert await refused(verifier, forge(header={"alg": ["EdDSA"]})) == "alg_not_allowed"


@pytest.mark.anyio
@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"])
async def test_a_key_or_key_location_carried_in_the_token_is_refused(verifier: TokenVerifier, forge: Forge,
                                                                     member: str) -> None:
    """A token signed by the attacker and pointing at the attacker's key is refused unfetched."""
    mine = attacker_key()
    value: object = {
        "jwk": public_jwk(mine),
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIB"],
        "x5t": "AAAA",
        "x5t#S256": "AAAA",
    }[member]
    token = forge(header={member: value, "kid": thumbprint(mine.public_key())}, key=mine)
    assert await refused(verifier, token) == "foreign_key_header"


@pytest.mark.anyio
async def test_a_foreign_jwk_naming_our_kid_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """Even with our own kid, an embedded key is never used: the header is refused first."""
    mine = attacker_key()
    assert await refused(verifier, forge(header={"jwk": public_jwk(mine)}, key=mine)) == "foreign_key_header"


@pytest.mark.anyio
@pytest.mark.parametrize("kid", [
    "../../../../etc/passwd",
    "..%2f..%2fkeys%2fkeyset.json",
    "keyset.json",
    "x' OR '1'='1",
    "1; DROP TABLE issued_tokens; --",
    "",
    "A" * 44,
    "A" * 42 + "/",
])
async def test_a_kid_that_is_not_a_thumbprint_is_refused_without_lookup(verifier: TokenVerifier, forge: Forge,
                                                                        kid: str) -> None:
    """Path traversal or SQL in `kid` never reaches a file or a query."""
    assert await refused(verifier, forge(header={"kid": kid})) == "bad_kid"


@pytest.mark.anyio
async def test_a_missing_or_non_string_kid_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """No kid, no key: we never try every key we hold."""
    assert await refused(verifier, forge(drop_header=("kid",))) == "bad_kid"
    assert await refused(verifier, forge(header={"kid": 7})) == "bad_kid"


@pytest.mark.anyio
async def test_a_well_formed_kid_we_do_not_hold_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """A thumbprint-shaped kid that is not one of our keys finds nothing."""
    stranger = attacker_key()
    token = forge(header={"kid": thumbprint(stranger.public_key())}, key=stranger)
    assert await refused(verifier, token) == "unknown_kid"


@pytest.mark.anyio
@pytest.mark.parametrize("crit", [["exp"], ["b64"], ["https://example.com/ext"], [], "b64"])
async def test_any_crit_header_is_refused(verifier: TokenVerifier, forge: Forge, crit: object) -> None:
    """We understand no JWS extension, so any critical one is refused (RFC 7515 4.1.11)."""
    assert await refused(verifier, forge(header={"crit": crit, "b64": False})) == "crit_refused"


@pytest.mark.anyio
async def test_an_unknown_header_member_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """The header holds alg, typ and kid and nothing else."""
    assert await refused(verifier, forge(header={"cty": "JWT"})) == "unexpected_header"


@pytest.mark.anyio
@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT", "application/at+jwt", "at+jwt ", "dpop+jwt", None])
async def test_a_typ_other_than_exactly_at_jwt_is_refused(verifier: TokenVerifier, forge: Forge,
                                                          typ: str | None) -> None:
    """An ID token or any other JWT signed by the same key is not an access token here."""
    token = forge(drop_header=("typ",)) if typ is None else forge(header={"typ": typ})
    assert await refused(verifier, token) == "wrong_typ"


@pytest.mark.anyio
async def test_duplicate_header_members_are_refused(verifier: TokenVerifier, forge: Forge, keys: SigningKeys) -> None:
    """`{"alg":"EdDSA","alg":"none"}` is ambiguous; parsers disagree, so it is refused."""
    kid = keys.records()[0].kid
    raw = f'{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}","alg":"none"}}'.encode()
    assert await refused(verifier, forge(raw_header=raw)) == "malformed"


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_a_missing_time_claim_is_refused(verifier: TokenVerifier, forge: Forge, claim: str) -> None:
    """Every time claim is required: no exp would mean forever."""
    assert await refused(verifier, forge(drop_claims=(claim,))) == "missing_claim"


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["9999999999", "1700000000", 1.5e9, True, None, [1700000000], {"t": 1}])
async def test_a_non_numeric_time_claim_is_refused(verifier: TokenVerifier, forge: Forge, claim: str,
                                                   value: object) -> None:
    """Strings, floats, booleans and nulls are not coerced into times."""
    assert await refused(verifier, forge(claims={claim: value})) == "bad_time_claim"


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "client_id", "jti", "scope", "sid"])
async def test_a_missing_identity_claim_is_refused(verifier: TokenVerifier, forge: Forge, claim: str) -> None:
    """Every RFC 9068 claim and our sid are required."""
    assert await refused(verifier, forge(drop_claims=(claim,))) == "missing_claim"


@pytest.mark.anyio
async def test_an_expired_token_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """exp an hour ago is well outside the leeway."""
    now = int(time.time())
    token = forge(claims={"iat": now - 2 * HOUR, "nbf": now - 2 * HOUR, "exp": now - HOUR})
    assert await refused(verifier, token) == "expired"


@pytest.mark.anyio
async def test_an_expired_token_of_our_own_issuer_is_refused(verifier: TokenVerifier,
                                                             store_issuer_at: Callable[[float], TokenIssuer]) -> None:
    """A genuine token, issued and recorded by us, stops working at exp."""
    token, _ = store_issuer_at(time.time() - 2 * HOUR).issue("agent-7", ["orders:read"], 600)
    assert await refused(verifier, token) == "expired"


@pytest.mark.anyio
@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_a_token_not_yet_valid_is_refused(verifier: TokenVerifier, forge: Forge, claim: str) -> None:
    """nbf (or iat) an hour ahead is outside the leeway."""
    now = int(time.time())
    token = forge(claims={"iat": now, "nbf": now, "exp": now + 2 * HOUR, claim: now + HOUR})
    assert await refused(verifier, token) == "not_yet_valid"


@pytest.mark.anyio
async def test_a_lifetime_above_max_ttl_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """A token signed with our key but living longer than max_ttl (8h) is refused."""
    now = int(time.time())
    token = forge(claims={"iat": now, "nbf": now, "exp": now + 8 * HOUR + 1})
    assert await refused(verifier, token) == "lifetime_too_long"


@pytest.mark.anyio
async def test_a_token_that_expires_before_it_is_issued_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """exp before iat is nonsense, not a short lifetime."""
    now = int(time.time())  # both inside the 30 s leeway, so only their order is wrong
    token = forge(claims={"iat": now + 20, "nbf": now, "exp": now + 10})
    assert await refused(verifier, token) == "bad_time_claim"


@pytest.mark.anyio
@pytest.mark.parametrize("aud", ["other", "deskgate2", "deskgat", "", ["deskgate", "other"], ["deskgate"],
                                 ["other"], 7])
async def test_an_audience_other_than_exactly_ours_is_refused(verifier: TokenVerifier, forge: Forge,
                                                              aud: object) -> None:
    """aud must be our audience as a single string; a list holding ours among others is refused."""
    assert await refused(verifier, forge(claims={"aud": aud})) == "wrong_audience"


@pytest.mark.anyio
@pytest.mark.parametrize("iss", ["deskgate-evil", "evil-deskgate", "deskgat", "Deskgate", "deskgate "])
async def test_an_issuer_other_than_exactly_ours_is_refused(verifier: TokenVerifier, forge: Forge, iss: str) -> None:
    """Prefixes, suffixes and case changes of the issuer are other issuers."""
    assert await refused(verifier, forge(claims={"iss": iss})) == "wrong_issuer"


@pytest.mark.anyio
async def test_a_token_of_one_megabyte_is_refused_before_parsing(verifier: TokenVerifier, forge: Forge) -> None:
    """The size limit comes first: nothing decodes a megabyte of attacker input."""
    token = forge(claims={"pad": "A" * (1024 * 1024)})
    assert len(token) > 1024 * 1024
    assert await refused(verifier, token) == "too_large"


@pytest.mark.anyio
async def test_a_payload_edited_under_the_original_signature_is_refused(verifier: TokenVerifier,
                                                                        issuer: TokenIssuer) -> None:
    """Widening the scope of a genuine token breaks its signature."""
    token, _ = issuer.issue("agent-7", ["orders:read"], 600)
    header, claims, signature = token.split(".")
    edited = _edit_claims(claims, scope="orders:read refunds:write")
    assert await refused(verifier, f"{header}.{edited}.{signature}") == "bad_signature"


@pytest.mark.anyio
async def test_a_token_signed_by_our_kid_with_another_key_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """Naming our kid does not make a signature ours."""
    assert await refused(verifier, forge(key=attacker_key())) == "bad_signature"


@pytest.mark.anyio
async def test_a_valid_token_of_another_deployment_is_refused(
        verifier: TokenVerifier, store_for_home: Callable[[Path], TokenIssuer], tmp_path: Path) -> None:
    """Same software, same issuer and audience names, another deployment's key: unknown here."""
    theirs = store_for_home(tmp_path / "other-deployment")
    token, _ = theirs.issue("agent-7", ["orders:read"], 600)
    assert await refused(verifier, token) == "unknown_kid"


@pytest.mark.anyio
@pytest.mark.parametrize("claims", [
    {"scope": "orders:read admin:all"},
    {"scope": "*"},
])
async def test_a_scope_outside_the_catalogue_is_refused(verifier: TokenVerifier, forge: Forge,
                                                        claims: dict[str, str]) -> None:
    """A token can only carry scopes the server knows."""
    assert await refused(verifier, forge(claims=claims)) == "unknown_scope"


@pytest.mark.anyio
@pytest.mark.parametrize("claims", [
    {"scope": "orders:read  notes:write"},
    {"scope": ""},
    {"scope": ["orders:read"]},
    {"jti": "short"},
    {"sid": "has spaces in it, which ids do not"},
    {"sub": ""},
    {"max_refund": "1e9"},
    {"max_refund": 50},
    {"customer": "C-1/../../x"},
    {"manifest_hash": "XYZ"},
])
async def test_a_malformed_claim_is_refused(verifier: TokenVerifier, forge: Forge, claims: dict[str, object]) -> None:
    """Ids, scopes, bindings and limits have exact shapes."""
    assert await refused(verifier, forge(claims=claims)) == "bad_claim"


@pytest.mark.anyio
async def test_an_unknown_claim_is_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """Nothing we did not issue rides along in a token (e.g. a home-made "role": "admin")."""
    assert await refused(verifier, forge(claims={"role": "admin"})) == "unexpected_claim"


@pytest.mark.anyio
@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "not a token", "a..c", "eyJ.eyJ.c=", "Bearer a.b.c"])
async def test_garbage_is_refused_as_malformed(verifier: TokenVerifier, token: str) -> None:
    """Anything that is not three base64url segments of JSON objects is malformed."""
    assert await refused(verifier, token) == "malformed"


@pytest.mark.anyio
async def test_segments_that_are_not_json_objects_are_refused(verifier: TokenVerifier, forge: Forge) -> None:
    """A JSON array or a string where an object belongs is malformed."""
    _, claims, signature = forge().split(".")
    assert await refused(verifier, f"{encode_segment([1, 2])}.{claims}.{signature}") == "malformed"
    assert await refused(verifier, f"{b64url(b'not json')}.{claims}.{signature}") == "malformed"


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["jti", "sid", "sub"])
async def test_a_revoked_token_session_or_subject_is_refused(verifier: TokenVerifier, issuer: TokenIssuer,
                                                             store: StateStore, kind: str) -> None:
    """Revoking the jti, the session or the subject stops a genuine token at once."""
    token, record = issuer.issue("agent-7", ["orders:read"], 600)
    await verifier.verify(token)
    store.tokens.revoke_sync(kind, getattr(record, kind), "test", int(time.time()))  # type: ignore[arg-type]
    assert await refused(verifier, token) == "revoked"


def _edit_claims(segment: str, **changes: object) -> str:
    claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    claims.update(changes)
    return encode_segment(claims)


@pytest.fixture
def store_issuer_at(keys: SigningKeys, store: StateStore, settings: Settings) -> Callable[[float], TokenIssuer]:
    """An issuer of this deployment whose clock reads `at`."""

    def make(at: float) -> TokenIssuer:
        return TokenIssuer(keys, store.tokens, settings.tokens, clock=lambda: at)

    return make


@pytest.fixture
def store_for_home(store: StateStore) -> Callable[[Path], TokenIssuer]:
    """An issuer of another deployment: its own state directory, hence its own key."""

    def make(home: Path) -> TokenIssuer:
        paths = Paths(home)
        settings = load_settings(paths)
        return TokenIssuer(SigningKeys(paths, settings.tokens), store.tokens, settings.tokens)

    return make
