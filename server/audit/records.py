"""What one audit record is: an event, sealed into the hash chain as one canonical JSON line.

A record is the event the guard chain appended plus four keys the log adds:

    seq     1, 2, 3 ... with no gaps, across every rotated file
    ts      UTC time the record was sealed (ISO 8601, microseconds)
    prev    `hash` of the record before it (GENESIS for seq 1)
    hash    SHA-256 of the canonical JSON of the record without `hash`

Canonical JSON is sorted keys, no whitespace, ASCII-only (`\\n`, `\\u001b`, quotes and braces in
an argument are escaped inside their string), so one record is always exactly one line and nothing
an agent sends can end a line, forge a record or reach a terminal as a control sequence.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from deskgate.server.errors import AuditUnavailable

GENESIS = "0" * 64
KINDS = frozenset({"call", "intent", "outcome", "admin", "system"})
SEALED_KEYS = ("seq", "ts", "prev", "hash")
MAX_RECORD_BYTES = 1024 * 1024  # a whole record; arguments are already capped far below this
_PLACEHOLDER = "\x00"  # stands in for `hash` while sealing; encodes as \u0000
_PLACEHOLDER_MEMBER = b'"hash":"\\u0000"'


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def digest(record: dict[str, Any]) -> str:
    """The chain hash of a record: SHA-256 over its canonical JSON without `hash`."""
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def checked_shape(event: Any) -> dict[str, Any]:
    """`event` if it is an object with a known kind and none of the keys the log sets; else
    `AuditUnavailable`. Its values are checked when it is encoded (`checked_event` or `seal`)."""
    if not isinstance(event, dict):
        raise AuditUnavailable("an audit event must be a JSON object", code="audit_event_invalid")
    if event.get("kind") not in KINDS:
        raise AuditUnavailable("an audit event needs a known kind", code="audit_event_invalid")
    if reserved := sorted(set(SEALED_KEYS) & event.keys()):
        raise AuditUnavailable(f"the log sets {', '.join(reserved)} itself", code="audit_event_invalid")
    return event


def checked_event(event: Any) -> dict[str, Any]:
    """A private, JSON-only copy of `event`, or `AuditUnavailable` saying why it cannot be recorded.

    The copy is what gets sealed, so a caller mutating its dict afterwards changes nothing.
    """
    raw = _encoded(checked_shape(event))
    if len(raw) > MAX_RECORD_BYTES - 512:
        raise AuditUnavailable("an audit event is too large", code="audit_event_invalid")
    copy: dict[str, Any] = json.loads(raw)
    return copy


def _encoded(value: dict[str, Any]) -> bytes:
    try:
        return canonical(value)
    except (TypeError, ValueError) as exc:
        # TypeError: not JSON (bytes, Decimal, a set, a non-str key); ValueError: NaN or a cycle.
        raise AuditUnavailable("an audit event must contain only JSON values", code="audit_event_invalid") from exc


def seal(event: dict[str, Any], seq: int, prev: str, now: float) -> tuple[dict[str, Any], bytes]:
    """Link `event` after `prev`; returns the record and its line (with the newline).

    One JSON encoding, not two: the record is encoded with a placeholder `hash`; without that member
    the line is the hashed body, and with the digest in its place it is the line - byte for byte
    `canonical(record)`, as sorting depends on keys only. A value elsewhere in the record that encodes
    to the same member makes the placeholder ambiguous: then the record is encoded twice, as before.

    Raises `AuditUnavailable` for a record that is not JSON or too large: an event sealed without
    `checked_event` (written at once on its caller's thread) is checked here.
    """
    record = {**event, "seq": seq, "ts": timestamp(now), "prev": prev, "hash": _PLACEHOLDER}
    template = _encoded(record)
    if len(template) > MAX_RECORD_BYTES:
        raise AuditUnavailable("an audit event is too large", code="audit_event_invalid")
    at = template.find(_PLACEHOLDER_MEMBER)
    if template.find(_PLACEHOLDER_MEMBER, at + 1) >= 0:
        record["hash"] = digest(record)
        return record, canonical(record) + b"\n"
    # The member is never last ("prev", "seq" and "ts" sort after "hash"): drop its trailing comma too.
    before, after = template[:at], template[at + len(_PLACEHOLDER_MEMBER) + 1:]
    record["hash"] = hashlib.sha256(before + after).hexdigest()
    return record, before + b'"hash":"' + record["hash"].encode() + b'",' + after + b"\n"


class BadRecord(Exception):
    """A line that is not a well-formed, self-consistent record (internal to the audit package)."""


def parse_line(line: bytes) -> dict[str, Any]:
    """Parse one stored line (without its newline) and check it against its own hash."""
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise BadRecord("not valid JSON") from exc
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    seq, prev, hash_ = record.get("seq"), record.get("prev"), record.get("hash")
    if type(seq) is not int or seq < 1 or not isinstance(prev, str) or not isinstance(hash_, str):
        raise BadRecord("missing or malformed seq, prev or hash")
    if canonical(record) != line:
        raise BadRecord("not in canonical form (edited by hand?)")
    if digest(record) != hash_:
        raise BadRecord("content does not match its hash (modified)")
    return record
