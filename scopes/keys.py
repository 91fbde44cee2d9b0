"""Token signing keys: Ed25519 (JWS `EdDSA`), named by their RFC 7638 thumbprint, rotated in place.

Where the private key of the current key lives, in order of preference:

    DESKGATE_SIGNING_KEY   PEM (PKCS#8) or base64url of the raw 32-byte seed, for containers. It is
                           the current key; rotate by changing the variable and restarting.
    OS keyring             through `keyring`, when a secure backend is available (not the `fail`
                           or `null` backends, an empty chainer, or `keyrings.alt`'s file keyrings)
    key file               $DESKGATE_HOME/keys/<kid>.pem, mode 0600, with a warning that says where

The keyset file, $DESKGATE_HOME/keys/keyset.json, holds no secret: each key's public half, kid,
created_at, retired_at, where its private half lives, and which key is current. Verifying needs
only this file. A retired key keeps verifying for `max_ttl` + leeway after its retirement - as long
as any token it signed can live, since `max_ttl` caps every token - and then drops out. Its private
half is deleted when it is retired: it never signs again.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import keyring
import keyring.errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deskgate.server.durable import PRIVATE_FILE, atomic_replace, fsync_dir, private_dir
from deskgate.server.errors import ConfigError
from deskgate.server.settings import Paths, TokensSection, parse_duration

__all__ = ["ENV_VAR", "KEYRING_SERVICE", "KeyRecord", "SigningKeys", "secure_keyring", "thumbprint"]

ENV_VAR = "DESKGATE_SIGNING_KEY"
KEYRING_SERVICE = "deskgate-signing-key"
KID = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 digest, unpadded

Storage = Literal["env", "keyring", "file"]
log = logging.getLogger("deskgate.keys")
_warned: set[str] = set()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict: only the base64url alphabet, no padding, no whitespace."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def thumbprint(public: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 of the required members in lexicographic order."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": b64url(raw_public(public))},
                           separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def secure_keyring() -> keyring.backend.KeyringBackend | None:
    """The OS keyring backend if it keeps secrets safely, else None.

    Refused: `fail` (priority 0) and `null` (-1), a chainer with nothing to chain, and the
    non-recommended `keyrings.alt` backends (plaintext or password-in-a-file).
    """
    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    members = list(chained) if chained is not None else [backend]
    if not members:
        return None
    for member in members:
        if member.priority < 1 or type(member).__module__.startswith("keyrings.alt"):
            return None
    return backend


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One entry of the keyset file: the public half of a key and its life."""

    kid: str
    x: str                  # base64url of the raw 32-byte public key
    storage: Storage        # where the private half lives (or lived, once retired)
    created_at: int
    retired_at: int | None = None

    def public_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(self.x))

    def jwk(self) -> dict[str, str]:
        return {"kty": "OKP", "crv": "Ed25519", "x": self.x, "kid": self.kid, "use": "sig", "alg": "EdDSA"}


@dataclass(frozen=True, slots=True)
class _Keyset:
    current: str | None
    keys: tuple[KeyRecord, ...]

    def get(self, kid: str) -> KeyRecord | None:
        return next((k for k in self.keys if k.kid == kid), None)


_EMPTY = _Keyset(None, ())


