"""Scans the text a model reads about a tool for instructions aimed at the model ("tool poisoning").

A tool's title, description and every string of its schemas reach the model verbatim, so they are
where a poisoned tool hides orders: an `<IMPORTANT>` block, "ignore previous instructions", "do not
tell the user", a request to read keys or files, a URL to send data to, invisible or bidirectional
control characters that hide text from a human reviewer, encoded blobs, or sheer length.

The scanner flags; it does not block. Flags go into the manifest (so adding one changes the hash
and the diff reports it) and into the review document. Phrase rules run on a normalised copy
(NFKC, invisible characters removed, case-folded, whitespace collapsed) so that inserting a
zero-width space or a fullwidth letter does not hide a phrase; character rules run on the raw text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Longer than any honest text of its kind in the catalogue, short enough to read in a review.
MAX_TITLE = 80
MAX_DESCRIPTION = 1200
MAX_SCHEMA_TEXT = 400
_EXCERPT = 80

# Schema keys whose string values are machine syntax, not prose for the model.
_SYNTAX_KEYS = frozenset({"$ref", "type", "format", "pattern", "x-pii"})

_PHRASES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("markup_tag", re.compile(r"<\s*/?\s*[a-z][a-z0-9_:-]*(\s[^<>]*)?/?>|<\|[a-z_]+\|>|\[/?inst\]|<<\s*/?sys\s*>>")),
    ("override_instructions", re.compile(
        r"\b(ignore|disregard|forget|override|bypass)\b.{0,40}?\b(instructions?|prompts?|rules|guidelines|"
        r"messages?|context)\b|\b(new|updated|real|hidden) instructions\b|\bsystem prompt\b")),
    ("conceal_from_user", re.compile(
        r"\b(do not|don't|dont|never|without)\b.{0,25}?\b(tell|telling|inform|informing|mention|mentioning|"
        r"reveal|revealing|alert|alerting|notify|notifying|let)\b.{0,25}?\b(user|customer|human|"
        r"operator|agent)s?\b|\b(keep|kept) (this|it|these)\b.{0,15}?\b(secret|hidden|confidential|private)\b")),
    ("sensitive_access", re.compile(
        r"\b(read|open|cat|load|send|upload|include|attach|add|pass|paste|insert|share|print|output|reveal|"
        r"exfiltrate|leak|copy|post|forward)\b"
        r".{0,40}?(\bfiles?\b|\bssh\b|\bid_rsa\b|\.env\b|\benv(ironment)? var(iable)?s?\b|\bapi[ _-]?keys?\b|"
        r"\bprivate keys?\b|\bsecret keys?\b|\bcredentials?\b|\bmcp\.json\b|\bcookies?\b|\bsigning keys?\b)"
        r"|~/|/etc/|/home/|\.ssh/|\.aws/|\bos\.environ\b|\bprocess\.env\b|\bgetenv\b")),
    ("url", re.compile(r"\b(https?|s?ftp|wss?)://|\bfile:/|\bdata:[a-z]+/[a-z0-9.+-]+[;,]|\bjavascript:|"
                       r"\bmailto:\S+@|\bwww\.[a-z0-9-]+\.")),
)
_BLOB = re.compile(r"[A-Za-z0-9+/_=-]{40,}")


@dataclass(frozen=True, order=True, slots=True)
class Flag:
    where: str    # "description", "title" or a path inside a schema, e.g. input_schema.properties.x.description
    rule: str
    excerpt: str  # what matched, with invisible characters spelled out as U+XXXX


def scan_tool(title: str, description: str, input_schema: Any, output_schema: Any,
              policy: Any = None) -> list[Flag]:
    """Every flag for one tool, sorted and without duplicates.

    The tool's policy entry is scanned too: its reasons (gate reasons, limit messages) reach the model
    inside every denial, so they are as much text aimed at the model as the description.
    """
    flags = set(scan_text(title, "title", MAX_TITLE))
    flags.update(scan_text(description, "description", MAX_DESCRIPTION))
    for root, node in (("input_schema", input_schema), ("output_schema", output_schema), ("policy", policy)):
        for where, text in _schema_texts(node, root):
            flags.update(scan_text(text, where, MAX_SCHEMA_TEXT))
    return sorted(flags)


def scan_text(text: str, where: str, max_length: int) -> list[Flag]:
    return list(_scan_text(text, where, max_length))


@lru_cache(maxsize=8192)
def _scan_text(text: str, where: str, max_length: int) -> tuple[Flag, ...]:
    """A pure function of its arguments, cached: every runtime that opens scans the same catalogue texts."""
    flags: list[Flag] = []
    hidden = sorted({ch for ch in text if _invisible(ch)})
    if hidden:
        flags.append(Flag(where, "invisible_character", ", ".join(f"U+{ord(ch):04X}" for ch in hidden)))
    normal = normalise(text)
    for rule, pattern in _PHRASES:
        match = pattern.search(normal)
        if match:
            flags.append(Flag(where, rule, _excerpt(match.group(0))))
    for match in _BLOB.finditer(text):
        if _looks_encoded(match.group(0)):
            flags.append(Flag(where, "encoded_blob", _excerpt(match.group(0))))
            break
    if len(text) > max_length:
        flags.append(Flag(where, "excessive_length", f"{len(text)} characters (at most {max_length})"))
    return tuple(flags)


def normalise(text: str) -> str:
    """What a phrase rule reads: compatibility-folded, invisible characters dropped, one space per gap."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKC", text) if not _invisible(ch))
    return " ".join(folded.casefold().split())


def _invisible(ch: str) -> bool:
    """Format (zero-width, bidi, tag characters), control, private-use and unassigned code points."""
    return ch not in "\t\n\r" and unicodedata.category(ch) in {"Cf", "Cc", "Co", "Cn", "Cs"}


def _looks_encoded(run: str) -> bool:
    """A long token mixing cases and digits (base64) or made only of hex digits; not snake_case words."""
    if re.fullmatch(r"[0-9a-fA-F]+", run):
        return True
    return any(c.isdigit() for c in run) and any(c.isupper() for c in run) and any(c.islower() for c in run)


def visible(text: str) -> str:
    """`text` with every invisible character spelled out as U+XXXX, so a reviewer sees it."""
    return "".join(f"U+{ord(ch):04X}" if _invisible(ch) else ch for ch in text)


def _excerpt(text: str) -> str:
    shown = visible(text)
    return shown if len(shown) <= _EXCERPT else shown[: _EXCERPT - 1] + "…"


def _schema_texts(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a schema a model reads (descriptions, titles, enums, defaults, property names)."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _schema_texts(item, f"{where}[{i}]")
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _SYNTAX_KEYS:
                continue
            if key == "properties" and isinstance(value, dict):
                for name in value:
                    yield f"{where}.properties", name
            yield from _schema_texts(value, f"{where}.{key}")
