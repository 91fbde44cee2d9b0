"""Keyed fingerprints: "same card in 30 refunds?" answerable from the audit log, the card not.

`fp:<16 hex>` is HMAC-SHA256 under a 32-byte key of the class and the value's canonical form
(digits of a card, `+` and digits of an international phone, lower-cased email, upper-case IBAN).
A plain hash would not do: cards and phones are few enough to hash them all and look them up.

The key comes from `DESKGATE_FINGERPRINT_KEY` (base64url of 32 bytes) or from
`<keys_dir>/fingerprint.key` (`keyfile`). Losing the key only breaks correlation with older records.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping

from deskgate.server.errors import ConfigError
from deskgate.server.keyfile import KEY_BYTES, load_key
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.settings import Paths

ENV_VAR = "DESKGATE_FINGERPRINT_KEY"
FINGERPRINTED = frozenset({PiiClass.EMAIL, PiiClass.PHONE, PiiClass.CARD, PiiClass.IBAN})


class FingerprintKey:
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"the fingerprint key must be {KEY_BYTES} bytes")
        self._key = key

    def __repr__(self) -> str:
        return "FingerprintKey(<secret>)"

    def fingerprint(self, cls: PiiClass, canonical: str) -> str:
        mac = hmac.new(self._key, f"{cls.value}\x00{canonical}".encode(), hashlib.sha256)
        return f"fp:{mac.hexdigest()[:16]}"

    @classmethod
    def load(cls, paths: Paths, environ: Mapping[str, str] = os.environ) -> FingerprintKey:
        return cls(load_key(paths, "fingerprint.key", ENV_VAR, "the fingerprint key", environ))
