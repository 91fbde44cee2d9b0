"""Signing keys: where the private key lives, the keyset file, rotation and the JWKS."""

from __future__ import annotations

import json
import logging
import os
import stat

import keyring
import keyring.backend
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from deskgate.scopes.keys import KEYRING_SERVICE, SigningKeys, b64url, b64url_decode, secure_keyring, thumbprint
from deskgate.server.errors import ConfigError
from deskgate.server.settings import Paths, Settings

Secrets = dict[tuple[str, str], str]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    """The Ed25519 thumbprint example of RFC 8037 appendix A.3 comes out exactly."""
    public = Ed25519PublicKey.from_public_bytes(b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"))
    assert thumbprint(public) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_without_a_keyring_the_key_goes_to_a_0600_file_with_a_warning(paths: Paths, settings: Settings,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """No keyring backend: the server still gets a key, in a private file, and says where."""
    assert secure_keyring() is None
    keys = SigningKeys(paths, settings.tokens)
    with caplog.at_level(logging.WARNING, "deskgate.keys"):
        record = keys.ensure()
    key_file = paths.keys_dir / f"{record.kid}.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.keys_dir.stat().st_mode) == 0o700
    assert record.storage == "file"
    assert str(key_file) in caplog.text and "no secure OS keyring" in caplog.text
    assert str(key_file) in keys.where()


def test_the_keyset_file_holds_no_secret(keys: SigningKeys, paths: Paths) -> None:
    """keyset.json has public halves only: no private bytes, no PEM."""
    kid, private = keys.signing_key()
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    text = (paths.keys_dir / "keyset.json").read_text()
    assert b64url(seed) not in text and "PRIVATE" not in text
    assert json.loads(text)["current"] == kid


def test_ensure_is_idempotent(keys: SigningKeys) -> None:
    """Calling ensure again (every `deskgate init`, every start) keeps the same key."""
    assert keys.ensure().kid == keys.ensure().kid
    assert len(keys.records()) == 1


def test_a_secure_keyring_holds_the_private_key_and_no_file_is_written(paths: Paths, settings: Settings,
                                                                       memory_keyring: Secrets) -> None:
    """With a secure backend the private key lives in the keyring, never on disk."""
    keys = SigningKeys(paths, settings.tokens)
    record = keys.ensure()
    assert record.storage == "keyring"
    assert not list(paths.keys_dir.glob("*.pem"))
    assert memory_keyring[(KEYRING_SERVICE, record.kid)]
    assert keys.signing_key()[0] == record.kid
    assert "OS keyring" in keys.where()


def test_rotation_deletes_the_retired_private_key_from_the_keyring(paths: Paths, settings: Settings,
                                                                   memory_keyring: Secrets) -> None:
    """A retired key never signs again, so its private half is removed."""
    keys = SigningKeys(paths, settings.tokens)
    old = keys.ensure()
    new = keys.rotate()
    assert (KEYRING_SERVICE, old.kid) not in memory_keyring
    assert (KEYRING_SERVICE, new.kid) in memory_keyring


def test_an_insecure_keyring_backend_is_not_used(paths: Paths, settings: Settings) -> None:
    """A low-priority backend (like a plaintext keyring) counts as no keyring."""
    class Plaintext(keyring.backend.KeyringBackend):
        priority = 0.5  # type: ignore[assignment]  # what keyrings.alt's PlaintextKeyring reports

        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            raise AssertionError("an insecure keyring must never receive the key")

        def delete_password(self, service: str, username: str) -> None:
            return None

    keyring.set_keyring(Plaintext())
    assert secure_keyring() is None
    assert SigningKeys(paths, settings.tokens).ensure().storage == "file"


@pytest.mark.parametrize("form", ["pem", "seed"])
def test_a_key_from_the_environment_is_used_and_recorded_without_a_file(paths: Paths, settings: Settings,
                                                                        form: str) -> None:
    """DESKGATE_SIGNING_KEY (PEM or base64url seed) is the current key; nothing secret is written."""
    private = Ed25519PrivateKey.generate()
    value = (private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()).decode() if form == "pem"
             else b64url(private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                               serialization.NoEncryption())))
    keys = SigningKeys(paths, settings.tokens, environ={"DESKGATE_SIGNING_KEY": value})
    record = keys.ensure()
    assert record.kid == thumbprint(private.public_key())
    assert record.storage == "env"
    assert not list(paths.keys_dir.glob("*.pem"))
    assert keys.signing_key()[0] == record.kid
    assert "DESKGATE_SIGNING_KEY" in keys.where()


def test_a_new_key_in_the_environment_retires_the_previous_one(paths: Paths, settings: Settings) -> None:
    """Rotating in a container means changing the variable; the old key keeps verifying."""
    first = SigningKeys(paths, settings.tokens, environ={"DESKGATE_SIGNING_KEY": _seed()}).ensure()
    keys = SigningKeys(paths, settings.tokens, environ={"DESKGATE_SIGNING_KEY": _seed()})
    second = keys.ensure()
    assert [r.kid for r in keys.records()] == [second.kid, first.kid]
    assert keys.records()[1].retired_at is not None


def test_rotate_is_refused_when_the_key_comes_from_the_environment(paths: Paths, settings: Settings) -> None:
    """The environment owns that key; rotating on disk would silently be undone."""
    keys = SigningKeys(paths, settings.tokens, environ={"DESKGATE_SIGNING_KEY": _seed()})
    keys.ensure()
    with pytest.raises(ConfigError, match="DESKGATE_SIGNING_KEY"):
        keys.rotate()


