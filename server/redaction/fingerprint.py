"""Keyed fingerprints: "same card in 30 refunds?" answerable from the audit log, the card not.

`fp:<16 hex>` is HMAC-SHA256 under a 32-byte key of the class and the value's canonical form
(digits of a card, `+` and digits of an international phone, lower-cased email, upper-case IBAN).
A plain hash would not do: cards and phones are few enough to hash them all and look them up.

The key comes from `DESKGATE_FINGERPRINT_KEY` (base64url of 32 bytes) or from
`<keys_dir>/fingerprint.key`, created on first use with mode 0600 and refused if anyone but its
owner can read it. Losing the key only breaks correlation with older records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.settings import Paths

ENV_VAR = "DESKGATE_FINGERPRINT_KEY"
KEY_BYTES = 32
FINGERPRINTED = frozenset({PiiClass.EMAIL, PiiClass.PHONE, PiiClass.CARD, PiiClass.IBAN})


def _decode(text: str, source: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: not base64url") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{source}: the fingerprint key must be {KEY_BYTES} bytes")
    return key


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
        if environ.get(ENV_VAR):
            return cls(_decode(environ[ENV_VAR], ENV_VAR))
        path = paths.keys_dir / "fingerprint.key"
        if not path.exists():
            _create(path)
        return cls(_read(path))


def _read(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot open the fingerprint key: {exc.strerror}", file=str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise ConfigError("the fingerprint key must be a regular file owned by this user", file=str(path))
        if info.st_mode & 0o077:
            raise ConfigError("the fingerprint key is readable by others: chmod 600 it", file=str(path))
        data = os.read(fd, 1024)
    finally:
        os.close(fd)
    return _decode(data.decode("ascii", errors="replace"), str(path))


def _create(path: Path) -> None:
    """Write a new key atomically: a temporary file, fsynced, then linked into place (never overwriting)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
