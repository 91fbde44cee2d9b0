"""Evasions applied to labelled values: the mutation test (`tests/redaction/test_mutations.py`) and its figures.

Each mutation rewrites ONE labelled value of a corpus record and keeps the label on the rewritten span:

    separators  the value's digit/letter groups rejoined by other separators, one drawn per gap: tab, `|`,
                `:`, `;`, `*`, `~`, `_`, `/`, runs of several, a line break (card, IBAN, phone, SSN)
    invisible   one to three invisible characters inserted inside the value: variation selectors,
                combining marks, Hangul fillers, braille blank, combining grapheme joiner, zero-width
                characters, a tag space (every class)
    glued       a label or symbol glued to the value with no space (`card4111…`, `no.4111…`, `SSN#…`,
                `IBAN:…`), sometimes a word glued after it too

`mutated(record, span_index, kind, rng)` is one mutation; `every_mutation(records, seed)` applies each
kind to every labelled value of `records` (what `bench.redaction` scores).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

SEPARATORS = ("\t", "|", ":", ";", "*", "~", "_", "/", "\n", "\r\n", " | ", " ; ", "--", "..", " : ", "**", "\t\t",
              " ~ ", " / ", ". ", " \n", "-\n")
INVISIBLE = ("\ufe0f", "\ufe0e", "\ufe01", "\U000e0100", "\u0301", "\u0300", "\u0308", "\u0336", "\u115f", "\u1160",
             "\u3164", "\uffa0", "\u2800", "\u034f", "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\U000e0020",
             "\u180e", "\u2061")
GLUE_BEFORE = {
    "card": ("card", "no.", "cc#", "Card:", "visa", "CC-", "nr:"),
    "phone": ("tel", "tel.", "ph:", "mob#", "Tel:", "call:", "phone"),
    "iban": ("IBAN:", "iban#", "IBAN", "acct:", "iban"),
    "ssn": ("ssn", "SSN#", "ssn:", "SSN"),
    "nino": ("NI:", "nino#", "NINO:"),
    "email": ("email:", "mail:", "<", "mailto:", "E-Mail:"),
    "ip": ("ip:", "IP=", "from:", "ip#"),
    "secret": ("token:", "key=", "[", '"', "secret:"),
}
GLUE_AFTER = {"card": ("", "", "exp", ".", "/cvv"), "phone": ("", "", "ext", "."), "ssn": ("", "", "."),
              "iban": ("", "", ".", ")"), "nino": ("", "."), "email": ("", ">", "."), "ip": ("", "."),
              "secret": ("", '"', "]")}
KINDS = ("separators", "invisible", "glued")
SEPARATED = frozenset({"card", "iban", "phone", "ssn"})  # the classes written in digit groups


def _groups(value: str) -> list[str]:
    groups, current = [], ""
    for ch in value:
        if ch.isalnum():
            current += ch
        elif current:
            groups.append(current)
            current = ""
    if current:
        groups.append(current)
    if len(groups) == 1 and len(groups[0]) >= 9:  # written without separators: cut it where people would
        run = groups[0]
        sizes = (3, 2, 4) if len(run) == 9 else (4,) * 8
        groups, pos = [], 0
        for size in sizes:
            if pos < len(run):
                groups.append(run[pos : pos + size])
                pos += size
        if pos < len(run):
            groups.append(run[pos:])
    return groups


def rewrite(label: str, value: str, kind: str, rng: random.Random) -> tuple[str, str, str]:
    """`value` (of class `label`) rewritten by the mutation `kind`: (glued before, the value, glued after)."""
    if kind == "separators":
        groups = _groups(value)
        out = value[: len(value) - len(value.lstrip("+\uff0b"))]  # a leading plus stays
        out += groups[0]
        for group in groups[1:]:
            out += rng.choice(SEPARATORS) + group
        return "", out, ""
    if kind == "invisible":
        chars = list(value)
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randint(1, len(chars) - 1), rng.choice(INVISIBLE))
        return "", "".join(chars), ""
    return rng.choice(GLUE_BEFORE[label]), value, rng.choice(GLUE_AFTER[label])


def applies(label: str, kind: str) -> bool:
    return label in GLUE_BEFORE and (kind != "separators" or label in SEPARATED)


def mutated(record: dict[str, Any], index: int, kind: str, rng: random.Random) -> dict[str, Any]:
    """`record` with its `index`-th span rewritten by `kind`; the spans after it shifted."""
    spans = record["spans"]
    span = spans[index]
    text = record["text"]
    before, value, after = rewrite(span["label"], text[span["start"] : span["end"]], kind, rng)
    rewritten = before + value + after
    new_start = span["start"] + len(before)  # a glued label is not part of the value's span
    new_end = new_start + len(value)
    shift = len(rewritten) - (span["end"] - span["start"])
    new_spans = []
    for i, s in enumerate(spans):
        if i == index:
            new_spans.append({"label": s["label"], "start": new_start, "end": new_end})
        elif s["start"] >= span["end"]:
            new_spans.append({**s, "start": s["start"] + shift, "end": s["end"] + shift})
        else:
            new_spans.append(s)
    return {**record, "subset": f"mutation:{kind}", "text": text[: span["start"]] + rewritten + text[span["end"] :],
            "spans": new_spans, "mutated": index}


def every_mutation(records: list[dict[str, Any]], seed: int = 11) -> Iterator[dict[str, Any]]:
    """Each kind applied to every labelled value of the records that are not negatives (one at a time)."""
    rng = random.Random(seed)
    for record in records:
        if record["subset"] in ("negative", "prose", "extra_negative"):
            continue
        for index, span in enumerate(record["spans"]):
            for kind in KINDS:
                if applies(span["label"], kind):
                    yield mutated(record, index, kind, rng)
