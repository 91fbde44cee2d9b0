"""A real people repository on a real SQLite state database; the clock is the test's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from deskgate.server.people.accounts import Limits, People
from deskgate.server.people.factors import Enrolment, totp_code
from deskgate.server.people.sealing import SecretSealer
from deskgate.server.store.db import SqliteDatabase

NOW = 1_900_000_020  # 20 s into a 30 s TOTP step
PEOPLE_KEY = bytes(range(32))
LIMITS = Limits(idle=900, absolute=8 * 3600, cli=900, failures_per_account=5, failures_per_address=20,
                failure_window=900)


def secret_of(enrolment: Enrolment) -> str:
    """The TOTP secret of an enrolment URI, as an authenticator app reads it from the QR code."""
    return parse_qs(urlparse(enrolment.totp_uri).query)["secret"][0]


def code(enrolment: Enrolment, at: int = NOW) -> str:
    return totp_code(secret_of(enrolment), at)


@pytest.fixture
def people(tmp_path: Path) -> Iterator[People]:
    db = SqliteDatabase(tmp_path / "state.db")
    people = People(db, LIMITS, SecretSealer(PEOPLE_KEY))
    people.upgrade()
    yield people
    db.close()
