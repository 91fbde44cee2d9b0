"""Assist tier: calls that wait for a human approver, in the state store's `approvals` table.

Life of an approval (one row; every transition is one write transaction, so exactly one wins):

    pending --approve (quorum reached)--> approved --claim--> executing --finish--> done | failed
       \\--deny--> denied                  (past `expires_at`, pending and approved read as expired)

- The row holds the exact call: tool, raw arguments (without control fields) and their canonical
  digest, the session (sub, sid), policy version and manifest hash. Nothing ever updates the
  arguments; `claim` re-derives the digest from the stored arguments and refuses on a mismatch.
- The approver must be another principal than the requesting `sub` (compared case-insensitively);
  above the policy's `two_person_above` amount two different approvers must approve.
- `claim` is for the session that asked, under the same policy and manifest, before expiry.
- A denied call repeated by its session before the approval's expiry is refused with the approver's
  reason (`approval_denied`) and counted on the denied approval (`repeats`), not filed afresh.
- A decision's reason is stored redacted (the detectors run over it): the agent and the log read it.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from deskgate.server.errors import DeniedError, InvalidArguments, NotFound
from deskgate.server.policy.canonical import argument_digest, call_arguments
from deskgate.server.policy.confirmation import Binding
from deskgate.server.redaction.redactor import redact_text
from deskgate.server.store.db import Database, Row, Tx
from deskgate.server.store.migrations import Migration, upgrade

POLICY_MIGRATIONS = [
    Migration(1, "approval votes", """
CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    voted_at BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);
CREATE TABLE approval_quorum (
    approval_id TEXT PRIMARY KEY,
    required INTEGER NOT NULL
)"""),
    # >= 100: added by the console branch beside the policy branch's own versions.
    Migration(100, "repeats of denied calls", """
