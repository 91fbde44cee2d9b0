"""Fixtures for session credentials: a state directory with no OS keyring, real keys, a real ledger.

`forge` builds a token from our defaults with one thing changed, so each attack is one line:
`forge(header={"alg": "none"}, signature=b"")`, `forge(claims={"aud": ["deskgate", "x"]})`,
`forge(drop_claims=["exp"])`. By default it signs with the deployment's own current key, so the
changed part is the only thing wrong with the token.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.backend
import keyring.backends.fail
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deskgate.scopes.keys import SigningKeys, b64url
from deskgate.scopes.tokens import TokenIssuer, TokenVerifier
from deskgate.server.settings import Paths, Settings, load_settings
from deskgate.server.store.db import Database
from deskgate.server.store.state import StateStore


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring backend that reports itself secure (like the OS ones) and keeps secrets in memory."""

    priority = 5  # type: ignore[assignment]  # a class attribute in place of keyring's classproperty

    def __init__(self) -> None:
        super().__init__()
        self.secrets: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.secrets.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.secrets[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.secrets.pop((service, username), None)


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts on a machine with no OS keyring and no key in the environment."""
    before = keyring.get_keyring()
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("DESKGATE_SIGNING_KEY", raising=False)
    keyring.set_keyring(keyring.backends.fail.Keyring())
    yield
    keyring.set_keyring(before)


@pytest.fixture
def memory_keyring() -> dict[tuple[str, str], str]:
    """A secure keyring for this test; returns what it holds, by (service, username)."""
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    return backend.secrets


@pytest.fixture
def paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    home = tmp_path / "home"
    monkeypatch.setenv("DESKGATE_HOME", str(home))
    return Paths(home)


@pytest.fixture
def settings(paths: Paths) -> Settings:
    return load_settings(paths)


@pytest.fixture
def keys(paths: Paths, settings: Settings) -> SigningKeys:
    keys = SigningKeys(paths, settings.tokens)
    keys.ensure()
    return keys


@pytest.fixture
def store(database: Database) -> StateStore:
    state = StateStore(database)
    state.upgrade()
    return state


@pytest.fixture
def issuer(keys: SigningKeys, store: StateStore, settings: Settings) -> TokenIssuer:
    return TokenIssuer(keys, store.tokens, settings.tokens)


@pytest.fixture
def verifier(keys: SigningKeys, store: StateStore, settings: Settings) -> TokenVerifier:
    return TokenVerifier(keys, store.tokens, settings.tokens)


def _segment(value: dict[str, Any] | bytes) -> str:
    return b64url(value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode())


@pytest.fixture
def forge(keys: SigningKeys, settings: Settings) -> Callable[..., str]:
    kid, own_key = keys.signing_key()

    def make(*, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None,
             drop_header: tuple[str, ...] = (), drop_claims: tuple[str, ...] = (),
             key: Ed25519PrivateKey | None = None, signature: bytes | None = None,
             raw_header: bytes | None = None) -> str:
        now = int(time.time())
        h: dict[str, Any] = {"alg": "EdDSA", "typ": "at+jwt", "kid": kid, **(header or {})}
        c: dict[str, Any] = {
            "iss": settings.tokens.issuer, "aud": settings.tokens.audience, "sub": "agent-7",
            "client_id": "deskgate-cli", "iat": now, "nbf": now, "exp": now + 600,
            "jti": secrets.token_urlsafe(24), "sid": secrets.token_urlsafe(24), "scope": "orders:read",
            **(claims or {}),
        }
        for name in drop_header:
            h.pop(name)
        for name in drop_claims:
            c.pop(name)
        signing_input = f"{_segment(raw_header or h)}.{_segment(c)}"
        if signature is None:
            signature = (key or own_key).sign(signing_input.encode())
        return f"{signing_input}.{b64url(signature)}"

    return make