class SigningKeys:
    """The deployment's keys: sign with the current one, verify with every one still in its window."""

    def __init__(self, paths: Paths, tokens: TokensSection, *, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = paths.keys_dir
        self.keyset_path = paths.keys_dir / "keyset.json"
        self._grace = parse_duration(tokens.max_ttl) + tokens.leeway_seconds
        self._environ = os.environ if environ is None else environ
        self._clock = clock
        self._keyset = _EMPTY
        self._stamp: tuple[int, int, int] | None = None

    # --- reading ---------------------------------------------------------------------------

    def verification_key(self, kid: str) -> Ed25519PublicKey | None:
        """The public key for `kid` if it is one of ours and still verifying; never fetched elsewhere."""
        if not KID.match(kid):
            return None
        record = self._fresh().get(kid)
        if record is None or not self._verifying(record):
            return None
        return record.public_key()

    def records(self) -> list[KeyRecord]:
        """Every key still verifying, the current one first."""
        keyset = self._fresh()
        alive = [k for k in keyset.keys if self._verifying(k)]
        return sorted(alive, key=lambda k: (k.kid != keyset.current, -k.created_at))

    @property
    def current_kid(self) -> str | None:
        return self._fresh().current

    def verifying_until(self, record: KeyRecord) -> int | None:
        return None if record.retired_at is None else record.retired_at + self._grace

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWK Set served at /.well-known/jwks.json."""
        return {"keys": [k.jwk() for k in self.records()]}

    def where(self) -> str:
        """Where the current private key lives, for start-up logs and `keys list` (no secret)."""
        keyset = self._fresh()
        record = keyset.get(keyset.current) if keyset.current else None
        if record is None:
            return "no signing key yet (run `deskgate init`)"
        if record.storage == "env":
            return f"the {ENV_VAR} environment variable"
        if record.storage == "keyring":
            return f"the OS keyring ({type(keyring.get_keyring()).__name__}, service {KEYRING_SERVICE!r})"
        return f"the key file {self._key_file(record.kid)} (mode 0600)"

    # --- writing ---------------------------------------------------------------------------

    def ensure(self) -> KeyRecord:
        """The current key, creating the first one - or recording the one from the environment."""
        env_key = self._env_key()
        with self._locked() as keyset:
            if env_key is not None:
                kid = thumbprint(env_key.public_key())
                if keyset.current != kid:
                    keyset = self._install(keyset, env_key, from_env=True)
            elif keyset.current is None:
                keyset = self._install(keyset, Ed25519PrivateKey.generate())
            record = keyset.get(keyset.current or "")
            assert record is not None
        return record

    def rotate(self) -> KeyRecord:
        """Add a new key and make it current; the old one keeps verifying until its tokens expire."""
        if self._env_key() is not None:
            raise ConfigError(f"the signing key comes from {ENV_VAR}: rotate by changing that variable")
        with self._locked() as keyset:
            keyset = self._install(keyset, Ed25519PrivateKey.generate())
            record = keyset.get(keyset.current or "")
            assert record is not None
        return record

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        """The current kid and its private key, for the issuer only."""
        record = self.ensure()
        return record.kid, self._load_private(record)

    # --- internals -------------------------------------------------------------------------

    def _verifying(self, record: KeyRecord) -> bool:
        until = self.verifying_until(record)
        return until is None or self._clock() < until

    def _install(self, keyset: _Keyset, private: Ed25519PrivateKey, *, from_env: bool = False) -> _Keyset:
        """Make `private` current, retire the previous current key and forget expired ones."""
        now = int(self._clock())
        kid = thumbprint(private.public_key())
        retired: list[KeyRecord] = []
        kept: list[KeyRecord] = []
        for record in keyset.keys:
            if record.kid == kid:
                continue
            if record.retired_at is None:
                record = replace(record, retired_at=now)
                retired.append(record)
            if self._verifying(record):
                kept.append(record)
        storage: Storage = "env" if from_env else self._store_private(kid, private)
        new = KeyRecord(kid=kid, x=b64url(raw_public(private.public_key())), storage=storage, created_at=now)
        keyset = _Keyset(kid, (new, *kept))
        self._write(keyset)
        # Only once the new keyset is durable: a crash before this leaves the old key usable.
        for record in retired:
            self._delete_private(record)
        return keyset

    def _env_key(self) -> Ed25519PrivateKey | None:
        raw = self._environ.get(ENV_VAR, "").strip()
        if not raw:
            return None
        try:
            if raw.startswith("-----BEGIN"):
                key = serialization.load_pem_private_key(raw.encode("ascii"), password=None)
                if not isinstance(key, Ed25519PrivateKey):
                    raise ConfigError(f"{ENV_VAR} holds a PEM key that is not Ed25519")
                return key
            seed = b64url_decode(raw.rstrip("="))
            if len(seed) != 32:
                raise ConfigError(f"{ENV_VAR} must be a PEM Ed25519 key or base64url of a 32-byte seed")
            return Ed25519PrivateKey.from_private_bytes(seed)
        except (ValueError, TypeError, binascii.Error) as exc:
            # Never echo the value: it is the secret.
            raise ConfigError(f"{ENV_VAR} is not a readable Ed25519 private key") from exc

    def _store_private(self, kid: str, private: Ed25519PrivateKey) -> Storage:
        """Keep a new private key in the OS keyring if it is secure, else in a 0600 file."""
        if secure_keyring() is not None:
            seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
            try:
                keyring.set_password(KEYRING_SERVICE, kid, b64url(seed))
                return "keyring"
            except keyring.errors.KeyringError as exc:  # e.g. a locked keyring with nobody to unlock it
                log.warning("the OS keyring refused the signing key (%s); using a key file", type(exc).__name__)
        path = self._key_file(kid)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(self.directory)
        self._warn_file(path)
        return "file"

    def _load_private(self, record: KeyRecord) -> Ed25519PrivateKey:
        if record.storage == "env":
            key = self._env_key()
        elif record.storage == "keyring":
            try:
                stored = keyring.get_password(KEYRING_SERVICE, record.kid)
            except keyring.errors.KeyringError as exc:
                raise ConfigError(f"the OS keyring cannot be read: {type(exc).__name__}") from exc
            key = Ed25519PrivateKey.from_private_bytes(b64url_decode(stored)) if stored else None
        else:
            key = self._read_key_file(record.kid)
        if key is None or thumbprint(key.public_key()) != record.kid:
            raise ConfigError(f"the private half of signing key {record.kid} is missing from {self.where()}")
        return key

    def _read_key_file(self, kid: str) -> Ed25519PrivateKey | None:
        path = self._key_file(kid)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot open the signing key: {exc.strerror}", file=str(path)) from exc
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            # Like ssh: a key others can read, or that someone else owns, is not ours to trust.
            if st.st_mode & 0o077 or st.st_uid != os.geteuid():
                raise ConfigError("signing key file must be owned by this user with mode 0600", file=str(path))
            key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError("signing key file does not hold an Ed25519 key", file=str(path))
        self._warn_file(path)
        return key

    def _delete_private(self, record: KeyRecord) -> None:
        if record.storage == "keyring":
            try:
                keyring.delete_password(KEYRING_SERVICE, record.kid)
            except keyring.errors.KeyringError:
                log.warning("could not delete retired signing key %s from the OS keyring", record.kid)
        elif record.storage == "file":
            self._key_file(record.kid).unlink(missing_ok=True)

    def _key_file(self, kid: str) -> Path:
        return self.directory / f"{kid}.pem"

    def _warn_file(self, path: Path) -> None:
        if str(path) not in _warned:
            _warned.add(str(path))
            log.warning("no secure OS keyring is available: the token signing key is stored in %s (mode 0600);"
                        " set %s to supply it from a secret store instead", path, ENV_VAR)

    @contextmanager
    def _locked(self) -> Iterator[_Keyset]:
        """Hold the keys directory lock and yield the keyset as it is on disk (for a change)."""
        private_dir(self.directory)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._stamp = None
            yield self._fresh()
        finally:
            self._stamp = None
            os.close(fd)

    def _fresh(self) -> _Keyset:
        """The keyset, re-read when the file changed (another process may have rotated)."""
        try:
            st = os.stat(self.keyset_path, follow_symlinks=False)
        except FileNotFoundError:
            self._keyset, self._stamp = _EMPTY, None
            return self._keyset
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp != self._stamp:
            self._keyset = _parse_keyset(self.keyset_path)
            self._stamp = stamp
        return self._keyset

    def _write(self, keyset: _Keyset) -> None:
        data = {"current": keyset.current, "keys": [asdict(k) for k in keyset.keys]}
        atomic_replace(self.keyset_path, json.dumps(data, indent=2).encode("utf-8") + b"\n", mode=PRIVATE_FILE)


def _parse_keyset(path: Path) -> _Keyset:
    """Read and check the keyset file; a kid that is not its key's thumbprint is refused.

    It is the trust anchor of every token (whoever can add a key to it can mint accepted tokens), so it
    must be a file, not a symlink, owned by this user and writable by no one else.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open the keyset file ({exc.strerror}); it must be a file, not a symlink",
                          file=str(path)) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise ConfigError(f"the keyset file must be a file owned by this user that no one else can write "
                              f"(mode {st.st_mode & 0o7777:o}, owner uid {st.st_uid}). Fix: check its keys, then "
                              f"`chown $(id -u) {path} && chmod 600 {path}`", file=str(path))
        raw = f.read()
    try:
        data: Any = json.loads(raw.decode("utf-8"))
        records = tuple(KeyRecord(**entry) for entry in data["keys"])
        current = data["current"]
        for record in records:
            if record.storage not in ("env", "keyring", "file") or not isinstance(record.created_at, int) \
                    or not isinstance(record.retired_at, int | None):
                raise ValueError(record.kid)
            if thumbprint(record.public_key()) != record.kid:
                raise ValueError(record.kid)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigError("the keyset file is unreadable or inconsistent", file=str(path)) from exc
    if current is not None and not any(r.kid == current for r in records):
        raise ConfigError("the keyset file names a current key it does not hold", file=str(path))
    return _Keyset(current, records)
