"""`deskgate audit verify`: prove the chain is whole, or name the first place it is not.

The protocol, in the order the code checks it:
    1. The public key: given explicitly, or `audit.pub` (the first key, never rewritten by a
       rotation), or the audit key's. A verifier that cannot check signatures does not pass.
    2. Every checkpoint (the local `checkpoints.jsonl`, and an external anchor copy if given) is
       well-formed and signed by that key - or, after a handover checkpoint signed by the key of
       its time, by the key it names; two signed checkpoints never disagree about a seq.
    3. Segments are numbered 1..n without a gap (a deleted rotated file is a gap).
    4. Every line of every segment, in order: ends with a newline (else torn); is canonical JSON
       whose `hash` matches its content (else modified); has seq = previous + 1 (else deleted,
       reordered or duplicated); links `prev` to the previous record's hash (else replaced).
    5. At each checkpointed seq, the record's hash is the signed head (else the records up to it
       were rewritten: hashes recomputed without the key).
    6. No checkpoint is beyond the end of the chain (else the log was truncated).
The chain scan stops at its first problem: everything after it is unproven.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from deskgate.server.audit.checkpoints import checkpoint_problem, handed_to, read_checkpoints
from deskgate.server.audit.keys import key_id
from deskgate.server.audit.records import GENESIS, BadRecord, parse_line
from deskgate.server.audit.segments import CHECKPOINTS_NAME, segment_name, segments


@dataclass(frozen=True, slots=True)
class Problem:
    where: str   # a file and line, e.g. "audit-000002.jsonl:14 (seq 1013)"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(slots=True)
class Report:
    kid: str
    records: int = 0
    files: int = 0
    last_seq: int = 0
    head: str = GENESIS
    checkpoints: int = 0          # valid checkpoints checked against the chain
    rotations: int = 0            # valid key handovers followed
    signed_seq: int = 0           # highest seq covered by a valid checkpoint
    torn: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unsigned(self) -> int:
        """Records after the last checkpoint: chained, but not yet signed."""
        return max(0, self.last_seq - self.signed_seq)


@dataclass(slots=True)
class _Signed:
    head: str
    where: str


def total_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for _, path in segments(directory))


def verify(
    directory: Path,
    public: Ed25519PublicKey,
    *,
    anchor: Path | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Report:
    report = Report(kid=key_id(public))
    # Steps 1-2: checkpoints, from the local file and the anchor.
    local = directory / CHECKPOINTS_NAME
    sources = [(CHECKPOINTS_NAME, read_checkpoints(local) if local.exists() else None)]
    signed = signed_heads(report, public, sources + anchor_source(anchor))
    # Steps 3-5: the chain.
    try:
        whole = scan(report, signed, _segment_lines(directory, report, on_progress))
    except _Gap as gap:
        report.problems.append(Problem(gap.name, "missing (a rotated file was deleted)"))
        whole = False
    check_truncation(report, signed, whole)
    report.torn = sorted(p.name for p in directory.glob("audit-*.jsonl.*.torn"))
    return report


Checkpoints = list[tuple[int, Any]]


def anchor_source(anchor: Path | None) -> list[tuple[str, Checkpoints | None]]:
    if anchor is None:
        return []
    return [(f"anchor {anchor.name}", read_checkpoints(anchor) if anchor.exists() else None)]


def signed_heads(
    report: Report, public: Ed25519PublicKey, sources: list[tuple[str, Checkpoints | None]]
) -> dict[int, _Signed]:
    """Steps 1-2: the valid checkpoints of every source, by seq; a missing source is a problem.

    Each source is read in order from the first key; a valid handover moves it to the next key,
    so a checkpoint signed by a retired key after its handover is a problem."""
    signed: dict[int, _Signed] = {}
    for label, checkpoints in sources:
        if checkpoints is None:
            report.problems.append(Problem(label, "missing (deleted?)"))
            continue
        current, handovers = public, 0
        for n, cp in checkpoints:
            if (nxt := _add_checkpoint(report, signed, current, cp, f"{label}:{n}")) is not None:
                current, handovers = nxt, handovers + 1
        report.rotations = max(report.rotations, handovers)
    return signed


def check_truncation(report: Report, signed: dict[int, _Signed], whole: bool) -> None:
    """Step 6, meaningful only for a chain read to its end."""
    if whole and signed and (top := max(signed)) > report.last_seq:
        report.problems.append(Problem(
            signed[top].where, f"signed head at seq {top} but the log ends at seq {report.last_seq}: truncated"
        ))


class _Gap(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


def _segment_lines(
    directory: Path, report: Report, on_progress: Callable[[int], None] | None
) -> Iterator[tuple[str, bytes]]:
    expected = 1
    for index, path in segments(directory):
        if index != expected:
            raise _Gap(segment_name(expected))
        expected += 1
        report.files += 1
        with path.open("rb") as f:
            for n, raw in enumerate(f, 1):
                if on_progress:
                    on_progress(len(raw))
                yield f"{path.name}:{n}", raw


def _add_checkpoint(
    report: Report, signed: dict[int, _Signed], public: Ed25519PublicKey, cp: Any, where: str
) -> Ed25519PublicKey | None:
    """Record one checkpoint; the key it hands over to, if it is a valid handover."""
    problem = "not valid JSON" if cp is None else checkpoint_problem(public, cp)
    if problem:
        report.problems.append(Problem(where, problem))
        return None
    seen = signed.get(cp["seq"])
    if seen is not None and seen.head != cp["head"]:
        report.problems.append(Problem(where, f"contradicts {seen.where} about seq {cp['seq']}"))
        return None
    signed.setdefault(cp["seq"], _Signed(cp["head"], where))
    return handed_to(cp)


def scan(report: Report, signed: dict[int, _Signed], lines: Iterable[tuple[str, bytes]]) -> bool:
    """Walk the chain, line by line; False when it stopped at a problem."""
    seq, head = 0, GENESIS
    last_good_checkpoint = 0
    for where, raw in lines:
        if not raw.endswith(b"\n"):
            report.problems.append(Problem(where, "torn last line (an interrupted write, or cut)"))
            return False
        try:
            record = parse_line(raw[:-1])
        except BadRecord as exc:
            report.problems.append(Problem(where, str(exc)))
            return False
        located = f"{where} (seq {record['seq']})"
        if problem := _link_problem(record, seq, head):
            report.problems.append(Problem(located, problem))
            return False
        seq, head = record["seq"], record["hash"]
        report.records, report.last_seq, report.head = report.records + 1, seq, head
        if (cp := signed.get(seq)) is not None:
            if cp.head != head:
                report.problems.append(Problem(located, (
                    f"does not match the signed head in {cp.where}: records after seq "
                    f"{last_good_checkpoint} up to {seq} were rewritten"
                )))
                return False
            report.checkpoints += 1
            last_good_checkpoint = report.signed_seq = seq
    return True


def _link_problem(record: dict[str, Any], seq: int, head: str) -> str | None:
    got = record["seq"]
    if got == seq and record["hash"] == head:
        return f"duplicate of the record before it (seq {seq})"
    if got <= seq:
        return f"out of order: seq {got} after seq {seq} (reordered or duplicated)"
    if got > seq + 1:
        return f"seq jumps from {seq} to {got}: record(s) {seq + 1}..{got - 1} deleted or moved"
    if record["prev"] != head:
        return f"does not link to the record before it (seq {seq}): that record was replaced or removed"
    return None