CREATE TABLE approval_repeats (
    approval_id TEXT PRIMARY KEY,
    repeats INTEGER NOT NULL,
    last_at BIGINT NOT NULL
)"""),
]

State = Literal["pending", "approved", "denied", "executing", "done", "failed", "expired"]
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
_ID = re.compile(r"^AP-[0-9A-F]{12}$")
_COLUMNS = ("id, state, tool, arguments, args_digest, sub, sid, customer_id, summary, policy_version, manifest_hash,"
            " requested_at, expires_at, decided_by, decided_at, decision_reason, result")


@dataclass(frozen=True, slots=True)
class Approval:
    id: str
    state: State
    tool: str
    arguments: dict[str, Any]
    args_digest: str
    sub: str
    sid: str
    customer_id: str | None
    summary: str
    policy_version: str
    manifest_hash: str
    requested_at: int
    expires_at: int
    decided_by: str | None
    decided_at: int | None
    decision_reason: str | None
    result: dict[str, Any] | None
    required: int
    approvers: tuple[str, ...]
    repeats: int = 0

    def state_at(self, now: int) -> State:
        """The state as people should see it: an undecided or unused approval expires."""
        return "expired" if self.state in ("pending", "approved") and now >= self.expires_at else self.state

    def public(self, now: int) -> dict[str, Any]:
        """What `approvals show` prints and `get_action_status` may answer (no arguments: may be PII)."""
        return {"approval_id": self.id, "state": self.state_at(now), "tool": self.tool, "summary": self.summary,
                "requested_by": self.sub, "requested_at": self.requested_at, "expires_at": self.expires_at,
                "approvals_required": self.required, "approved_by": list(self.approvers),
                "decided_by": self.decided_by, "decided_at": self.decided_at, "reason": self.decision_reason,
                "repeats_after_denial": self.repeats}


def principal(name: str) -> str:
    """A validated approver name (letters, digits, . _ @ -)."""
    if not _PRINCIPAL.match(name or ""):
        raise InvalidArguments("an approver is named by letters, digits and . _ @ - (at most 128)",
                               code="invalid_principal")
    return name


class Approvals:
    """The repository. `upgrade()` after `StateStore.upgrade()` (it adds the vote tables)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def upgrade(self) -> list[Migration]:
        return upgrade(self._db, "policy", POLICY_MIGRATIONS)

    async def create(self, binding: Binding, arguments: dict[str, Any], *, customer_id: str | None, summary: str,
                     now: int, ttl: int, required: int = 1) -> Approval:
        """A pending approval of exactly this call; an open one for the same call is returned instead."""
        stored = call_arguments(arguments)
        if argument_digest(stored) != binding.args_digest:
            raise InvalidArguments("the arguments do not match the call's digest", code="approval_mismatch")
        if required not in (1, 2):
            raise InvalidArguments("an approval needs one or two approvers", code="approval_quorum")

        def create(tx: Tx) -> Approval:
            row = tx.one(
                f"SELECT {_COLUMNS} FROM approvals WHERE sid = ? AND tool = ? AND args_digest = ?"  # noqa: S608 - fixed column list
                " AND policy_version = ? AND manifest_hash = ? AND state IN ('pending', 'approved')"
                " AND expires_at > ? ORDER BY requested_at DESC LIMIT 1",
                (binding.sid, binding.tool, binding.args_digest, binding.policy_version, binding.manifest_hash, now))
            if row is not None:
                return _load(tx, row)
            denied = _count_denied_repeat(tx, binding, now)
            if denied is not None:
                return denied
            approval_id = f"AP-{secrets.token_hex(6).upper()}"
            tx.execute(
                f"INSERT INTO approvals ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",  # noqa: S608 - fixed column list
                (approval_id, "pending", binding.tool, json.dumps(stored, sort_keys=True), binding.args_digest,
                 binding.sub, binding.sid, customer_id, summary, binding.policy_version, binding.manifest_hash,
                 now, now + ttl, None, None, None, None))
            tx.execute("INSERT INTO approval_quorum (approval_id, required) VALUES (?, ?)", (approval_id, required))
            return _get(tx, approval_id)

        approval = await self._db.write(create)
        if approval.state == "denied":  # raised after the commit: the repeat stays counted
            raise DeniedError(f"An approver denied this exact call: {(approval.decision_reason or '').rstrip('.')}. "
                              "Do not retry it; tell the customer.", code="approval_denied", approval_id=approval.id)
        return approval

    async def open_for(self, binding: Binding, now: int, *, approved: bool = False) -> Approval | None:
        """The open (pending or approved; with `approved`, approved only) unexpired approval of exactly this
        call, without filing one."""
        states = ("approved",) if approved else ("pending", "approved")

        def find(tx: Tx) -> Approval | None:
            row = tx.one(
                f"SELECT {_COLUMNS} FROM approvals WHERE sid = ? AND tool = ? AND args_digest = ?"  # noqa: S608 - fixed column list
                " AND policy_version = ? AND manifest_hash = ? AND state IN (?, ?) AND expires_at > ?"
                " ORDER BY requested_at DESC LIMIT 1",
                (binding.sid, binding.tool, binding.args_digest, binding.policy_version, binding.manifest_hash,
                 states[0], states[-1], now))
            return None if row is None else _load(tx, row)

        return await self._db.read(find)

    async def get(self, approval_id: str) -> Approval:
        return await self._db.read(lambda tx: _get(tx, approval_id))

    def get_sync(self, approval_id: str) -> Approval:
        return self._db.read_sync(lambda tx: _get(tx, approval_id))

    def list_sync(self, *, now: int, everything: bool = False) -> list[Approval]:
        """Open approvals (pending, not expired), or every approval, oldest first."""

        def read(tx: Tx) -> list[Approval]:
            rows = tx.query(f"SELECT {_COLUMNS} FROM approvals ORDER BY requested_at, id")  # noqa: S608 - fixed column list
            found = [_load(tx, r) for r in rows]
            return found if everything else [a for a in found if a.state_at(now) == "pending"]

        return self._db.read_sync(read)

    async def decide(self, approval_id: str, approver: str, approve: bool, reason: str, *, now: int) -> Approval:
        return await self._db.write(lambda tx: _decide(tx, approval_id, approver, approve, reason, now))

    def decide_sync(self, approval_id: str, approver: str, approve: bool, reason: str, *, now: int) -> Approval:
        return self._db.write_sync(lambda tx: _decide(tx, approval_id, approver, approve, reason, now))

    async def claim(self, approval_id: str, *, sid: str, policy_version: str, manifest_hash: str, now: int,
                    call: tuple[str, str] | None = None) -> Approval:
        """approved -> executing, exactly once; returns the stored call to execute.

        `call` is (tool, args_digest) when the caller presents a call: it must be the approved one.
        """

        def claim(tx: Tx) -> Approval:
            approval = _get(tx, approval_id)
            if approval.sid != sid:
                raise NotFound("no such approval for this session", code="approval_not_found")
            if call is not None and call != (approval.tool, approval.args_digest):
                raise DeniedError("this approval is for a different call", code="approval_mismatch")
            if approval.state_at(now) != "approved":
                raise DeniedError(f"this approval is {approval.state_at(now)}, not approved",
                                  code=f"approval_{approval.state_at(now)}")
            if (approval.policy_version, approval.manifest_hash) != (policy_version, manifest_hash):
                raise DeniedError("the policy or the tools changed since the approval; request it again",
                                  code="approval_stale")
            if argument_digest(approval.arguments) != approval.args_digest:
                raise DeniedError("the stored call does not match its digest", code="approval_corrupt")
            tx.execute("UPDATE approvals SET state = 'executing' WHERE id = ? AND state = 'approved'", (approval_id,))
            return _get(tx, approval_id)

        return await self._db.write(claim)

    async def finish(self, approval_id: str, *, ok: bool, result: dict[str, Any]) -> bool:
        """executing -> done | failed, with the outcome the agent will read. False if not executing."""
        return await self._db.write(lambda tx: tx.execute(
            "UPDATE approvals SET state = ?, result = ? WHERE id = ? AND state = 'executing'",
            ("done" if ok else "failed", json.dumps(result, sort_keys=True), approval_id)) == 1)


