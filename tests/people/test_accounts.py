"""Console accounts: enrolment, login with both factors, throttling, sessions and their timeouts."""

from __future__ import annotations

import pytest

from deskgate.server.errors import AuthenticationError, DeniedError, InvalidArguments
from deskgate.server.people.accounts import People

from .conftest import LIMITS, NOW, code, secret_of


def test_adding_a_person_gives_a_password_and_an_otpauth_uri_once(people: People) -> None:
    """The enrolment is a random password and an otpauth://totp URI; the same name twice is refused."""
    enrolment = people.add("anna", "approver", now=NOW)
    assert enrolment.totp_uri.startswith("otpauth://totp/deskgate:anna?") and len(secret_of(enrolment)) == 32
    assert len(enrolment.password) >= 20
    with pytest.raises(InvalidArguments) as exc:
        people.add("anna", "admin", now=NOW)
    assert exc.value.code == "person_exists"
    for name, role in (("Anna", "approver"), ("a b", "approver"), ("ben", "root")):
        with pytest.raises(InvalidArguments):
            people.add(name, role, now=NOW)


def test_login_needs_the_password_and_a_fresh_code(people: People) -> None:
    """Right password + code: a session; a wrong password or code: the same refusal, told apart only by code."""
    enrolment = people.add("anna", "approver", now=NOW)
    with pytest.raises(AuthenticationError) as wrong_password:
        people.login("anna", "nope", code(enrolment), address="10.0.0.1", now=NOW)
    with pytest.raises(AuthenticationError) as wrong_code:
        people.login("anna", enrolment.password, "000000" if code(enrolment) != "000000" else "111111",
                     address="10.0.0.1", now=NOW)
    with pytest.raises(AuthenticationError) as nobody:
        people.login("zed", enrolment.password, code(enrolment), address="10.0.0.1", now=NOW)
    assert wrong_password.value.reason == wrong_code.value.reason == nobody.value.reason
    assert (wrong_password.value.code, wrong_code.value.code, nobody.value.code) == (
        "login_failed_password", "login_failed_totp", "login_failed_password")
    secret, session = people.login("anna", enrolment.password, code(enrolment), address="10.0.0.1", now=NOW)
    assert session.person.name == "anna" and len(secret) >= 40 and session.csrf != secret
    assert people.session(secret, now=NOW + 1).person.role == "approver"


def test_a_used_code_cannot_log_in_again(people: People) -> None:
    """The second login with the same code is refused (replay), the next step's code works."""
    enrolment = people.add("anna", "approver", now=NOW)
    people.login("anna", enrolment.password, code(enrolment), address="a", now=NOW)
    with pytest.raises(AuthenticationError) as replay:
        people.login("anna", enrolment.password, code(enrolment), address="a", now=NOW + 2)
    assert replay.value.code == "login_failed_totp"
    people.login("anna", enrolment.password, code(enrolment, NOW + 30), address="a", now=NOW + 3)


def test_a_disabled_person_cannot_log_in_and_their_sessions_end(people: People) -> None:
    """Disabling ends the live session at once; even the right factors then fail like a wrong password."""
    enrolment = people.add("anna", "approver", now=NOW)
    secret, _ = people.login("anna", enrolment.password, code(enrolment), address="a", now=NOW)
    people.set_disabled("anna", True, now=NOW + 1)
    with pytest.raises(AuthenticationError):
        people.session(secret, now=NOW + 2)
    with pytest.raises(AuthenticationError) as exc:
        people.login("anna", enrolment.password, code(enrolment, NOW + 30), address="a", now=NOW + 3)
    assert exc.value.code == "login_failed_disabled"
    assert exc.value.reason == "login failed: name, password or code is wrong"


