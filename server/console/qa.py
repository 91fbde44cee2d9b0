"""QA sampling (the guide's "review 50 automated resolutions per week").

The sample of a week is the automated executed actions of that week (ok outcomes whose decision tier
was automate and that ran under no approval), ordered by SHA-256 of "<week>:<request id>" and cut
at 50: random to a reviewer, and the same sample in every process and on every reload. A reviewer
marks each right or wrong with a note, once; the scorecard shows the share marked wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from deskgate.server.audit.reader import record_time
from deskgate.server.console.auditing import part
from deskgate.server.errors import DeniedError, InvalidArguments
from deskgate.server.store.db import Database, Tx
from deskgate.server.store.migrations import Migration, upgrade

QA_MIGRATIONS = [
    Migration(1, "qa reviews", """
CREATE TABLE qa_reviews (
    request_id TEXT PRIMARY KEY,
    week TEXT NOT NULL,
    verdict TEXT NOT NULL,
    note TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    reviewed_at BIGINT NOT NULL
);
CREATE INDEX qa_reviews_week ON qa_reviews (week)"""),
]
SAMPLE_SIZE = 50
Verdict = Literal["right", "wrong"]


@dataclass(frozen=True, slots=True)
class Review:
    request_id: str
    verdict: Verdict
    note: str
    reviewer: str
    reviewed_at: int


def week_of(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def this_week(now: int) -> str:
    return week_of(datetime.fromtimestamp(now, UTC))


def automated(record: dict[str, Any]) -> bool:
    decision = part(record, "decision")
    return (record.get("kind") == "outcome" and record.get("status") == "ok" and decision.get("tier") == "automate"
            and not decision.get("approval_id") and isinstance(record.get("request_id"), str))


def sample(records: Iterable[dict[str, Any]], week: str) -> list[dict[str, Any]]:
    found = []
    for record in records:
        moment = record_time(record)
        if moment is not None and automated(record) and week_of(moment) == week:
            found.append(record)
    found.sort(key=lambda r: hashlib.sha256(f"{week}:{r['request_id']}".encode()).hexdigest())
    return found[:SAMPLE_SIZE]


class Reviews:
    def __init__(self, db: Database) -> None:
        self._db = db

    def upgrade(self) -> list[Migration]:
        return upgrade(self._db, "qa", QA_MIGRATIONS)

    def record(self, request_id: str, week: str, verdict: str, note: str, reviewer: str, *, now: int) -> Review:
        if verdict not in ("right", "wrong"):
            raise InvalidArguments("a review is right or wrong", code="invalid_verdict")
        if verdict == "wrong" and not note:
            raise InvalidArguments("say what was wrong in the note", code="note_required")

        def write(tx: Tx) -> Review:
            if tx.one("SELECT 1 FROM qa_reviews WHERE request_id = ?", (request_id,)):
                raise DeniedError("this action was already reviewed", code="qa_reviewed")
            tx.execute("INSERT INTO qa_reviews (request_id, week, verdict, note, reviewer, reviewed_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (request_id, week, verdict, note, reviewer, now))
            return Review(request_id, verdict, note, reviewer, now)  # type: ignore[arg-type]  # checked above

        return self._db.write_sync(write)

    def of_week(self, week: str) -> dict[str, Review]:
        rows = self._db.read_sync(lambda tx: tx.query(
            "SELECT request_id, verdict, note, reviewer, reviewed_at FROM qa_reviews WHERE week = ?", (week,)))
        return {r[0]: Review(r[0], r[1], r[2], r[3], int(r[4])) for r in rows}

    def totals(self) -> tuple[int, int]:
        """(reviewed, marked wrong) over every week."""
        row = self._db.read_sync(lambda tx: tx.one(
            "SELECT COUNT(*), SUM(CASE WHEN verdict = 'wrong' THEN 1 ELSE 0 END) FROM qa_reviews"))
        return (int(row[0]), int(row[1] or 0)) if row else (0, 0)
