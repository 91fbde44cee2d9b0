"""The detectors' view of a text: evasions folded away, every character traceable to the original.

Folding undoes what people (and attackers) do to slip a value past a pattern:

- NFKC, character by character: full-width digits and at signs, no-break and thin spaces, ligatures;
- any decimal digit of any script (Arabic-Indic, Devanagari, ...) becomes its ASCII digit;
- the Unicode dashes and minus signs become `-`;
- format characters (category Cf: zero-width space/joiners, soft hyphen, bidi controls, BOM) vanish.

`Folded.span(start, end)` maps a span of the folded text back to the smallest span of the original
that holds it, so a redaction replaces exactly the characters that made up the value and leaves
the rest of the original byte-for-byte intact. ASCII text, the common case, is its own fold.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if unicodedata.category(ch) == "Cf":
        return ""
    if ch in _DASHES:
        return "-"
    digit = unicodedata.decimal(ch, None)
    if digit is not None:
        return str(digit)
    return unicodedata.normalize("NFKC", ch)


@dataclass(frozen=True, slots=True)
class Folded:
    text: str
    origin: tuple[int, ...] | None  # origin[i] = index in the original of folded char i; None: identity

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span covering folded characters [start, end) (end > start)."""
        if self.origin is None:
            return start, end
        return self.origin[start], self.origin[end - 1] + 1


# Non-ASCII characters of the common blocks (Latin, Greek, Cyrillic, punctuation, currency) that
# fold to themselves: text made only of these and ASCII (accented prose) is its own fold.
_STABLE = "".join(
    chr(i)
    for low, high in ((0x80, 0x250), (0x370, 0x530), (0x2000, 0x2070), (0x20A0, 0x20C0))
    for i in range(low, high)
    if _fold_char(chr(i)) == chr(i)
)
_FOLDS = re.compile(f"[^\\x00-\\x7f{re.escape(_STABLE)}]")


def fold(text: str) -> Folded:
    if text.isascii() or not _FOLDS.search(text):
        return Folded(text, None)  # nothing to fold, offsets unchanged
    parts: list[str] = []
    origin: list[int] = []
    pos = 0
    for match in _NON_ASCII.finditer(text):
        start, end = match.span()
        parts.append(text[pos:start])
        origin.extend(range(pos, start))
        for index in range(start, end):
            folded = _fold_char(text[index])
            parts.append(folded)
            origin.extend([index] * len(folded))
        pos = end
    parts.append(text[pos:])
    origin.extend(range(pos, len(text)))
    return Folded("".join(parts), tuple(origin))