def test_failed_logins_throttle_the_account_and_then_the_address(people: People) -> None:
    """Five failures lock the account for the window, even for the right factors; twenty lock an address."""
    enrolment = people.add("anna", "approver", now=NOW)
    for _ in range(LIMITS.failures_per_account):
        with pytest.raises(AuthenticationError):
            people.login("anna", "wrong", "123456", address="10.0.0.1", now=NOW)
    with pytest.raises(AuthenticationError) as locked:
        people.login("anna", enrolment.password, code(enrolment), address="10.0.0.2", now=NOW + 1)
    assert locked.value.code == "login_throttled"
    people.login("anna", enrolment.password, code(enrolment, NOW + 901), address="10.0.0.2",
                 now=NOW + LIMITS.failure_window + 1)
    people.add("ben", "approver", now=NOW)
    for i in range(LIMITS.failures_per_address - LIMITS.failures_per_account):
        with pytest.raises(AuthenticationError):
            people.login(f"nobody{i}", "wrong", "123456", address="10.0.0.1", now=NOW + 2)
    with pytest.raises(AuthenticationError) as by_address:
        people.login("ben", "wrong", "123456", address="10.0.0.1", now=NOW + 3)
    assert by_address.value.code == "login_throttled"


def test_sessions_end_after_the_idle_and_the_absolute_timeout(people: People) -> None:
    """Activity keeps a browser session alive until the absolute limit; idleness ends it sooner."""
    enrolment = people.add("anna", "approver", now=NOW)
    secret, _ = people.login("anna", enrolment.password, code(enrolment), address="a", now=NOW)
    t = NOW
    while t + LIMITS.idle - 1 < NOW + LIMITS.absolute:
        t += LIMITS.idle - 1
        people.session(secret, now=t)
    with pytest.raises(AuthenticationError) as absolute:
        people.session(secret, now=NOW + LIMITS.absolute)
    assert absolute.value.code in ("console_session_expired", "console_session_unknown")
    secret, _ = people.login("anna", enrolment.password, code(enrolment, NOW + 30), address="a", now=NOW + 1)
    with pytest.raises(AuthenticationError) as idle:
        people.session(secret, now=NOW + 1 + LIMITS.idle + 1)
    assert idle.value.code == "console_session_expired"


def test_a_cli_credential_is_not_a_browser_session_and_back(people: People) -> None:
    """A session works only as the kind it was opened for."""
    enrolment = people.add("anna", "approver", now=NOW)
    secret, _ = people.login("anna", enrolment.password, code(enrolment), address="cli", now=NOW, kind="cli")
    with pytest.raises(AuthenticationError):
        people.session(secret, now=NOW)
    assert people.session(secret, now=NOW, kind="cli").kind == "cli"


def test_reset_gives_new_factors_and_ends_every_session(people: People) -> None:
    old = people.add("anna", "approver", now=NOW)
    secret, _ = people.login("anna", old.password, code(old), address="a", now=NOW)
    new = people.reset("anna", now=NOW + 1)
    with pytest.raises(AuthenticationError):
        people.session(secret, now=NOW + 2)
    with pytest.raises(AuthenticationError):
        people.login("anna", old.password, code(new, NOW + 30), address="a", now=NOW + 3)
    people.login("anna", new.password, code(new, NOW + 30), address="a", now=NOW + 4)


def test_roles_grant_only_what_they_list(people: People) -> None:
    """Auditors and specialists view but never decide approvals; only admins manage tokens."""
    for name, role in (("ada", "admin"), ("apo", "approver"), ("spe", "specialist"), ("aud", "auditor")):
        people.add(name, role, now=NOW)
    deciders = {p.name for p in people.list() if p.may("approvals.decide")}
    assert deciders == {"ada", "apo"}
    with pytest.raises(DeniedError) as exc:
        people.get("aud").require("approvals.decide")
    assert exc.value.code == "role"
    assert not people.get("apo").may("tokens.manage") and not people.get("aud").may("no-such-action")


def test_a_person_requested_the_calls_of_their_own_subject_and_of_sessions_they_issued(people: People) -> None:
    people.add("anna", "approver", now=NOW)
    people.link_token("anna", "sid-issued-by-anna", now=NOW)
    assert people.requested_by("anna", sub="Anna", sid="sid-x")
    assert people.requested_by("anna", sub="agent-1", sid="sid-issued-by-anna")
    assert not people.requested_by("anna", sub="agent-1", sid="sid-x")
