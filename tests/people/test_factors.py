"""Passwords are argon2id; a TOTP code is valid for its step (+-1) and never twice."""

from __future__ import annotations

from deskgate.server.people import factors

from .conftest import NOW

SECRET = factors.new_totp_secret()


def test_passwords_are_stored_as_argon2id_hashes_and_only_the_right_one_matches() -> None:
    """The stored form is an argon2id PHC string, never the password; a wrong one or no hash never matches."""
    hashed = factors.hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and "correct horse" not in hashed
    assert factors.password_matches(hashed, "correct horse")
    assert not factors.password_matches(hashed, "correct hors")
    assert not factors.password_matches(None, "correct horse")
    assert not factors.password_matches("not a hash", "correct horse")


def test_a_code_of_this_step_or_a_neighbour_is_accepted_and_names_its_step() -> None:
    """RFC 6238 with 30 s steps; one step of drift either way."""
    step = NOW // 30
    for offset in (-1, 0, 1):
        code = factors.totp_code(SECRET, NOW + 30 * offset)
        assert factors.accepted_step(SECRET, code, now=NOW, after_step=0) == step + offset


def test_a_used_step_or_an_older_one_is_refused() -> None:
    """Replay: once step n was used, codes of steps <= n are refused, even while still in the window."""
    step = NOW // 30
    code = factors.totp_code(SECRET, NOW)
    assert factors.accepted_step(SECRET, code, now=NOW, after_step=step) is None
    older = factors.totp_code(SECRET, NOW - 30)
    assert factors.accepted_step(SECRET, older, now=NOW, after_step=step) is None


def test_codes_from_far_away_or_malformed_are_refused() -> None:
    """Two steps away, the wrong length, or not digits: refused."""
    assert factors.accepted_step(SECRET, factors.totp_code(SECRET, NOW + 60), now=NOW, after_step=0) is None
    for bad in ("", "12345", "1234567", "12345a", "١٢٣٤٥٦"):
        assert factors.accepted_step(SECRET, bad, now=NOW, after_step=0) is None


def test_an_enrolment_never_shows_its_secrets_in_its_repr() -> None:
    enrolment = factors.Enrolment("pw-secret", "otpauth://totp/x?secret=ABC")
    assert "pw-secret" not in repr(enrolment) and "ABC" not in repr(enrolment)