def _get(tx: Tx, approval_id: str) -> Approval:
    row = tx.one(f"SELECT {_COLUMNS} FROM approvals WHERE id = ?", (approval_id,)) if _ID.match(approval_id) else None  # noqa: S608 - fixed column list
    if row is None:
        raise NotFound("no such approval", code="approval_not_found")
    return _load(tx, row)


def _load(tx: Tx, row: Row) -> Approval:
    quorum = tx.one("SELECT required FROM approval_quorum WHERE approval_id = ?", (row[0],))
    votes = tx.query("SELECT approver FROM approval_votes WHERE approval_id = ? ORDER BY voted_at, approver",
                     (row[0],))
    repeats = tx.one("SELECT repeats FROM approval_repeats WHERE approval_id = ?", (row[0],))
    return Approval(
        id=row[0], state=row[1], tool=row[2], arguments=json.loads(row[3]), args_digest=row[4], sub=row[5],
        sid=row[6], customer_id=row[7], summary=row[8], policy_version=row[9], manifest_hash=row[10],
        requested_at=int(row[11]), expires_at=int(row[12]), decided_by=row[13],
        decided_at=None if row[14] is None else int(row[14]), decision_reason=row[15],
        result=None if row[16] is None else json.loads(row[16]),
        required=int(quorum[0]) if quorum else 1, approvers=tuple(v[0] for v in votes),
        repeats=int(repeats[0]) if repeats else 0)


def _count_denied_repeat(tx: Tx, binding: Binding, now: int) -> Approval | None:
    """The same call, denied for this session and not yet expired: its repeat counted, and returned."""
    row = tx.one("SELECT id FROM approvals WHERE sid = ? AND tool = ? AND args_digest = ?"
                 " AND policy_version = ? AND manifest_hash = ? AND state = 'denied' AND expires_at > ?"
                 " ORDER BY requested_at DESC LIMIT 1",
                 (binding.sid, binding.tool, binding.args_digest, binding.policy_version, binding.manifest_hash, now))
    if row is None:
        return None
    if tx.execute("UPDATE approval_repeats SET repeats = repeats + 1, last_at = ? WHERE approval_id = ?",
                  (now, row[0])) == 0:
        tx.execute("INSERT INTO approval_repeats (approval_id, repeats, last_at) VALUES (?, 1, ?)", (row[0], now))
    return _get(tx, row[0])


def _decide(tx: Tx, approval_id: str, approver: str, approve: bool, reason: str, now: int) -> Approval:
    approver = principal(approver)
    reason = redact_text((reason or "").strip())
    if not approve and not reason:
        raise InvalidArguments("a denial needs a reason", code="reason_required")
    if len(reason) > 500:
        raise InvalidArguments("a reason has at most 500 characters", code="reason_too_long")
    approval = _get(tx, approval_id)
    state = approval.state_at(now)
    if state == "expired":
        raise DeniedError("this approval expired and can no longer be decided", code="approval_expired")
    if state != "pending":
        raise DeniedError(f"this approval was already decided ({state})", code="approval_decided")
    if approver.casefold() == approval.sub.casefold():
        raise DeniedError("an approver cannot decide their own request", code="approval_self")
    if any(approver.casefold() == a.casefold() for a in approval.approvers):
        raise DeniedError("this approver already approved; another approver must decide",
                          code="approval_same_approver")
    if not approve:
        _close(tx, approval_id, "denied", approver, now, reason)
    else:
        tx.execute("INSERT INTO approval_votes (approval_id, approver, voted_at) VALUES (?, ?, ?)",
                   (approval_id, approver, now))
        if len(approval.approvers) + 1 >= approval.required:
            _close(tx, approval_id, "approved", approver, now, reason or None)
    return _get(tx, approval_id)


def _close(tx: Tx, approval_id: str, state: str, approver: str, now: int, reason: str | None) -> None:
    # The state guard makes a concurrent second decision a no-op; the caller's transaction serialises them.
    tx.execute("UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, decision_reason = ?"
               " WHERE id = ? AND state = 'pending'", (state, approver, now, reason, approval_id))
