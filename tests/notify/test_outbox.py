"""The outbox alone: one row per webhook and event key, leases, retries with backoff, giving up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from deskgate.server.notify.outbox import LEASE_SECONDS, MAX_ATTEMPTS, Outbox, Row, backoff
from deskgate.server.store.db import SqliteDatabase

NOW = 1_900_000_000


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    db = SqliteDatabase(tmp_path / "state.db")
    box = Outbox(db)
    box.upgrade()
    yield box
    db.close()


def row(key: str = "approval.pending:AP-1", hook: str = "h1") -> Row:
    return Row(hook, key.split(":")[0], key, '{"event": "x"}')


def test_an_event_seen_twice_is_queued_once_per_webhook_and_the_cursor_only_moves_forward(outbox: Outbox) -> None:
    """Two processes reading the same record add one row; a late reader never moves the cursor back."""
    assert outbox.cursor() is None
    assert outbox.add([row(), row(hook="h2")], seq=10, now=NOW) == 2
    assert outbox.add([row()], seq=7, now=NOW) == 0
    assert outbox.cursor() == 10


def test_a_leased_row_is_not_leased_again_until_its_lease_ends(outbox: Outbox) -> None:
    outbox.add([row()], seq=1, now=NOW)
    assert len(outbox.lease_due(now=NOW)) == 1
    assert outbox.lease_due(now=NOW + 1) == []
    assert len(outbox.lease_due(now=NOW + LEASE_SECONDS)) == 1


def test_a_failed_delivery_waits_longer_each_time_and_gives_up_after_the_last_attempt(outbox: Outbox) -> None:
    """5 s, 10 s, 20 s ... capped at an hour; after MAX_ATTEMPTS failures the row is given up, not retried."""
    assert [backoff(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40] and backoff(30) == 3600
    outbox.add([row()], seq=1, now=NOW)
    now = NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        (pending,) = outbox.lease_due(now=now)
        assert pending.attempts == attempt - 1
        outbox.failed(pending, "HTTP 503", now=now)
        assert outbox.lease_due(now=now + backoff(attempt) - 1) == []
        now += backoff(attempt)
    assert outbox.lease_due(now=now + 10**6) == []
    assert outbox.rows()[0][1:] == ("h1", MAX_ATTEMPTS, None, now - backoff(MAX_ATTEMPTS), "HTTP 503")


def test_a_delivered_row_is_never_sent_again(outbox: Outbox) -> None:
    outbox.add([row()], seq=1, now=NOW)
    (pending,) = outbox.lease_due(now=NOW)
    outbox.delivered(pending.id, now=NOW)
    assert outbox.lease_due(now=NOW + 10**6) == []
