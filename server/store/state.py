"""The state store: all state the controls share, behind one interface, on either engine.

Each area is one small repository over the same `Database`, with its own tables:

    TokenLedger     issued-token inventory (metadata only, never a token) and revocations
    Redemptions     single use of confirmation tokens
    Idempotency     first result of a keyed write, replayed to repeats
    Counters        rate limits, attempts, per-session spend and the money breaker (fixed windows)
    Reservations    what a running call holds on those counters, until it is committed or released
    Breakers        tripped circuit breakers, until an admin resets them
    Approvals       assist-tier calls waiting for, or decided by, a human
    Verifications   customers whose identity a session verified (step-up)
    DeploymentMeta  what the last server start served (policy version, manifest hash)
    Actions         who started each reversible action and hand-off (session, subject, tool, amount):
                    deskgate's own record, since a real backend knows nothing of sessions

Every method that decides something (redeem, claim, add within a limit, decide) does so in one
write transaction, so two server processes can never both win.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal

from deskgate.server.errors import StoreUnavailable
from deskgate.server.store.db import Database, Tx
from deskgate.server.store.migrations import Migration, upgrade

STATE_MIGRATIONS = [
    Migration(1, "controls", """
CREATE TABLE issued_tokens (
    jti TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    scopes TEXT NOT NULL,
    customer TEXT,
    ticket TEXT,
    max_refund TEXT,
    kid TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX issued_tokens_sub ON issued_tokens (sub);
CREATE INDEX issued_tokens_sid ON issued_tokens (sid);
CREATE TABLE revocations (
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE TABLE redemptions (
    jti TEXT PRIMARY KEY,
    redeemed_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE idempotency (
    scope_key TEXT PRIMARY KEY,
    args_digest TEXT NOT NULL,
    state TEXT NOT NULL,
    result TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE counters (
    key TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE TABLE breakers (
    name TEXT PRIMARY KEY,
    tripped_at BIGINT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    args_digest TEXT NOT NULL,
    sub TEXT NOT NULL,
    sid TEXT NOT NULL,
    customer_id TEXT,
    summary TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    manifest_hash TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    decision_reason TEXT,
    result TEXT
);
CREATE INDEX approvals_state ON approvals (state);
CREATE TABLE verifications (
    sid TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    method TEXT NOT NULL,
    verified_at BIGINT NOT NULL,
    PRIMARY KEY (sid, customer_id)
)"""),
    Migration(2, "deployment meta", """
CREATE TABLE deployment_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)"""),
]

# Its own component, so that its versions never collide with another branch's "state" migrations.
OWNERSHIP_MIGRATIONS = [
    Migration(1, "action owners", """
CREATE TABLE action_owners (
    action_id TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    sid TEXT NOT NULL,
    sub TEXT NOT NULL,
    request_id TEXT NOT NULL,
    amount TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX action_owners_sid ON action_owners (sid)"""),
]

# Its own component too (limits and breakers): a reset of a breaker starts a new generation of its counters.
LIMIT_MIGRATIONS = [
    Migration(1, "breaker resets", """
CREATE TABLE breaker_resets (
    name TEXT PRIMARY KEY,
    generation BIGINT NOT NULL,
    reset_at BIGINT NOT NULL,
    reset_by TEXT NOT NULL
)"""),
    Migration(2, "reservations", """
CREATE TABLE reservations (
    request_id TEXT PRIMARY KEY,
    counts TEXT NOT NULL,
    created_at BIGINT NOT NULL
)"""),
]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    jti: str
    sub: str
    sid: str
    client_id: str
    scopes: str
    customer: str | None
    ticket: str | None
    max_refund: str | None
    kid: str
    issued_at: int
    expires_at: int
    revoked: bool = False


class TokenLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, t: IssuedToken) -> None:
        await self._db.write(lambda tx: _insert_issued(tx, t))

    def record_sync(self, t: IssuedToken) -> None:
        self._db.write_sync(lambda tx: _insert_issued(tx, t))

    def list_sync(self, *, include_expired: bool, now: int) -> list[IssuedToken]:
        def read(tx: Tx) -> list[IssuedToken]:
            rows = tx.query(
                "SELECT jti, sub, sid, client_id, scopes, customer, ticket, max_refund, kid, issued_at,"
                " expires_at FROM issued_tokens WHERE expires_at > ? ORDER BY issued_at, jti",
                (-1 if include_expired else now,),
            )
            return [IssuedToken(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                                revoked=_is_revoked(tx, r[0], r[2], r[1], r[9])) for r in rows]

        return self._db.read_sync(read)

    def revoke_sync(self, kind: Literal["jti", "sid", "sub"], value: str, reason: str, now: int) -> bool:
        """Revoke a token, a session or every token issued to a subject so far. True if new."""
        return self._db.write_sync(lambda tx: tx.execute(
            "INSERT INTO revocations (kind, value, revoked_at, reason) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (kind, value) DO UPDATE SET revoked_at = excluded.revoked_at,"
            " reason = excluded.reason",
            (kind, value, now, reason)) > 0)

    async def is_revoked(self, jti: str, sid: str, sub: str, issued_at: int) -> bool:
        return await self._db.read(lambda tx: _is_revoked(tx, jti, sid, sub, issued_at))

    def is_revoked_sync(self, jti: str, sid: str, sub: str, issued_at: int) -> bool:
        return self._db.read_sync(lambda tx: _is_revoked(tx, jti, sid, sub, issued_at))


def _insert_issued(tx: Tx, t: IssuedToken) -> None:
    fields = asdict(t)
    fields.pop("revoked")
    tx.execute(
        f"INSERT INTO issued_tokens ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",  # noqa: S608 - column names are our dataclass fields
        tuple(fields.values()),
    )


def _is_revoked(tx: Tx, jti: str, sid: str, sub: str, issued_at: int) -> bool:
    # A subject revocation covers the tokens issued up to that moment, not the ones issued after.
    row = tx.one(
        "SELECT 1 FROM revocations WHERE (kind = 'jti' AND value = ?) OR (kind = 'sid' AND value = ?)"
        " OR (kind = 'sub' AND value = ? AND revoked_at >= ?) LIMIT 1",
        (jti, sid, sub, issued_at),
    )
    return row is not None


class Redemptions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def redeem_once(self, jti: str, *, now: int, expires_at: int) -> bool:
        """Record the use of a single-use token. True for the first caller only, ever."""
        return await self._db.write(lambda tx: tx.execute(
            "INSERT INTO redemptions (jti, redeemed_at, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (jti) DO NOTHING", (jti, now, expires_at)) == 1)


IdempotencyClaim = tuple[Literal["new", "done", "in_progress", "conflict"], dict[str, Any] | None]


class Idempotency:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, scope_key: str, args_digest: str, now: int) -> IdempotencyClaim:
        """Claim a key for one execution; a repeat sees the stored result, or that it is running."""

        def claim(tx: Tx) -> IdempotencyClaim:
            inserted = tx.execute(
                "INSERT INTO idempotency (scope_key, args_digest, state, result, created_at)"
                " VALUES (?, ?, 'running', NULL, ?) ON CONFLICT (scope_key) DO NOTHING",
                (scope_key, args_digest, now),
            )
            if inserted == 1:
                return "new", None
            row = tx.one("SELECT args_digest, state, result FROM idempotency WHERE scope_key = ?", (scope_key,))
            if row is None:  # the conflicting row vanished inside our own transaction: the store is broken
                raise StoreUnavailable("the idempotency record could not be read back")
            if row[0] != args_digest:
                return "conflict", None
            if row[1] == "done":
                return "done", json.loads(row[2])
            return "in_progress", None

        return await self._db.write(claim)

    async def is_done(self, scope_key: str, args_digest: str) -> bool:
        """True when this key finished a call with these very arguments (a retry may see its result)."""
        row = await self._db.read(lambda tx: tx.one(
            "SELECT 1 FROM idempotency WHERE scope_key = ? AND args_digest = ? AND state = 'done'",
            (scope_key, args_digest)))
        return row is not None

    async def complete(self, scope_key: str, result: dict[str, Any]) -> None:
        await self._db.write(lambda tx: tx.execute(
            "UPDATE idempotency SET state = 'done', result = ? WHERE scope_key = ?",
            (json.dumps(result, sort_keys=True), scope_key)))

    async def release(self, scope_key: str) -> None:
        """Forget a claim whose execution failed before any side effect, so a retry can run."""
        await self._db.write(lambda tx: tx.execute(
            "DELETE FROM idempotency WHERE scope_key = ? AND state = 'running'", (scope_key,)))


@dataclass(frozen=True, slots=True)
class CounterAdd:
    """One addition to a counter window, refused when the total would pass `limit` (None: no limit)."""

    key: str
    window_start: int
    amount: int
    limit: int | None = None


AddResult = tuple[CounterAdd | None, tuple[int, ...]]


def _add_all_within(tx: Tx, adds: Sequence[CounterAdd]) -> AddResult:
    """(the first addition that would pass its limit, or None; each counter's total afterwards -
    unchanged when refused). Every addition or none."""
    current = []
    for a in adds:
        row = tx.one("SELECT value FROM counters WHERE key = ? AND window_start = ?", (a.key, a.window_start))
        current.append(int(row[0]) if row else 0)
    for a, value in zip(adds, current, strict=True):
        if a.limit is not None and value + a.amount > a.limit:
            return a, tuple(current)
    # Rows in one order for every caller: two transactions never wait on each other's locks (deadlock).
    for a in sorted(adds, key=lambda a: (a.key, a.window_start)):
        tx.execute(
            "INSERT INTO counters (key, window_start, value) VALUES (?, ?, ?)"
            " ON CONFLICT (key, window_start) DO UPDATE SET value = counters.value + excluded.value",
            (a.key, a.window_start, a.amount),
        )
    return None, tuple(v + a.amount for a, v in zip(adds, current, strict=True))


class Counters:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add_all_within(self, adds: Sequence[CounterAdd]) -> AddResult:
        """Every addition or none, in one write transaction: check-and-add as one step, so concurrent
        callers (and processes) can never both pass a limit. Returns (the first addition that would pass
        its limit, or None; each counter's total afterwards - unchanged when refused)."""
        return await self._db.write(lambda tx: _add_all_within(tx, adds))

    async def add_within(self, key: str, window_start: int, amount: int, limit: int | None) -> tuple[bool, int]:
        """Add `amount` unless that would pass `limit`; returns (added, total after)."""

        def add(tx: Tx) -> tuple[bool, int]:
            row = tx.one("SELECT value FROM counters WHERE key = ? AND window_start = ?", (key, window_start))
            current = int(row[0]) if row else 0
            if limit is not None and current + amount > limit:
                return False, current
            tx.execute(
                "INSERT INTO counters (key, window_start, value) VALUES (?, ?, ?)"
                " ON CONFLICT (key, window_start) DO UPDATE SET value = counters.value + excluded.value",
                (key, window_start, amount),
            )
            return True, current + amount

        return await self._db.write(add)

    async def get(self, key: str, window_start: int) -> int:
        row = await self._db.read(lambda tx: tx.one(
            "SELECT value FROM counters WHERE key = ? AND window_start = ?", (key, window_start)))
        return int(row[0]) if row else 0


class Reservations:
    """What a call counts while it runs - its money and its actions - held on the counters under its
    request id: reserved in one check-and-add (`reserve`), then either kept (`commit`: the side effect
    ran) or given back (`release`: it did not). Each settles once: a second commit or release of the
    same request changes nothing, so the chain and start-up recovery can never give money back twice."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve(self, request_id: str, adds: Sequence[CounterAdd], now: int) -> AddResult:
        def reserve(tx: Tx) -> AddResult:
            refused, totals = _add_all_within(tx, adds)
            if refused is None:
                counts = [[a.key, a.window_start, a.amount] for a in adds]
                tx.execute("INSERT INTO reservations (request_id, counts, created_at) VALUES (?, ?, ?)",
                           (request_id, json.dumps(counts), now))
            return refused, totals

        return await self._db.write(reserve)

    async def commit(self, request_id: str) -> bool:
        """The call ran: what it counted stays counted. False when nothing was held."""
        return await self._db.write(lambda tx: tx.execute(
            "DELETE FROM reservations WHERE request_id = ?", (request_id,)) == 1)

    async def release(self, request_id: str) -> bool:
        """The call did not run: give back what it counted. False when nothing was held."""

        def release(tx: Tx) -> bool:
            row = tx.one("SELECT counts FROM reservations WHERE request_id = ?", (request_id,))
            if row is None:
                return False
            counts = json.loads(row[0])
            _add_all_within(tx, [CounterAdd(key, int(start), -int(amount)) for key, start, amount in counts])
            tx.execute("DELETE FROM reservations WHERE request_id = ?", (request_id,))
            return True

        return await self._db.write(release)

    async def settle(self, request_id: str, ran: bool) -> bool:
        """Commit (`ran`) or release the reservation of a request; False when nothing was held."""
        return await (self.commit(request_id) if ran else self.release(request_id))

    async def held(self, request_id: str) -> bool:
        row = await self._db.read(lambda tx: tx.one("SELECT 1 FROM reservations WHERE request_id = ?", (request_id,)))
        return row is not None


class Breakers:
    """Tripped breakers, and the generation of each breaker's counters: a reset starts a new one, so
    the window a breaker tripped on is gone with the trip (its amounts no longer count), while money
    reserved before the reset is still given back to the generation it was counted in."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def trip(self, name: str, reason: str, now: int) -> bool:
        """Trip a breaker; True when this call tripped it (so the trip is audited once)."""
        return await self._db.write(lambda tx: tx.execute(
            "INSERT INTO breakers (name, tripped_at, reason) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, now, reason)) == 1)

    async def tripped(self) -> dict[str, str]:
        rows = await self._db.read(lambda tx: tx.query("SELECT name, reason FROM breakers"))
        return {r[0]: r[1] for r in rows}

    def list_sync(self) -> list[tuple[str, int, str]]:
        return self._db.read_sync(lambda tx: tx.query("SELECT name, tripped_at, reason FROM breakers ORDER BY name"))

    async def status(self, name: str) -> tuple[bool, int]:
        """(tripped, generation of its counters), read together."""

        def read(tx: Tx) -> tuple[bool, int]:
            tripped = tx.one("SELECT 1 FROM breakers WHERE name = ?", (name,)) is not None
            row = tx.one("SELECT generation FROM breaker_resets WHERE name = ?", (name,))
            return tripped, int(row[0]) if row else 0

        return await self._db.read(read)

    def reset_sync(self, name: str, *, by: str, now: int) -> bool:
        """Re-arm a tripped breaker and start a new generation of its counters, in one transaction.
        False (nothing changed) when it was not tripped."""

        def reset(tx: Tx) -> bool:
            if tx.execute("DELETE FROM breakers WHERE name = ?", (name,)) != 1:
                return False
            tx.execute("INSERT INTO breaker_resets (name, generation, reset_at, reset_by) VALUES (?, 1, ?, ?)"
                       " ON CONFLICT (name) DO UPDATE SET generation = breaker_resets.generation + 1,"
                       " reset_at = excluded.reset_at, reset_by = excluded.reset_by", (name, now, by))
            return True

        return self._db.write_sync(reset)


class Verifications:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def mark(self, sid: str, customer_id: str, method: str, now: int) -> None:
        await self._db.write(lambda tx: tx.execute(
            "INSERT INTO verifications (sid, customer_id, method, verified_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (sid, customer_id) DO UPDATE SET method = excluded.method,"
            " verified_at = excluded.verified_at", (sid, customer_id, method, now)))

    async def is_verified(self, sid: str, customer_id: str) -> bool:
        row = await self._db.read(lambda tx: tx.one(
            "SELECT 1 FROM verifications WHERE sid = ? AND customer_id = ?", (sid, customer_id)))
        return row is not None


class DeploymentMeta:
    """Small facts about the deployment itself, e.g. what the last server start served."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get_sync(self, key: str) -> str | None:
        row = self._db.read_sync(lambda tx: tx.one("SELECT value FROM deployment_meta WHERE key = ?", (key,)))
        return str(row[0]) if row else None

    async def get(self, key: str) -> str | None:
        """`get_sync` for the event loop (one indexed row: the published policy is checked on every call)."""
        row = await self._db.read(lambda tx: tx.one("SELECT value FROM deployment_meta WHERE key = ?", (key,)))
        return str(row[0]) if row else None

    def set_sync(self, key: str, value: str) -> None:
        self.set_all_sync({key: value})

    def set_all_sync(self, values: dict[str, str]) -> None:
        """Set several keys in one transaction: a reader sees all of them changed or none."""

        def write(tx: Tx) -> None:
            for key, value in values.items():
                tx.execute("INSERT INTO deployment_meta (key, value) VALUES (?, ?)"
                           " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

        self._db.write_sync(write)


@dataclass(frozen=True, slots=True)
class RecordedAction:
    """Who started an action (ACT-...) or a hand-off (H-...), by which tool, for how much."""

    action_id: str
    tool: str
    sid: str
    sub: str
    request_id: str
    amount: Decimal | None
    created_at: int


class Actions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, action: RecordedAction) -> None:
        """Record the owner once; a second record of the same id (an undo naming it) changes nothing."""
        await self._db.write(lambda tx: tx.execute(
            "INSERT INTO action_owners (action_id, tool, sid, sub, request_id, amount, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (action_id) DO NOTHING",
            (action.action_id, action.tool, action.sid, action.sub, action.request_id,
             None if action.amount is None else str(action.amount), action.created_at)))

    async def get(self, action_id: str) -> RecordedAction | None:
        row = await self._db.read(lambda tx: tx.one(
            "SELECT action_id, tool, sid, sub, request_id, amount, created_at FROM action_owners"
            " WHERE action_id = ?", (action_id,)))
        if row is None:
            return None
        return RecordedAction(row[0], row[1], row[2], row[3], row[4], None if row[5] is None else Decimal(row[5]),
                              int(row[6]))


class StateStore:
    """The facade the guard chain and the CLI hold. Upgrade the schema before first use."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tokens = TokenLedger(db)
        self.redemptions = Redemptions(db)
        self.idempotency = Idempotency(db)
        self.counters = Counters(db)
        self.reservations = Reservations(db)
        self.breakers = Breakers(db)
        self.verifications = Verifications(db)
        self.meta = DeploymentMeta(db)
        self.actions = Actions(db)

    def upgrade(self) -> list[Migration]:
        return (upgrade(self.db, "state", STATE_MIGRATIONS) + upgrade(self.db, "ownership", OWNERSHIP_MIGRATIONS)
                + upgrade(self.db, "limits", LIMIT_MIGRATIONS))

    def close(self) -> None:
        self.db.close()
