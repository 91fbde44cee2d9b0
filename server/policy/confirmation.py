"""Confirmation tokens: the second call of an irreversible action runs only with one.

A confirmation token is a JWT signed by the server (EdDSA, pinned), with header typ
`dg-confirm+jwt` and audience `deskgate:confirm` - both distinct from session tokens (`at+jwt`),
so neither kind is accepted as the other. It lives at most five minutes and binds:

    sid, sub   the session that asked          tool, dig   the call's meaning (digest of its validated,
    mh, pv     manifest hash, policy version               normalised arguments: `canonical.normalised`)
    ck         who must confirm: agent or customer
    af         a keyed fingerprint of each argument, so a refusal can name the argument that changed
               (keyed: the token shows no hash of a customer's data that could be guessed offline)

Redemption, in this order (each step MUST pass, or the token is refused with a ConfirmationError):

    1. shape    at most 4096 characters; header alg EdDSA, typ dg-confirm+jwt, a known kid
    2. proof    signature, issuer, audience, every claim present
    3. time     issued not in the future, not expired (the server's clock, no leeway)
    4. binding  same session, tool, argument digest, manifest hash and policy version; a changed
                argument is named in the refusal
    5. use      redeemed once, atomically in the state store (across processes); a second use is
                refused unless the caller proves it is the retry of a finished idempotent call
    6. customer for `ck=customer`: the code the customer read back, compared in constant time
                with the HMAC in the token - after step 5, so one token allows one guess

Customer confirmation: a 6-digit one-time code is emailed through the backend's outbox and is
never in the token in clear: the token holds HMAC(k, jti, code) with `k` derived from the
server's signing key, so the agent holding the token cannot search the million codes offline.
Its lifetime fits the channel (`CustomerCodeRules`: minutes in a chat or a call, up to 48h for an
e-mail ticket), independent of the agent's token lifetime. Issued in a session bound to a ticket,
it carries the ticket (`tk`) and may be redeemed by any session of the same subject bound to that
ticket - an e-mail answer can outlive the session that asked; otherwise only by the same session.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from deskgate.server.errors import ConfigError, ConfirmationError
from deskgate.server.policy.canonical import argument_digest
from deskgate.server.policy.model import MAX_CONFIRMATION_TTL, MAX_CUSTOMER_CODE_TTL

if TYPE_CHECKING:
    from deskgate.server.store.state import Redemptions
    from deskgate.tools.backend.base import SupportBackend

TOKEN_TYPE = "dg-confirm+jwt"  # noqa: S105 - a JWT media type, not a secret
AUDIENCE = "deskgate:confirm"
ALGORITHM = "EdDSA"
MAX_TOKEN_CHARS = 4096
_REQUIRED = ["iss", "aud", "sub", "sid", "tool", "dig", "mh", "pv", "ck", "iat", "exp", "jti"]
_CODE_KDF_INFO = b"deskgate confirmation customer code v1"
_ARGUMENT_KDF_INFO = b"deskgate confirmation argument fingerprint v1"


@dataclass(frozen=True, slots=True)
class Binding:
    """The exact call, in its exact context, that a confirmation (or an approval) is for."""

    sid: str
    sub: str
    tool: str
    args_digest: str
    manifest_hash: str
    policy_version: str
    ticket: str | None = None  # the session's bound ticket: a customer's code may outlive the session
    arguments: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # normalised


@dataclass(frozen=True, slots=True)
class Issued:
    token: str = field(repr=False)
    expires_at: int
    outbox_id: str | None = None  # the email carrying the customer's code


class Confirmations:
    """Issues and redeems confirmation tokens with the server's signing keys."""

    def __init__(self, *, signing_key: Ed25519PrivateKey, kid: str, verify_keys: Mapping[str, Ed25519PublicKey],
                 redemptions: Redemptions, issuer: str, ttl: int) -> None:
        if not 0 < ttl <= MAX_CONFIRMATION_TTL:
            raise ConfigError(f"a confirmation token lives between 1s and {MAX_CONFIRMATION_TTL}s, not {ttl}s")
        if kid not in verify_keys:
            raise ConfigError("the confirmation signing key's kid is not among the verification keys")
        self._signing_key = signing_key
        self._kid = kid
        self._verify_keys = dict(verify_keys)
        self._redemptions = redemptions
        self._issuer = issuer
        self.ttl = ttl
        self._code_key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_CODE_KDF_INFO).derive(
            signing_key.private_bytes_raw())
        self._argument_key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_ARGUMENT_KDF_INFO).derive(
            signing_key.private_bytes_raw())

    def __repr__(self) -> str:
        return f"Confirmations(kid={self._kid!r}, ttl={self.ttl})"

    def issue(self, binding: Binding, *, now: int) -> Issued:
        """A token the agent itself may redeem (`ck=agent`)."""
        return self._issue(binding, now, "agent", None, self.ttl)

    async def issue_for_customer(self, binding: Binding, *, backend: SupportBackend, customer_id: str,
                                 preview: str, now: int, ttl: int) -> Issued:
        """Email a one-time code to the customer's address on file, living `ttl` seconds (the channel's); the
        token carries only its HMAC."""
        if not 0 < ttl <= MAX_CUSTOMER_CODE_TTL:
            raise ConfigError(f"a customer's code lives between 1s and {MAX_CUSTOMER_CODE_TTL}s, not {ttl}s")
        code = f"{secrets.randbelow(10**6):06d}"
        issued = self._issue(binding, now, "customer", code, ttl)
        lasts = f"{ttl // 3600} hour(s)" if ttl >= 7200 else f"{max(1, ttl // 60)} minute(s)"
        body = (f"A support agent asked to do this on your behalf:\n\n{preview}\n\n"
                f"If you agree, read this code to the agent: {code}\n"
                f"It expires in {lasts}. If you did not ask for this, do not share the code.")
        outbox_id = await backend.send_customer_email(customer_id, "confirmation_code",
                                                      "Your confirmation code", body, now=now)
        return Issued(issued.token, issued.expires_at, outbox_id)

    async def redeem(self, token: str, binding: Binding, *, now: int, customer_code: str | None = None,
                     replay_allowed: Callable[[], Awaitable[bool]] | None = None) -> bool:
        """Accept the token for this exact call, once. True when it is an allowed replay."""
        kid, claims = self._verified(token, now)                                              # 1-3
        _check_binding(claims, binding, self._fingerprints(binding))                          # 4
        if claims["ck"] == "customer" and kid != self._kid:
            # The code's HMAC key derives from the current signing key; after a rotation, ask again.
            raise ConfirmationError("the signing key changed since this confirmation; ask for a new one",
                                    code="confirmation_stale")
        if claims["ck"] == "customer" and not customer_code:
            raise ConfirmationError("the customer's code is missing: repeat the call with customer_code",
                                    code="customer_code_missing")
        first = await self._redemptions.redeem_once(claims["jti"], now=now, expires_at=int(claims["exp"]))  # 5
        if not first and (replay_allowed is None or not await replay_allowed()):
            raise ConfirmationError("this confirmation was already used; ask for a new one",
                                    code="confirmation_replayed")
        if claims["ck"] == "customer" and not hmac.compare_digest(                            # 6
                self._code_mac(claims["jti"], customer_code or ""), str(claims.get("cch", ""))):
            raise ConfirmationError("the customer's code does not match; ask for a new confirmation",
                                    code="customer_code_invalid")
        return not first

    # -- internals ---------------------------------------------------------------------------

    def _issue(self, binding: Binding, now: int, kind: Literal["agent", "customer"], code: str | None,
               ttl: int) -> Issued:
        jti = secrets.token_urlsafe(18)
        claims: dict[str, Any] = {
            "iss": self._issuer, "aud": AUDIENCE, "sub": binding.sub, "sid": binding.sid, "tool": binding.tool,
            "dig": binding.args_digest, "mh": binding.manifest_hash, "pv": binding.policy_version,
            "ck": kind, "iat": now, "exp": now + ttl, "jti": jti, "af": self._fingerprints(binding),
        }
        if code is not None:
            claims["cch"] = self._code_mac(jti, code)
            if binding.ticket is not None:
                claims["tk"] = binding.ticket
        token = jwt.encode(claims, self._signing_key, algorithm=ALGORITHM,
                           headers={"typ": TOKEN_TYPE, "kid": self._kid})
        return Issued(token, now + ttl)

    def _fingerprints(self, binding: Binding) -> dict[str, str]:
        """Each argument's keyed fingerprint (by name; 64 bits are plenty to tell a change)."""
        return {name: hmac.new(self._argument_key, name.encode() + b"\x00" + argument_digest({name: value}).encode(),
                               hashlib.sha256).hexdigest()[:16]
                for name, value in binding.arguments.items()}

    def _code_mac(self, jti: str, code: str) -> str:
        return hmac.new(self._code_key, f"{jti}\x00{code}".encode(), hashlib.sha256).hexdigest()

    def _verified(self, token: str, now: int) -> tuple[str, dict[str, Any]]:
        refused = ConfirmationError("this confirmation token is not valid; ask for a new one")
        # 1. shape
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise refused
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refused from None
        kid = str(header.get("kid"))
        key = self._verify_keys.get(kid)
        if header.get("alg") != ALGORITHM or header.get("typ") != TOKEN_TYPE or key is None:
            raise refused
        # 2. proof; the times are checked below against the call's clock reading
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=self._issuer,
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError:
            raise refused from None
        # 3. time
        if claims["ck"] not in ("agent", "customer"):
            raise refused
        iat, exp = claims["iat"], claims["exp"]
        longest = MAX_CUSTOMER_CODE_TTL if claims["ck"] == "customer" else MAX_CONFIRMATION_TTL
        if not (isinstance(iat, int) and isinstance(exp, int)) or iat > now or exp - iat > longest:
            raise refused
        if now >= exp:
            raise ConfirmationError("this confirmation expired; ask for a new one", code="confirmation_expired")
        return kid, claims