@pytest.mark.parametrize("value", ["not-a-key", "QUJD", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"])
def test_an_unreadable_environment_key_is_a_config_error_that_does_not_echo_it(paths: Paths, settings: Settings,
                                                                               value: str) -> None:
    """A bad DESKGATE_SIGNING_KEY stops start-up, and the message never contains the value."""
    with pytest.raises(ConfigError) as refusal:
        SigningKeys(paths, settings.tokens, environ={"DESKGATE_SIGNING_KEY": value}).ensure()
    assert value not in str(refusal.value) and value not in refusal.value.diagnostics()


def test_a_non_ed25519_pem_in_the_environment_is_refused(paths: Paths, settings: Settings) -> None:
    """Only Ed25519 keys sign tokens; an RSA or EC PEM is refused."""
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    with pytest.raises(ConfigError, match="not Ed25519"):
        SigningKeys(paths, settings.tokens, environ={"DESKGATE_SIGNING_KEY": pem}).ensure()


def test_a_key_file_readable_by_others_is_refused(keys: SigningKeys, paths: Paths) -> None:
    """Like ssh, a private key with group or world permissions is not used to sign."""
    kid = keys.records()[0].kid
    os.chmod(paths.keys_dir / f"{kid}.pem", 0o644)
    with pytest.raises(ConfigError, match="0600"):
        keys.signing_key()


def test_a_keyset_whose_kid_does_not_match_its_key_is_refused(keys: SigningKeys, paths: Paths) -> None:
    """A tampered keyset cannot rename a key: every kid is recomputed from its public key."""
    keyset = paths.keys_dir / "keyset.json"
    data = json.loads(keyset.read_text())
    data["keys"][0]["x"] = b64url(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    keyset.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="keyset"):
        keys.records()


def test_rotation_keeps_the_old_key_verifying_until_max_ttl_after_retirement(paths: Paths, settings: Settings) -> None:
    """Old public keys verify for max_ttl + leeway after retirement, then drop out of the JWKS."""
    clock = Clock(1_800_000_000)
    keys = SigningKeys(paths, settings.tokens, clock=clock)
    old = keys.ensure()
    clock.now += 60
    new = keys.rotate()
    assert keys.current_kid == new.kid
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid, old.kid]
    grace = 8 * 3600 + settings.tokens.leeway_seconds
    clock.now += grace - 1
    assert keys.verification_key(old.kid) is not None
    clock.now += 1
    assert keys.verification_key(old.kid) is None
    assert [k["kid"] for k in keys.jwks()["keys"]] == [new.kid]


def test_a_rotation_in_another_process_is_seen_without_restart(keys: SigningKeys, paths: Paths,
                                                               settings: Settings) -> None:
    """The server re-reads the keyset when it changes, so `deskgate keys rotate` needs no restart."""
    new = SigningKeys(paths, settings.tokens).rotate()
    assert keys.verification_key(new.kid) is not None
    assert keys.current_kid == new.kid


def test_the_jwks_lists_public_okp_keys_for_eddsa_signatures(keys: SigningKeys) -> None:
    """Each JWK is OKP/Ed25519 with use sig, alg EdDSA and its kid, and has no private member."""
    (jwk,) = keys.jwks()["keys"]
    assert set(jwk) == {"kty", "crv", "x", "kid", "use", "alg"}
    assert (jwk["kty"], jwk["crv"], jwk["use"], jwk["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    assert "d" not in jwk


def test_no_keyset_means_nothing_verifies_and_where_says_so(paths: Paths, settings: Settings) -> None:
    """Before `deskgate init` there is no key: every kid is unknown (fail closed)."""
    keys = SigningKeys(paths, settings.tokens)
    assert keys.verification_key("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k") is None
    assert keys.jwks() == {"keys": []}
    assert "no signing key" in keys.where()


def _seed() -> str:
    return b64url(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))


def test_a_keyset_others_can_write_is_refused_even_after_start(keys: SigningKeys, paths: Paths) -> None:
    """The keyset is the trust anchor: a write through loose permissions is noticed when it is re-read."""
    keyset = paths.keys_dir / "keyset.json"
    assert stat.S_IMODE(keyset.stat().st_mode) == 0o600
    keyset.chmod(0o666)
    keyset.write_text(keyset.read_text() + " ")  # what someone else could now do: the running keys re-read it
    with pytest.raises(ConfigError, match="no one else can write"):
        keys.records()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_keyset_another_user_owns_is_refused(keys: SigningKeys, paths: Paths, settings: Settings) -> None:
    os.chown(paths.keys_dir / "keyset.json", 65534, 65534)
    with pytest.raises(ConfigError, match="owned by this user"):
        SigningKeys(paths, settings.tokens).records()


def test_a_keyset_that_is_a_symlink_is_refused(keys: SigningKeys, paths: Paths, settings: Settings) -> None:
    """A symlink could point the trust anchor at a file someone else controls."""
    keyset = paths.keys_dir / "keyset.json"
    elsewhere = paths.home.parent / "keyset.json"
    keyset.rename(elsewhere)
    keyset.symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="not a symlink"):
        SigningKeys(paths, settings.tokens).records()
