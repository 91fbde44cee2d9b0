"""People: console accounts, their logins, their console sessions, and which agent sessions they own.

    people            one row per person: role, argon2id password hash, sealed TOTP secret (`sealing`) and
                      the last time step used
    person_tokens     agent sessions (sid) a person issued: calls from them count as that person's
    console_sessions  a logged-in browser or CLI: only the SHA-256 of its secret is stored
    login_failures    failed logins per account and per client address, for throttling

Login (`People.login`), in order; every refusal gives the caller the same `login_failed` answer
except throttling, and the audit record says which step failed:

    1. throttle   too many failures for this account or this address in the window -> refused unchecked
    2. password   argon2id verify (a missing account costs the same hash)
    3. enabled    a disabled account never logs in
    4. totp       a code of the current step (+-1), newer than the last one this person used
    5. session    a fresh random session id (never one the client brought), its own CSRF token

A person's identity in decisions is their account name. They "requested" a call when its token's
`sub` is their name, or when its session was issued by them (`person_tokens`): they decide neither.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from deskgate.server.errors import AuthenticationError, DeniedError, InvalidArguments, NotFound
from deskgate.server.people import factors
from deskgate.server.people.factors import Enrolment
from deskgate.server.people.sealing import SecretSealer, is_sealed
from deskgate.server.settings import ConsoleSection, Paths, Settings, parse_duration
from deskgate.server.store.db import Database, Row, Tx
from deskgate.server.store.migrations import Migration, upgrade

PEOPLE_MIGRATIONS = [
    Migration(1, "people and console sessions", """
