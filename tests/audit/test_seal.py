"""Sealing encodes a record once, and the line is byte for byte the two-encoding canonical form."""

from __future__ import annotations

import random
import string
from typing import Any

from deskgate.server.audit.records import canonical, digest, parse_line, seal, timestamp

# Unicode of every width, control characters, quotes, backslashes and the placeholder's own text.
_ALPHABET = string.printable + "\x00\x01\x07\x1b\x7f\u0085\u2028\u2029\ufeff\ufffféü€漢字🙂\U0001f600\"\\"
_KEYS = ["args", "code", "decision", "hash", "hash\x00", "has", "hasi", "kind", "prev", "seq", "ts", "", "\x00",
         "zz", "Hash", "héllo", "🙂", "\\u0000", '"hash":"', "approval_id"]


def _two_encodings(event: dict[str, Any], seq: int, prev: str, now: float) -> tuple[dict[str, Any], bytes]:
    """The definition `seal` must match: hash over the record without `hash`, then the line with it."""
    record = {**event, "seq": seq, "ts": timestamp(now), "prev": prev}
    record["hash"] = digest(record)
    return record, canonical(record) + b"\n"


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(0, 24)))


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.randrange(10 if depth < 3 else 6)
    if roll == 0:
        return None
    if roll == 1:
        return rng.choice([True, False])
    if roll == 2:
        return rng.randrange(-(2**70), 2**70)
    if roll == 3:
        return rng.uniform(-1e6, 1e6)
    if roll == 4:
        return "\x00"  # what the placeholder `hash` holds while sealing
    if roll == 5:
        return _text(rng)
    if roll in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice([*_KEYS, _text(rng)]): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _event(rng: random.Random) -> dict[str, Any]:
    event = {rng.choice([*_KEYS, _text(rng)]): _value(rng, 0) for _ in range(rng.randrange(8))}
    for key in ("seq", "ts", "prev", "hash"):  # the log sets these; `checked_event` refuses them
        event.pop(key, None)
    return {**event, "kind": rng.choice(["call", "intent", "outcome", "admin", "system"])}


def test_sealing_matches_the_two_encoding_definition_on_many_random_records() -> None:
    """5,000 random records (unicode, control characters, nested `hash` members): identical record and line."""
    rng = random.Random(20261127)
    for n in range(5000):
        event = _event(rng)
        seq, prev, now = n + 1, "".join(rng.choice("0123456789abcdef") for _ in range(64)), rng.uniform(0, 4e9)
        assert seal(event, seq, prev, now) == _two_encodings(event, seq, prev, now), event


def test_a_value_that_encodes_like_the_placeholder_member_is_sealed_the_same_way() -> None:
    """A nested `"hash":"\\u0000"` (the placeholder's own bytes) cannot move the top-level hash."""
    event = {"kind": "call", "args": {"hash": "\x00", "deeper": [{"hash": "\x00"}]}, "a": {"hash": "\x00"}}
    record, line = seal(event, 7, "0" * 64, 1_800_000_000.5)
    assert (record, line) == _two_encodings(event, 7, "0" * 64, 1_800_000_000.5)
    assert line.count(b'"hash":"\\u0000"') == 3
    assert parse_line(line[:-1]) == record


def test_a_sealed_line_is_one_ascii_line_that_parses_back_to_its_record() -> None:
    """The sealed line keeps the log's invariants: ASCII, one line, self-consistent under `parse_line`."""
    rng = random.Random(9)
    for n in range(500):
        record, line = seal(_event(rng), n + 1, "f" * 64, 1.25)
        assert line.endswith(b"\n") and line.count(b"\n") == 1 and line.isascii()
        assert parse_line(line[:-1]) == record
