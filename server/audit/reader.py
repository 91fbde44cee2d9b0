"""Reading the log for people and SIEMs: iterate, follow, filter, and print safely.

Reading is not verifying (`verify` is): these helpers parse each complete line and skip a torn
tail, so `tail`, `export` and `report` work on a log that is being written. Anything printed to a
terminal goes through `safe_text`: the log keeps an agent's control characters as escaped data,
and they must not turn back into escape sequences on the way out.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deskgate.server.audit.records import canonical, parse_ts
from deskgate.server.audit.segments import segment_name, segments

# Control, format (bidi overrides, zero-width), separators, surrogates, private use, unassigned.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def safe_text(text: str) -> str:
    """Printable on any terminal: backslashes doubled, anything invisible or active escaped."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif unicodedata.category(ch) in _UNSAFE:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Filter:
    tool: str | None = None
    sub: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __call__(self, record: dict[str, Any]) -> bool:
        if self.tool is not None and record.get("tool") != self.tool:
            return False
        if self.sub is not None and record.get("sub") != self.sub:
            return False
        if self.status is not None and record.get("status") != self.status:
            return False
        if self.since is None and self.until is None:
            return True
        ts = record_time(record)
        if ts is None:
            return False
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)


def record_time(record: dict[str, Any]) -> datetime | None:
    try:
        return parse_ts(record["ts"])
    except (KeyError, TypeError, ValueError):
        return None


def _records_in(path: Path, offset: int = 0) -> Iterator[tuple[dict[str, Any], int]]:
    """(record, offset after it) for each complete, parseable line from `offset`."""
    with path.open("rb") as f:
        f.seek(offset)
        for raw in f:
            if not raw.endswith(b"\n"):
                return  # a torn or still-being-written tail
            offset += len(raw)
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # not ours to judge here: `verify` names it
            if isinstance(record, dict):
                yield record, offset


def iter_records(directory: Path) -> Iterator[dict[str, Any]]:
    for _, path in segments(directory):
        for record, _ in _records_in(path):
            yield record


def last_records(directory: Path, count: int, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The last `count` records that pass `keep` (reads newest segments first)."""
    found: list[dict[str, Any]] = []
    for _, path in reversed(segments(directory)):
        matching = [r for r, _ in _records_in(path) if keep(r)]
        found = matching[-(count - len(found)):] + found if count > len(found) else found
        if len(found) >= count:
            break
    return found


def follow(directory: Path, wait: Callable[[], None], *, after_seq: int = 0) -> Iterator[dict[str, Any]]:
    """Yield each record with seq > `after_seq` as it is appended, across rotations.

    `wait` is called whenever there is nothing new (the CLI sleeps; tests append or stop).
    """
    found = segments(directory)
    index, offset = (found[-1][0] if found else 1), 0
    while True:
        progressed = False
        path = directory / segment_name(index)
        if path.exists():
            for record, end in _records_in(path, offset):
                progressed, offset = True, end
                if isinstance(record.get("seq"), int) and record["seq"] > after_seq:
                    yield record
        if (directory / segment_name(index + 1)).exists():
            index, offset = index + 1, 0
            continue
        if not progressed:
            wait()


def export_jsonl(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Records in their stored canonical form, so a SIEM can re-check every hash."""
    for record in records:
        yield canonical(record).decode("ascii")


CSV_COLUMNS = (
    "seq", "ts", "kind", "request_id", "sub", "sid", "jti", "tool", "decision", "status", "code", "reason",
    "policy_version", "manifest_hash", "args_digest", "result_digest", "latency_ms", "money_amount",
    "money_currency", "args", "prev", "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_row(record: dict[str, Any]) -> list[str]:
    """One CSV row; a text cell a spreadsheet would run as a formula is prefixed with a quote."""
    raw_money = record.get("money")
    money: dict[str, Any] = raw_money if isinstance(raw_money, dict) else {}
    values: dict[str, Any] = {
        **record,
        "money_amount": money.get("amount"),
        "money_currency": money.get("currency"),
        "args": json.dumps(record["args"], sort_keys=True, ensure_ascii=True) if "args" in record else None,
    }
    row = []
    for column in CSV_COLUMNS:
        value = values.get(column)
        if value is None:
            row.append("")
        elif isinstance(value, str):
            row.append("'" + value if value.startswith(_FORMULA_START) and not _is_number(value) else value)
        else:
            row.append(json.dumps(value, ensure_ascii=True))
    return row


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def tail_line(record: dict[str, Any]) -> str:
    """One human line per record: seq, time, kind, tool, status, who, code, reason (each made safe)."""
    parts = [str(record.get(key, "?")) for key in ("seq", "ts", "kind")]
    for key in ("tool", "status", "sub", "code", "event", "action"):
        if record.get(key) is not None:
            parts.append(f"{key}={record[key]}")
    if record.get("reason"):
        parts.append(f"reason={record['reason']!s}")
    if isinstance(record.get("latency_ms"), int | float):
        parts.append(f"{record['latency_ms']}ms")
    return " ".join(safe_text(part) for part in parts)