def _check_binding(claims: Mapping[str, Any], binding: Binding, fingerprints: Mapping[str, str]) -> None:
    # A customer's code issued for a ticket may come back in a later session of the same subject on that ticket.
    same_ticket = claims["ck"] == "customer" and claims.get("tk") is not None and claims.get("tk") == binding.ticket
    if (claims["sid"] != binding.sid and not same_ticket) or claims["sub"] != binding.sub:
        raise ConfirmationError("this confirmation belongs to another session", code="confirmation_other_session")
    if claims["tool"] != binding.tool:
        raise ConfirmationError("this confirmation is for another tool", code="confirmation_mismatch")
    if claims["dig"] != binding.args_digest:
        shown = claims.get("af")
        previewed: dict[str, Any] = shown if isinstance(shown, dict) else {}
        # Names only (declared argument names: validated before this stage), never values.
        changed = sorted(n for n in set(previewed) | set(fingerprints) if previewed.get(n) != fingerprints.get(n))
        which = f" {', '.join(changed)} changed since the preview" if changed else ""
        raise ConfirmationError(f"this confirmation is for a different call:{which}; confirm the new call with a "
                                "new preview", code="confirmation_mismatch")
    if claims["mh"] != binding.manifest_hash or claims["pv"] != binding.policy_version:
        raise ConfirmationError("the tools or the policy changed since this confirmation; ask for a new one",
                                code="confirmation_stale")