CREATE TABLE people (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step BIGINT NOT NULL,
    disabled INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE person_tokens (
    sid TEXT PRIMARY KEY,
    person TEXT NOT NULL,
    issued_at BIGINT NOT NULL
);
CREATE TABLE console_sessions (
    id_digest TEXT PRIMARY KEY,
    person TEXT NOT NULL,
    kind TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_person ON console_sessions (person);
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at)"""),
]

log = logging.getLogger("deskgate.people")
Role = Literal["admin", "approver", "specialist", "auditor"]
ROLES: tuple[Role, ...] = ("admin", "approver", "specialist", "auditor")
SessionKind = Literal["browser", "cli"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_COLUMNS = "name, role, password_hash, totp_secret, totp_last_step, disabled, created_at, updated_at"

# What each role may do. Deny by default: an action not listed for a role is refused.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "view": frozenset(ROLES),
    "approvals.decide": frozenset({"admin", "approver"}),
    "escalations.work": frozenset({"admin", "approver", "specialist"}),
    "qa.review": frozenset({"admin", "approver", "specialist"}),
    "tokens.manage": frozenset({"admin"}),
    "manifest.pin": frozenset({"admin"}),
    "breakers.reset": frozenset({"admin"}),
}


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    role: Role
    disabled: bool
    created_at: int

    def may(self, action: str) -> bool:
        return not self.disabled and self.role in PERMISSIONS.get(action, frozenset())

    def require(self, action: str) -> None:
        if not self.may(action):
            raise DeniedError(f"a {self.role} may not do this", code="role")


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A logged-in person. `csrf` is this session's form token (it is not a secret of the session id)."""

    person: Person
    kind: SessionKind
    csrf: str
    created_at: int
    expires_at: int

    def __repr__(self) -> str:
        return f"ConsoleSession(person={self.person.name!r}, kind={self.kind!r})"


@dataclass(frozen=True, slots=True)
class Limits:
    """Session lifetimes and login throttling, in seconds (from `[console]` in deskgate.toml)."""

    idle: int
    absolute: int
    cli: int
    failures_per_account: int
    failures_per_address: int
    failure_window: int


def person_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidArguments("a person is named by lower-case letters, digits and . _ @ - (at most 64)",
                               code="invalid_person")
    return name


def session_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class People:
    def __init__(self, db: Database, limits: Limits, sealer: SecretSealer, *, issuer: str = "deskgate") -> None:
        self._db = db
        self._limits = limits
        self._sealer = sealer
        self._issuer = issuer

    @property
    def limits(self) -> Limits:
        return self._limits

    def upgrade(self) -> list[Migration]:
        """Migrate the tables, then seal any TOTP secret an older version stored in clear."""
        applied = upgrade(self._db, "people", PEOPLE_MIGRATIONS)

        def seal_clear(tx: Tx) -> None:
            for name, stored in tx.query("SELECT name, totp_secret FROM people"):
                if not is_sealed(stored):
                    tx.execute("UPDATE people SET totp_secret = ? WHERE name = ? AND totp_secret = ?",
                               (self._sealer.seal(name, stored), name, stored))

        self._db.write_sync(seal_clear)
        return applied

    # -- accounts -------------------------------------------------------------------------------

    def add(self, name: str, role: str, *, now: int) -> Enrolment:
        name = person_name(name)
        if role not in ROLES:
            raise InvalidArguments(f"a role is one of {', '.join(ROLES)}", code="invalid_role")
        password, secret = factors.new_password(), factors.new_totp_secret()
        hashed = factors.hash_password(password)

        def add(tx: Tx) -> None:
            if tx.one("SELECT 1 FROM people WHERE name = ?", (name,)):
                raise InvalidArguments(f"{name} already exists (use `users reset`)", code="person_exists")
            tx.execute(f"INSERT INTO people ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608 - fixed column list
                       (name, role, hashed, self._sealer.seal(name, secret), 0, 0, now, now))

        self._db.write_sync(add)
        return Enrolment(password, factors.totp_uri(secret, name, self._issuer))

    def reset(self, name: str, *, now: int) -> Enrolment:
        """New password and TOTP secret; every session of the person ends; a disabled account stays so."""
        password, secret = factors.new_password(), factors.new_totp_secret()
        hashed = factors.hash_password(password)

        def reset(tx: Tx) -> None:
            if tx.execute("UPDATE people SET password_hash = ?, totp_secret = ?, totp_last_step = 0, updated_at = ?"
                          " WHERE name = ?", (hashed, self._sealer.seal(name, secret), now, name)) != 1:
                raise NotFound("no such person", code="person_not_found")
            tx.execute("DELETE FROM console_sessions WHERE person = ?", (name,))

        self._db.write_sync(reset)
        return Enrolment(password, factors.totp_uri(secret, name, self._issuer))

    def set_disabled(self, name: str, disabled: bool, *, now: int) -> Person:
        """Disabling ends every session of the person at once (browser and CLI)."""

        def change(tx: Tx) -> Person:
            if tx.execute("UPDATE people SET disabled = ?, updated_at = ? WHERE name = ?",
                          (int(disabled), now, name)) != 1:
                raise NotFound("no such person", code="person_not_found")
            if disabled:
                tx.execute("DELETE FROM console_sessions WHERE person = ?", (name,))
            return _person(tx, name)

        return self._db.write_sync(change)

    def get(self, name: str) -> Person:
        return self._db.read_sync(lambda tx: _person(tx, name))

    def list(self) -> list[Person]:
        return self._db.read_sync(lambda tx: [_load(r) for r in tx.query(
            f"SELECT {_COLUMNS} FROM people ORDER BY name")])  # noqa: S608 - fixed column list

    # -- which agent sessions are whose --------------------------------------------------------

    def link_token(self, person: str, sid: str, *, now: int) -> None:
        self._db.write_sync(lambda tx: tx.execute(
            "INSERT INTO person_tokens (sid, person, issued_at) VALUES (?, ?, ?)", (sid, person, now)))

    def requested_by(self, person: str, *, sub: str, sid: str) -> bool:
        """Whether a call from token (`sub`, `sid`) counts as `person`'s own request."""
        if sub.casefold() == person.casefold():
            return True
        row = self._db.read_sync(lambda tx: tx.one("SELECT person FROM person_tokens WHERE sid = ?", (sid,)))
        return row is not None and row[0] == person

    # -- login ----------------------------------------------------------------------------------

    def login(self, name: str, password: str, code: str, *, address: str, now: int,
              kind: SessionKind = "browser") -> tuple[str, ConsoleSession]:
        """A new session (its secret, shown once) for a person proving both factors; see the module doc."""
        keys = (f"person:{name[:64]}", f"address:{address[:64]}")
        # 1. throttle
        if self._throttled(keys, now):
            raise AuthenticationError("too many failed logins; try again later", code="login_throttled")
        row = self._db.read_sync(lambda tx: tx.one(
            f"SELECT {_COLUMNS} FROM people WHERE name = ?", (name,)))  # noqa: S608 - fixed column list
        # 2. password, 3. enabled, 4. totp
        failed = None
        if not factors.password_matches(row[2] if row else None, password):
            failed = "password"
        elif row is None or row[5]:
            failed = "disabled"
        elif not self._use_code(name, row[3], code, now):
            failed = "totp"
        if failed is not None or row is None:
            self._db.write_sync(lambda tx: _fail(tx, keys, now, self._limits.failure_window))
            raise AuthenticationError("login failed: name, password or code is wrong",
                                      code=f"login_failed_{failed}")
        if factors.needs_rehash(row[2]):
            rehashed = factors.hash_password(password)
            self._db.write_sync(lambda tx: tx.execute("UPDATE people SET password_hash = ? WHERE name = ?",
                                                      (rehashed, name)))
        # 5. session
        return self._open(name, kind, now)

    def _throttled(self, keys: tuple[str, str], now: int) -> bool:
        since = now - self._limits.failure_window

        def count(tx: Tx) -> tuple[int, int]:
            found = [tx.one("SELECT COUNT(*) FROM login_failures WHERE key = ? AND at > ?", (k, since)) for k in keys]
            return int(found[0][0]) if found[0] else 0, int(found[1][0]) if found[1] else 0

        per_account, per_address = self._db.read_sync(count)
        return per_account >= self._limits.failures_per_account or per_address >= self._limits.failures_per_address

    def _use_code(self, name: str, stored: str, code: str, now: int) -> bool:
        """Accept `code` once: the step moves forward in the same transaction that checks it."""
        secret = self._sealer.open(name, stored)
        if secret is None:
            log.error("the TOTP secret of a person does not open with the people key (DESKGATE_PEOPLE_KEY or"
                      " keys/people.key changed, or the row was altered); `users reset` enrols them anew")
            return False

        def use(tx: Tx) -> bool:
            row = tx.one("SELECT totp_last_step FROM people WHERE name = ?", (name,))
            step = factors.accepted_step(secret, code, now=now, after_step=int(row[0]) if row else 2**62)
            return step is not None and tx.execute(
                "UPDATE people SET totp_last_step = ? WHERE name = ? AND totp_last_step < ?", (step, name, step)) == 1

        return self._db.write_sync(use)

    def _open(self, name: str, kind: SessionKind, now: int) -> tuple[str, ConsoleSession]:
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        lifetime = self._limits.absolute if kind == "browser" else self._limits.cli

        def open_(tx: Tx) -> ConsoleSession:
            tx.execute("DELETE FROM login_failures WHERE key = ?", (f"person:{name}",))
            tx.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (now,))
            tx.execute("INSERT INTO console_sessions (id_digest, person, kind, csrf, created_at, last_seen, expires_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)", (session_digest(secret), name, kind, csrf, now, now,
                                                         now + lifetime))
            return ConsoleSession(_person(tx, name), kind, csrf, now, now + lifetime)

        return secret, self._db.write_sync(open_)

    # -- sessions -------------------------------------------------------------------------------

    def session(self, secret: str, *, now: int, kind: SessionKind = "browser") -> ConsoleSession:
        """The live session for `secret`, touched; expired (idle or absolute), unknown, of another kind or
        of a disabled person: `AuthenticationError`. A browser session's idle clock restarts here."""
        digest = session_digest(secret)

        def touch(tx: Tx) -> ConsoleSession:
            row = tx.one("SELECT person, kind, csrf, created_at, last_seen, expires_at FROM console_sessions"
                         " WHERE id_digest = ?", (digest,))
            if row is None or row[1] != kind:
                raise AuthenticationError("not logged in", code="console_session_unknown")
            idle_over = kind == "browser" and now - int(row[4]) > self._limits.idle
            if now >= int(row[5]) or idle_over:
                tx.execute("DELETE FROM console_sessions WHERE id_digest = ?", (digest,))
                raise AuthenticationError("the session expired; log in again", code="console_session_expired")
            person = _person(tx, row[0])
            if person.disabled:
                raise AuthenticationError("not logged in", code="console_session_disabled")
            tx.execute("UPDATE console_sessions SET last_seen = ? WHERE id_digest = ?", (now, digest))
            return ConsoleSession(person, row[1], row[2], int(row[3]), int(row[5]))

        return self._db.write_sync(touch)

    def logout(self, secret: str) -> None:
        self._db.write_sync(lambda tx: tx.execute("DELETE FROM console_sessions WHERE id_digest = ?",
                                                  (session_digest(secret),)))


