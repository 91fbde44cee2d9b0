"""TOTP secrets at rest: the state database alone never holds a usable second factor."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from deskgate.server.errors import AuthenticationError, ConfigError
from deskgate.server.people.accounts import People
from deskgate.server.people.sealing import ENV_VAR, SecretSealer
from deskgate.server.settings import Paths
from deskgate.server.store.db import SqliteDatabase

from .conftest import LIMITS, NOW, PEOPLE_KEY, code, secret_of


def stored_secret(people: People, name: str) -> str:
    row = people._db.read_sync(lambda tx: tx.one("SELECT totp_secret FROM people WHERE name = ?", (name,)))
    assert row is not None
    return str(row[0])


def set_stored(people: People, name: str, value: str) -> None:
    people._db.write_sync(lambda tx: tx.execute("UPDATE people SET totp_secret = ? WHERE name = ?", (value, name)))


def test_the_database_holds_the_secret_sealed_and_login_still_works(people: People) -> None:
    """Neither the base32 secret nor its bytes are in the row; the person logs in with their code."""
    enrolment = people.add("anna", "approver", now=NOW)
    stored = stored_secret(people, "anna")
    assert stored.startswith("v1.") and secret_of(enrolment) not in stored
    people.login("anna", enrolment.password, code(enrolment), address="10.0.0.1", now=NOW)
    again = people.reset("anna", now=NOW)
    assert stored_secret(people, "anna") != stored and secret_of(again) not in stored_secret(people, "anna")


def test_a_sealed_secret_copied_to_another_persons_row_does_not_open(people: People,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The name is sealed with the secret: an attacker who can write the database cannot give mallory
    anna's second factor (or their own to anna) - the login fails closed and the operator is told."""
    anna = people.add("anna", "approver", now=NOW)
    mallory = people.add("mallory", "auditor", now=NOW)
    set_stored(people, "mallory", stored_secret(people, "anna"))
    with caplog.at_level(logging.ERROR, logger="deskgate.people"), pytest.raises(AuthenticationError) as exc:
        people.login("mallory", mallory.password, code(anna), address="10.0.0.1", now=NOW)
    assert exc.value.code == "login_failed_totp"
    assert "does not open" in caplog.text and secret_of(anna) not in caplog.text


def test_another_key_or_a_tampered_row_fails_closed(people: People, tmp_path: Path) -> None:
    enrolment = people.add("anna", "approver", now=NOW)
    other = People(people._db, LIMITS, SecretSealer(bytes(32)))
    with pytest.raises(AuthenticationError):
        other.login("anna", enrolment.password, code(enrolment), address="10.0.0.1", now=NOW)
    stored = stored_secret(people, "anna")
    set_stored(people, "anna", stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB"))
    with pytest.raises(AuthenticationError):
        people.login("anna", enrolment.password, code(enrolment, NOW + 60), address="10.0.0.1", now=NOW + 60)


def test_a_clear_secret_from_an_older_version_is_sealed_on_upgrade(people: People) -> None:
    """A row written before sealing holds the base32 secret: the next upgrade seals it, and a clear value
    put there later is never used as one (only sealed values open)."""
    enrolment = people.add("anna", "approver", now=NOW)
    set_stored(people, "anna", secret_of(enrolment))
    with pytest.raises(AuthenticationError):
        people.login("anna", enrolment.password, code(enrolment), address="10.0.0.1", now=NOW)
    people.upgrade()
    assert stored_secret(people, "anna").startswith("v1.")
    people.login("anna", enrolment.password, code(enrolment, NOW + 30), address="10.0.0.1", now=NOW + 30)


def test_the_people_key_is_a_private_file_or_the_environment(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "home")
    first = SecretSealer.load(paths, environ={})
    key_file = paths.keys_dir / "people.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The same key next time: what one process sealed, another opens.
    sealed = first.seal("anna", "SECRET")
    assert SecretSealer.load(paths, environ={}).open("anna", sealed) == "SECRET"
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        SecretSealer.load(paths, environ={})
    from_env = SecretSealer.load(paths, environ={ENV_VAR: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"})
    assert from_env.open("anna", SecretSealer(PEOPLE_KEY).seal("anna", "X")) == "X"
    with pytest.raises(ConfigError, match="32 bytes"):
        SecretSealer.load(paths, environ={ENV_VAR: "AAEC"})
    assert "SECRET" not in repr(first)


def test_a_fresh_database_upgrade_is_idempotent(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "state.db")
    people = People(db, LIMITS, SecretSealer(PEOPLE_KEY))
    people.upgrade()
    enrolment = people.add("anna", "approver", now=NOW)
    sealed = stored_secret(people, "anna")
    people.upgrade()
    assert stored_secret(people, "anna") == sealed
    people.login("anna", enrolment.password, code(enrolment), address="10.0.0.1", now=NOW)
    db.close()
