"""Symmetric keys at rest: 32 random bytes from an environment variable or a private key file.

    load_key(paths, "fingerprint.key", "DESKGATE_FINGERPRINT_KEY", "the fingerprint key")

The variable (base64url of the key) wins: containers and every process of a scaled-out deployment
share one key through it. Otherwise `<keys_dir>/<file>` holds it, created on first use with mode
0600 and refused if it is not a regular file of this user or anyone else can read it.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from deskgate.server.durable import PRIVATE_FILE, fsync_dir, private_dir, write_all
from deskgate.server.errors import ConfigError
from deskgate.server.settings import Paths

KEY_BYTES = 32


def load_key(paths: Paths, file_name: str, env_var: str, what: str,
             environ: Mapping[str, str] = os.environ) -> bytes:
    if environ.get(env_var):
        return _decode(environ[env_var], env_var, what)
    path = paths.keys_dir / file_name
    if not path.exists():
        _create(path)
    return _read(path, what)


def _decode(text: str, source: str, what: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError(f"{source}: not base64url") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{source}: {what} must be {KEY_BYTES} bytes")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise ConfigError(f"cannot open {what}: {exc.strerror}", file=str(path)) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise ConfigError(f"{what} must be a regular file owned by this user", file=str(path))
        if info.st_mode & 0o077:
            raise ConfigError(f"{what} is readable by others: chmod 600 it", file=str(path))
        data = os.read(fd, 1024)
    finally:
        os.close(fd)
    return _decode(data.decode("ascii", errors="replace"), str(path), what)


def _create(path: Path) -> None:
    """Write a new key atomically: a temporary file, fsynced, then linked into place (never overwriting)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE)
    try:
        write_all(fd, base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        tmp.unlink()
    fsync_dir(path.parent)
