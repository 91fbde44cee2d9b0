"""The console's Audit page: search the chain, verify it, export what was found.

Search reads every record once (files or the PostgreSQL table) and keeps the newest matches; a
record matches a customer or ticket when its (redacted) arguments name that id, or its session was
bound to it. Verification is `deskgate audit verify`'s, and a failure is recorded the same way
(`audit.verify_failed`, which the webhooks announce).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from deskgate.server.audit.keys import load_public_key
from deskgate.server.audit.postgres import table_records, verify_postgres
from deskgate.server.audit.reader import Filter, iter_records, record_time
from deskgate.server.audit.verify import Report, verify
from deskgate.server.errors import InvalidArguments
from deskgate.server.runtime import Runtime
from deskgate.server.settings import database_url

SHOWN = 200


@dataclass(frozen=True, slots=True)
class Search:
    sid: str = ""
    sub: str = ""
    customer: str = ""
    ticket: str = ""
    tool: str = ""
    status: str = ""
    since: str = ""
    until: str = ""

    @classmethod
    def of(cls, query: Any) -> Search:
        values = {f.name: str(query.get(f.name, "")).strip()[:128] for f in fields(cls)}
        return cls(**values)

    def params(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def matcher(self) -> Filter:
        return Filter(tool=self.tool or None, sub=self.sub or None, status=self.status or None,
                      since=_time(self.since), until=_time(self.until))


def _time(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidArguments("a time is like 2026-12-08 or 2026-12-08T14:30", code="invalid_time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def records(runtime: Runtime) -> Iterator[dict[str, Any]]:
    if database_url():
        return table_records(runtime.state_db)
    return iter_records(runtime.paths.audit_dir)


def search(runtime: Runtime, query: Search, *, limit: int | None = SHOWN) -> list[dict[str, Any]]:
    """Matching records, newest first (`limit` None: all of them, for an export)."""
    keep = query.matcher()
    bound = _bound_sessions(runtime, query) if query.customer or query.ticket else None
    found = []
    for record in records(runtime):
        if not keep(record) or (query.sid and record.get("sid") != query.sid):
            continue
        if bound is not None and not _about(record, query, bound):
            continue
        found.append(record)
    found.reverse()
    return found if limit is None else found[:limit]


def _bound_sessions(runtime: Runtime, query: Search) -> set[str]:
    tokens = runtime.state.tokens.list_sync(include_expired=True, now=0)
    return {t.sid for t in tokens if (query.customer and t.customer == query.customer)
            or (query.ticket and t.ticket == query.ticket)}


def _about(record: dict[str, Any], query: Search, bound: set[str]) -> bool:
    args = part(record, "args")
    if record.get("sid") in bound:
        return True
    return bool((query.customer and args.get("customer_id") == query.customer)
                or (query.ticket and args.get("ticket_id") == query.ticket))


def part(record: dict[str, Any], key: str) -> dict[str, Any]:
    """A record's nested object (`decision`, `args`, `money`), or an empty one when absent or malformed."""
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def check(runtime: Runtime) -> Report:
    public = load_public_key(runtime.paths.audit_dir)
    if database_url():
        return verify_postgres(runtime.state_db, public)
    return verify(runtime.paths.audit_dir, public)


def when_of(record: dict[str, Any]) -> str:
    moment = record_time(record)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""
