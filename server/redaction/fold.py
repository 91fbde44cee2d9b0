"""The detectors' view of a text: evasions folded away, every character traceable to the original.

Folding undoes what people (and attackers) do to slip a value past a pattern:

- NFKC, character by character: full-width digits and at signs, no-break and thin spaces, ligatures;
- any decimal digit of any script (Arabic-Indic, Devanagari, ...) becomes its ASCII digit;
- the Unicode dashes and minus signs become `-`;
- whatever is invisible vanishes: every default-ignorable code point (format characters such as
  zero-width space/joiners, soft hyphen, bidi controls, BOM, tags; variation selectors; Hangul
  fillers; the combining grapheme joiner), every combining mark (categories Mn, Mc, Me), and the
  blank braille pattern, which is drawn as a space but is a symbol;
- Latin look-alikes from Cyrillic and Greek (Cyrillic U+0435 and U+043E, Greek U+03BF, ...) become the
  Latin letter they imitate, so `example.com` spelled with a Cyrillic `e` is seen as `example.com`.

`Folded.span(start, end)` maps a span of the folded text back to the smallest span of the original
that holds it, so a redaction replaces exactly the characters that made up the value and leaves
the rest of the original byte-for-byte intact. ASCII text, the common case, is its own fold.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
_DASHES = frozenset("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d")
# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt) beyond categories Cf, Mn, Mc and Me,
# which vanish whole: the Hangul fillers, the Khmer inherent vowels, the reserved ranges. And U+2800.
_INVISIBLE = frozenset("\u115f\u1160\u17b4\u17b5\u3164\uffa0\u2800")
_INVISIBLE_RANGES = ((0x2065, 0x2065), (0xFFF0, 0xFFF8), (0xE0000, 0xE0FFF), (0x1BCA0, 0x1BCA3))
_VANISHING_CATEGORIES = frozenset({"Cf", "Mn", "Mc", "Me"})
# Cyrillic and Greek letters drawn like a Latin one (Unicode confusables, the unambiguous ones).
_LOOK_ALIKES = dict(zip(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0458\u0455\u0501\u04bb\u051b\u051d"
    "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0423\u0425\u0406\u0408\u0405"
    "\u03bf\u03b1\u03bd\u03c1\u03c5\u03b9\u03ba"
    "\u0391\u0392\u0395\u0396\u0397\u0399\u039a\u039c\u039d\u039f\u03a1\u03a4\u03a5\u03a7",
    "aeopcyxijsdhqw" "ABEKMHOPCTYXIJS" "oavpuik" "ABEZHIKMNOPTYX",
    strict=True,
))


def invisible(ch: str) -> bool:
    """Whether `ch` is drawn as nothing (or as a blank inside a word): it vanishes from the fold."""
    if ch in _INVISIBLE or unicodedata.category(ch) in _VANISHING_CATEGORIES:
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _INVISIBLE_RANGES)


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    if invisible(ch):
        return ""
    if ch in _LOOK_ALIKES:
        return _LOOK_ALIKES[ch]
    if ch in _DASHES:
        return "-"
    digit = unicodedata.decimal(ch, None)
    if digit is not None:
        return str(digit)
    return unicodedata.normalize("NFKC", ch)


class Resize(NamedTuple):
    """Where one original character folded to other than one character (none, or several)."""

    at: int  # its first folded character's index (or where it would be, when it vanished)
    length: int  # how many folded characters it became
    origin: int  # its index in the original


@dataclass(frozen=True, slots=True)
class Folded:
    text: str
    # Every resize, in order; None when there is none (offsets are then the original's). Between two
    # resizes, folded and original offsets differ by a constant, so this is all a span needs.
    resizes: tuple[Resize, ...] | None
    _ats: tuple[int, ...] = ()  # each resize's `at`, for bisect

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original span covering folded characters [start, end) (end > start)."""
        if self.resizes is None:
            return start, end
        return self._origin(start), self._origin(end - 1) + 1

    def _origin(self, index: int) -> int:
        j = bisect.bisect_right(self._ats, index) - 1
        if j < 0:
            return index
        at, length, origin = self.resizes[j]
        if index < at + length:
            return origin  # one of the characters the original one expanded to
        return index - (at + length) + origin + 1


# The fold of every Basic Multilingual Plane character that changes, worked out once at import
# (~25 ms): `str.translate` then folds a text in C instead of character by character in Python.
# Characters above the BMP (mathematical digits, tag characters) are rare and folded on demand.
_BMP_FOLDS = {
    i: folded
    for i in range(0x80, 0x10000)
    if not 0xD800 <= i < 0xE000 and (folded := _fold_char.__wrapped__(chr(i))) != chr(i)
}


class _FoldTable(dict[int, str]):
    def __missing__(self, codepoint: int) -> str:
        if codepoint < 0x10000:
            raise LookupError  # str.translate keeps the character as it is
        return _fold_char(chr(codepoint))


_TABLE = _FoldTable(_BMP_FOLDS)

# Non-ASCII characters of the common blocks (Latin, Greek, Cyrillic, punctuation, currency) that
# fold to themselves: text made only of these and ASCII (accented prose) is its own fold.
_STABLE = "".join(
    chr(i)
    for low, high in ((0x80, 0x250), (0x370, 0x530), (0x2000, 0x2070), (0x20A0, 0x20C0))
    for i in range(low, high)
    if i not in _BMP_FOLDS
)
_FOLDS = re.compile(f"[^\\x00-\\x7f{re.escape(_STABLE)}]")
# A text all of ASCII and `_STABLE`: what `_FOLDS.search` finds nothing in. Matched as one run, which
# `re` reads in one loop (about twice as fast as the search, which starts over at every character).
_ITS_OWN_FOLD = re.compile(f"[\\x00-\\x7f{re.escape(_STABLE)}]*")
# Characters whose fold is not exactly one character (vanishing format characters, expansions):
# only where these are does the folded text's offset drift from the original's.
_RESIZES = re.compile(
    "[" + "".join(re.escape(chr(i)) for i, f in _BMP_FOLDS.items() if len(f) != 1) + "\\U00010000-\\U0010ffff]"
)


def _translate(match: re.Match[str]) -> str:
    return match.group().translate(_TABLE)


def its_own_fold(text: str) -> bool:
    return _ITS_OWN_FOLD.fullmatch(text) is not None


def fold(text: str) -> Folded:
    if text.isascii() or its_own_fold(text):
        return Folded(text, None)  # nothing to fold, offsets unchanged
    folded = _NON_ASCII.sub(_translate, text)
    if _RESIZES.search(text) is None:
        return Folded(folded, None)  # every character folded to one: offsets unchanged
    resizes: list[Resize] = []
    drift = 0  # folded index minus original index, so far
    for match in _RESIZES.finditer(text):
        index = match.start()
        length = len(_fold_char(text[index]))
        resizes.append(Resize(index + drift, length, index))
        drift += length - 1
    return Folded(folded, tuple(resizes), tuple(r.at for r in resizes))
