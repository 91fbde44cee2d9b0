"""The two factors a person logs in with: a password (argon2id) and a TOTP code (RFC 6238).

Neither is home-made: `argon2-cffi` hashes (its defaults are argon2id, RFC 9106's second recommended
parameter set), `cryptography`'s `TOTP` computes the codes. What is ours is only the policy around
them: which time steps a code may come from, and that a step is used once (`accepted_step`).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

TOTP_DIGITS = 6
TOTP_STEP = 30
# A code from the previous or the next step is accepted too: clocks drift and people type slowly.
TOTP_DRIFT_STEPS = 1
_HASHER = PasswordHasher()


@cache
def _absent() -> str:
    """Compared against when a login names nobody, so a missing account costs the same time as a wrong
    password. Hashed at the first check of any password, not at import: every CLI command and server
    process imports this module, and most never check one."""
    return _HASHER.hash(secrets.token_urlsafe(24))


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a person is given once, at `users add` or `users reset`. Never stored as such, never logged."""

    password: str
    totp_uri: str

    def __repr__(self) -> str:
        return "Enrolment(<secret>)"


def new_password() -> str:
    """An initial password: 128 random bits, typed once."""
    return secrets.token_urlsafe(16)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """True when `password` is the one hashed in `stored_hash` (None: nobody; still costs one hash)."""
    absent = _absent()  # on every path: the first check in a process costs one extra hash, name known or not
    try:
        return _HASHER.verify(stored_hash or absent, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)


def new_totp_secret() -> str:
    """160 random bits (RFC 4226's recommended length), base32 as authenticator apps expect."""
    return base64.b32encode(secrets.token_bytes(20)).decode()


def _totp(secret: str) -> TOTP:
    # HMAC-SHA1 is what authenticator apps implement (RFC 6238 default); HMAC does not rely on collision resistance.
    return TOTP(base64.b32decode(secret), TOTP_DIGITS, SHA1(), TOTP_STEP, enforce_key_length=True)  # noqa: S303


def totp_uri(secret: str, name: str, issuer: str) -> str:
    return _totp(secret).get_provisioning_uri(name, issuer)


def totp_code(secret: str, at: float) -> str:
    """The code for time `at` (what an authenticator app shows; tests use it as a person's phone)."""
    return _totp(secret).generate(int(at)).decode()


def accepted_step(secret: str, code: str, *, now: float, after_step: int) -> int | None:
    """The time step `code` belongs to, if it is valid now and newer than `after_step`, else None.

    Refusing steps at or before the last one used makes every code single-use (RFC 6238 §5.2), and
    also refuses an older code captured earlier. Every candidate is compared in constant time.
    """
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    current = int(now) // TOTP_STEP
    found = None
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate(step * TOTP_STEP), code.encode()) and step > after_step:
            found = step
    return found
