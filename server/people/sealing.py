"""TOTP secrets at rest: sealed with AES-256-GCM under the people key, bound to the person's name.

A copy of the state database (a backup, a shared PostgreSQL) then holds no usable second factor: the
key is `DESKGATE_PEOPLE_KEY` or `<keys_dir>/people.key` (`keyfile`), never in the database. A sealed
value reads `v1.<base64url(nonce || ciphertext)>`; the person's name is the associated data, so a
sealed secret copied onto another person's row does not open.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deskgate.server.keyfile import load_key
from deskgate.server.settings import Paths

ENV_VAR = "DESKGATE_PEOPLE_KEY"
_PREFIX = "v1."
_NONCE_BYTES = 12


class SecretSealer:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return "SecretSealer(<secret>)"

    @classmethod
    def load(cls, paths: Paths, environ: Mapping[str, str] = os.environ) -> SecretSealer:
        return cls(load_key(paths, "people.key", ENV_VAR, "the people key", environ))

    def seal(self, name: str, secret: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, secret.encode(), name.encode())
        return _PREFIX + base64.urlsafe_b64encode(sealed).decode()

    def open(self, name: str, stored: str) -> str | None:
        """The secret sealed in `stored` for `name`; None when it does not open (another key, another
        person's row, tampered, or never sealed): the caller fails closed."""
        if not is_sealed(stored):
            return None
        try:
            raw = base64.urlsafe_b64decode(stored[len(_PREFIX):])
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], name.encode()).decode()
        except (InvalidTag, ValueError):
            return None


def is_sealed(stored: str) -> bool:
    # A clear secret is base32 (A-Z, 2-7, '='): it never starts with the prefix.
    return stored.startswith(_PREFIX)
