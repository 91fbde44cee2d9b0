"""The Ed25519 key that signs audit checkpoints - never the token signing key.

Where it comes from, first match wins:
    DESKGATE_AUDIT_KEY      base64 of the 32-byte private seed, or a PKCS#8 PEM (containers)
    <audit dir>/audit.key   PKCS#8 PEM, created 0600 on first use; refused if others can read it

`audit.pub` (PEM) is written beside a created key so a verifier needs no secret. A checkpoint
names its key by `kid` (first 16 hex digits of the SHA-256 of the raw public key); an external
anchor that recorded the kid exposes a log re-signed with a substitute key.

Rotation (`rotate_staged` and friends, driven by `AuditLog.rotate_key`): the new key is written to
`audit.key.next` and made durable, a handover checkpoint signed by the old key names it, then it
replaces `audit.key`. `audit.pub` keeps the first key: the root `verify` starts from. A process
that crashed in between finds `audit.key.next` at its next start and promotes it when the last
checkpoint hands over to it, deletes it otherwise (`settle_rotation`). Servers running with the
old key pick the new one up before their next checkpoint (`KeyHolder`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deskgate.server.durable import fsync_dir, write_all
from deskgate.server.errors import AuditUnavailable

KEY_ENV = "DESKGATE_AUDIT_KEY"
TOKEN_KEY_ENV = "DESKGATE_SIGNING_KEY"  # noqa: S105 - the name of a variable, not a secret
KEY_NAME = "audit.key"
PUB_NAME = "audit.pub"
NEXT_NAME = "audit.key.next"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class AuditKey:
    """Signs checkpoints. Its repr shows only the key id."""

    __slots__ = ("_private", "kid", "public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.kid = key_id(self.public)

    def sign(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(self._private.sign(data)).decode()

    def private_pem(self) -> bytes:
        """For writing `audit.key` (0600) only."""
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def __repr__(self) -> str:
        return f"AuditKey(kid={self.kid})"

    @classmethod
    def generate(cls) -> AuditKey:
        return cls(Ed25519PrivateKey.generate())


def public_text(public: Ed25519PublicKey) -> str:
    """The raw public key, base64url: how a handover checkpoint names the next key."""
    return base64.urlsafe_b64encode(public.public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)).decode()


def public_from_text(text: str) -> Ed25519PublicKey | None:
    try:
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except (ValueError, binascii.Error, UnicodeEncodeError):
        return None


def verify_signature(public: Ed25519PublicKey, signature: str, data: bytes) -> bool:
    try:
        public.verify(base64.urlsafe_b64decode(signature.encode("ascii")), data)
    except (InvalidSignature, ValueError, binascii.Error, UnicodeEncodeError):
        return False
    return True


def _private_from_text(text: str, source: str) -> Ed25519PrivateKey:
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            seed = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
            if len(seed) != 32:
                raise ValueError("wrong length")
            key = Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise AuditUnavailable(f"the audit key in {source} is not a valid Ed25519 key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditUnavailable(f"the audit key in {source} is not an Ed25519 key")
    return key


def load_or_create_key(directory: Path) -> AuditKey:
    """The signing key; creates `audit.key` on first use. Call under the directory's lock."""
    env = os.environ.get(KEY_ENV)
    if env:
        if env == os.environ.get(TOKEN_KEY_ENV):
            raise AuditUnavailable(f"{KEY_ENV} must differ from the token signing key")
        return AuditKey(_private_from_text(env, KEY_ENV))
    try:
        return _read_private(directory / KEY_NAME)
    except FileNotFoundError:
        return _create(directory)


def _read_private(path: Path) -> AuditKey:
    """A private key file: no symlink, readable by its owner only."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise AuditUnavailable(f"cannot read {path.name}") from exc
    try:
        mode = os.fstat(fd).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditUnavailable(f"{path.name} is accessible to other users (mode {mode & 0o777:o}); chmod 600 it")
        text = os.read(fd, 64 * 1024).decode("ascii", errors="replace")
    finally:
        os.close(fd)
    return AuditKey(_private_from_text(text, path.name))


def _create(directory: Path) -> AuditKey:
    key = AuditKey.generate()
    pem = key.private_pem()
    pub = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for name, data in ((KEY_NAME, pem), (PUB_NAME, pub)):
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_dir(directory)
    return key


def load_public_key(directory: Path, explicit: Path | None = None) -> Ed25519PublicKey:
    """The key a verifier starts from: `explicit`, else the environment's key, else audit.pub (the
    first key: rotations never rewrite it), else the private key's."""
    if explicit is None:
        if os.environ.get(KEY_ENV) or not (directory / PUB_NAME).exists():
            return load_or_create_key(directory).public
        explicit = directory / PUB_NAME
    try:
        data = explicit.read_bytes()
        public = serialization.load_pem_public_key(data)
    except (OSError, ValueError) as exc:
        raise AuditUnavailable(f"cannot load the audit public key from {explicit.name}") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise AuditUnavailable(f"{explicit.name} is not an Ed25519 public key")
    return public


def _write_private(path: Path, key: AuditKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        write_all(fd, key.private_pem())
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(path.parent)


def stage_next_key(directory: Path, key: AuditKey) -> None:
    """Step 1 of a rotation: the new key, durable, before any checkpoint names it."""
    if os.environ.get(KEY_ENV):
        raise AuditUnavailable(f"the audit key comes from {KEY_ENV}: rotate it there (and restart), not here")
    _write_private(directory / NEXT_NAME, key)


def promote_next_key(directory: Path) -> None:
    """Step 3, once the handover checkpoint is durable: the new key becomes `audit.key`."""
    os.replace(directory / NEXT_NAME, directory / KEY_NAME)
    fsync_dir(directory)


def settle_rotation(directory: Path, last_checkpoint: dict[str, Any] | None) -> None:
    """A rotation a crash interrupted: finish it if its handover was written, else forget it.
    Call under the directory's lock, before loading the key."""
    staged = directory / NEXT_NAME
    if not os.path.lexists(staged):
        return
    key = _read_private(staged)
    handover = (last_checkpoint or {}).get("next")
    if isinstance(handover, dict) and handover.get("kid") == key.kid:
        promote_next_key(directory)
    else:
        staged.unlink()
        fsync_dir(directory)


class KeyHolder:
    """The current signing key of an audit directory, re-read when `audit.key` was replaced (a
    rotation by another process). Call `current()` under the directory's lock, before signing."""

    def __init__(self, directory: Path, key: AuditKey | None = None) -> None:
        self._directory = directory
        self._fixed = key is not None or bool(os.environ.get(KEY_ENV))
        self._key = key or load_or_create_key(directory)
        self._seen = self._identity()

    def current(self) -> AuditKey:
        if not self._fixed and (seen := self._identity()) != self._seen:
            self._key, self._seen = load_or_create_key(self._directory), seen
        return self._key

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self._directory / KEY_NAME, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns
