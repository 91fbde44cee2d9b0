"""The fingerprint key: from the environment or a 0600 file made once, never shown, refused when unsafe."""

from __future__ import annotations

import base64
import os
import stat
import threading

import pytest

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.fingerprint import ENV_VAR, FingerprintKey
from deskgate.server.settings import Paths

NO_ENV: dict[str, str] = {}


def test_a_key_file_is_created_on_first_use_with_mode_0600(tmp_path):
    """First load writes 32 random bytes to keys/fingerprint.key, readable by the owner only."""
    paths = Paths(tmp_path / "home")
    FingerprintKey.load(paths, NO_ENV)
    info = (paths.keys_dir / "fingerprint.key").stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert stat.S_IMODE(paths.keys_dir.stat().st_mode) == 0o700
    assert [p.name for p in paths.keys_dir.iterdir()] == ["fingerprint.key"]  # no temporary file left


def test_the_key_file_is_reused_so_fingerprints_stay_stable(tmp_path):
    """A second load (a restart) reads the same key."""
    paths = Paths(tmp_path)
    first = FingerprintKey.load(paths, NO_ENV).fingerprint(PiiClass.CARD, "4111111111111111")
    second = FingerprintKey.load(paths, NO_ENV).fingerprint(PiiClass.CARD, "4111111111111111")
    assert first == second


def test_concurrent_first_uses_agree_on_one_key(tmp_path):
    """Processes or threads racing to create the key all end up with the one that was linked first."""
    paths = Paths(tmp_path)
    prints: list[str] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        prints.append(FingerprintKey.load(paths, NO_ENV).fingerprint(PiiClass.EMAIL, "a@b.co"))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(prints)) == 1 and len(prints) == 8


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    """Fail closed: a world-readable key is not used."""
    paths = Paths(tmp_path)
    FingerprintKey.load(paths, NO_ENV)
    os.chmod(paths.keys_dir / "fingerprint.key", 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        FingerprintKey.load(paths, NO_ENV)


def test_a_corrupt_key_file_is_refused(tmp_path):
    """A key of the wrong length is a configuration error, not a weaker key."""
    paths = Paths(tmp_path)
    paths.keys_dir.mkdir(mode=0o700)
    key_file = paths.keys_dir / "fingerprint.key"
    key_file.write_bytes(base64.urlsafe_b64encode(b"short"))
    key_file.chmod(0o600)
    with pytest.raises(ConfigError, match="32 bytes"):
        FingerprintKey.load(paths, NO_ENV)


def test_the_environment_key_wins_and_is_validated(tmp_path):
    """DESKGATE_FINGERPRINT_KEY (base64url of 32 bytes) is used without touching the disk."""
    raw = os.urandom(32)
    env = {ENV_VAR: base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    key = FingerprintKey.load(Paths(tmp_path / "home"), env)
    assert key.fingerprint(PiiClass.EMAIL, "a@b.co") == FingerprintKey(raw).fingerprint(PiiClass.EMAIL, "a@b.co")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("bad", ["not base64!!", base64.urlsafe_b64encode(b"x" * 16).decode()])
def test_a_bad_environment_key_is_refused_without_echoing_it(tmp_path, bad):
    """The error names the variable, never its value."""
    with pytest.raises(ConfigError) as info:
        FingerprintKey.load(Paths(tmp_path), {ENV_VAR: bad})
    assert ENV_VAR in info.value.reason and bad not in info.value.reason


def test_the_key_never_appears_in_a_repr():
    """A key object printed in a traceback or a log shows nothing of the key."""
    raw = b"k" * 32
    assert "k" * 8 not in repr(FingerprintKey(raw)) and "<secret>" in repr(FingerprintKey(raw))


def test_fingerprints_are_short_keyed_and_class_separated():
    """fp:<16 hex>, different per class for the same digits."""
    key = FingerprintKey(os.urandom(32))
    card, phone = key.fingerprint(PiiClass.CARD, "4111111111"), key.fingerprint(PiiClass.PHONE, "4111111111")
    assert card.startswith("fp:") and len(card) == 19 and int(card[3:], 16) >= 0
    assert card != phone