def _fail(tx: Tx, keys: tuple[str, str], now: int, window: int) -> None:
    tx.execute("DELETE FROM login_failures WHERE at <= ?", (now - window,))
    tx.executemany("INSERT INTO login_failures (key, at) VALUES (?, ?)", [(k, now) for k in keys])


def _person(tx: Tx, name: str) -> Person:
    row = tx.one(f"SELECT {_COLUMNS} FROM people WHERE name = ?", (name,))  # noqa: S608 - fixed column list
    if row is None:
        raise NotFound("no such person", code="person_not_found")
    return _load(row)


def _load(row: Row) -> Person:
    return Person(name=row[0], role=row[1], disabled=bool(row[5]), created_at=int(row[6]))


def limits_of(console: ConsoleSection) -> Limits:
    return Limits(idle=parse_duration(console.idle_timeout), absolute=parse_duration(console.absolute_timeout),
                  cli=parse_duration(console.cli_credential_ttl), failures_per_account=console.failures_per_account,
                  failures_per_address=console.failures_per_address,
                  failure_window=parse_duration(console.failure_window))


def open_people(db: Database, settings: Settings, paths: Paths) -> People:
    """The repository over `db`, its tables upgraded (the `people` migration component)."""
    people = People(db, limits_of(settings.console), SecretSealer.load(paths), issuer=settings.tokens.issuer)
    people.upgrade()
    return people
