"""Detectors over free text: where the PII and secrets are, as spans of the original text.

`detect(text)` folds the text (`fold.py`: NFKC, any-script digits, dashes, format characters
removed), runs every detector over the folded view, keeps the strongest of overlapping hits and
maps each back to the original. Patterns are compiled once, at import.

Each detector finds candidates with a cheap pattern and then proves them: Luhn and issuer ranges
for cards, country length and mod-97 for IBANs, area/group/serial rules for SSNs, issued prefixes
for NINOs, address parsing for IPs, calling codes and numbering shapes for phones. That proof is
what keeps order numbers, tracking numbers, prices, dates and version strings unredacted.
"""

from __future__ import annotations

import bisect
import ipaddress
import operator
import re
import string
from collections.abc import Iterator
from typing import NamedTuple

from deskgate.server.redaction.checks import (
    IBAN_LENGTHS,
    card_valid,
    country_code,
    iban_valid,
    ipv4_valid,
    nino_prefix_valid,
    ssn_valid,
)
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.fold import fold


class Detection(NamedTuple):
    """One value found in a text. `value` is the canonical form (digits, lower-cased address).

    A named tuple: immutable and several times cheaper to build than a frozen dataclass, which
    matters on PII-dense text (one per value found)."""

    cls: PiiClass
    kind: str  # finer than the class: ssn/nino, ipv4/ipv6, aws_access_key, jwt, ...
    start: int  # span in the ORIGINAL text
    end: int
    value: str  # raw PII: never in a repr, a log or an error

    def __repr__(self) -> str:
        return f"Detection(cls={self.cls!r}, kind={self.kind!r}, start={self.start}, end={self.end})"

    __str__ = __repr__


_Hit = tuple[PiiClass, str, int, int, str]  # what a detector yields: Detection's fields, folded offsets


def _alternation(words: tuple[str, ...] | list[str]) -> str:
    """A pattern for "one of `words`", factored on shared prefixes (`A(?:KIA|SIA)` for `AKIA|ASIA`).
    It matches the same strings as the plain `AKIA|ASIA`, but `re` tries each branch of a plain
    alternation at every place its first letter could start one, and here only the branches that
    share the prefix read so far. Where one word is a prefix of another, the longer one is tried first."""
    by_first: dict[str, list[str]] = {}
    for word in sorted(set(words)):
        by_first.setdefault(word[0], []).append(word[1:])
    branches = []
    for first, rests in by_first.items():
        longer = [rest for rest in rests if rest]
        if not longer:
            branches.append(re.escape(first))
        elif len(rests) == 1:
            branches.append(re.escape(first + rests[0]))
        else:
            inner = _alternation(longer)
            branches.append(re.escape(first) + (f"(?:{inner})?" if len(longer) < len(rests) else inner))
    return branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"


# When hits overlap, the lower rank wins; then the longer one.
_RANK = {
    PiiClass.SECRET: 0,
    PiiClass.EMAIL: 1,
    PiiClass.IP: 2,  # a valid dotted quad beats an SSN or a phone read from its first digits
    PiiClass.IBAN: 3,
    PiiClass.CARD: 4,
    PiiClass.NATIONAL_ID: 5,
    PiiClass.PHONE: 6,
}

# --- email --------------------------------------------------------------------------------------

_LATIN = "\u00c0-\u024f"
_LOCAL_TAIL = re.compile(rf"[A-Za-z0-9._%+\-{_LATIN}]{{1,64}}\Z")
# Up to the last character that cannot be in a local part (`_local_start`).
_TO_LAST_NOT_LOCAL = re.compile(rf"(?s).*[^A-Za-z0-9._%+\-{_LATIN}]")
_DOMAIN = re.compile(
    rf"(?:[A-Za-z0-9{_LATIN}](?:[A-Za-z0-9\-{_LATIN}]{{0,61}}[A-Za-z0-9{_LATIN}])?\.)+[A-Za-z]{{2,24}}"
    rf"(?![A-Za-z0-9\-{_LATIN}])"
)
_SPELLED_DOT = r"\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+"
_AT_CORE = re.compile(r"at[\s\])}>]")
_OBFUSCATED_AT = re.compile(r"[\[({<] ?[aA][tT] ?[\])}>]|\s[aA][tT]\s")
_OBFUSCATED_DOMAIN = re.compile(
    rf"(?i)[A-Za-z0-9\-]{{1,63}}(?:(?:{_SPELLED_DOT}|\.)[A-Za-z0-9\-]{{1,63}}){{1,6}}(?![A-Za-z0-9\-])"
)
_DOT_SEPARATOR = re.compile(rf"(?i){_SPELLED_DOT}")
_TLD = re.compile(r"[A-Za-z]{2,24}")
_ADDRESS_LIKE_LOCAL = re.compile(r"[._+\d]")  # a local part that is not just a word
_FREEMAIL = frozenset({
    "gmail", "googlemail", "yahoo", "outlook", "hotmail", "live", "icloud", "me", "aol", "proton",
    "protonmail", "gmx", "web", "mail", "yandex", "zoho", "fastmail", "tutanota", "orange", "free",
    "laposte", "t-online", "libero", "virgilio", "wanadoo", "btinternet",
})


def _local_start(text: str, end: int) -> int:
    """Where the local part ending at `end` starts (-1: none), as `_LOCAL_TAIL.search(text, end - 64, end)`
    finds it: from the last character before `end` that cannot be in one (64 at most). `search` would
    try every start from 64 before, each reading on to `end`; this reads back from `end` once."""
    window = max(0, end - 64)
    cut = _TO_LAST_NOT_LOCAL.match(text, window, end)
    start = cut.end() if cut else window
    return start if start < end else -1


def _spelled_ats(text: str, low: str) -> Iterator[tuple[int, int]]:
    """Where an at sign is spelled out ([at], (at), " at ") or spaced (" @ "). Scans for the literal
    "at" first (fast), then checks the few characters around it."""
    last = -1
    for core in _AT_CORE.finditer(low):
        sep = _OBFUSCATED_AT.search(text, max(last + 1, core.start() - 2), core.end() + 1)
        if sep:
            last = sep.end() - 1
            yield sep.span()
    at = text.find("@")
    while at != -1:
        if (at and text[at - 1].isspace()) or text[at + 1 : at + 2].isspace():
            yield at, at + 1
        at = text.find("@", at + 1)


def _emails(text: str, low: str) -> Iterator[_Hit]:
    at = text.find("@")
    while at != -1:
        local_start = _local_start(text, at)
        domain = _DOMAIN.match(text, at + 1) if local_start != -1 else None
        if domain:
            local = text[local_start:at]
            start = local_start + len(local) - len(local.lstrip(".'"))
            if start < at:
                yield PiiClass.EMAIL, "email", start, domain.end(), f"{text[start:at]}@{domain.group()}".lower()
        at = text.find("@", at + 1)
    for sep_start, sep_end in _spelled_ats(text, low):
        while sep_start > 0 and text[sep_start - 1].isspace():
            sep_start -= 1
        while sep_end < len(text) and text[sep_end].isspace():
            sep_end += 1
        local_start = _local_start(text, sep_start)
        domain = _OBFUSCATED_DOMAIN.match(text, sep_end) if local_start != -1 else None
        if domain is None:
            continue
        local = text[local_start:sep_start]
        labels = _DOT_SEPARATOR.split(domain.group())
        host = ".".join(labels)
        if not _TLD.fullmatch(host.rsplit(".", 1)[-1]):
            continue
        spelled_dot = len(labels) > 1
        plain_at = text[sep_start:sep_end].strip().lower() == "at"
        if plain_at and not (
            spelled_dot or _ADDRESS_LIKE_LOCAL.search(local) or host.split(".")[0].lower() in _FREEMAIL
        ):
            continue  # "look at example.com" is prose, not an address
        yield PiiClass.EMAIL, "email", local_start, domain.end(), f"{local}@{host}".lower()


# --- numbers: cards, SSNs, phones ----------------------------------------------------------------

# At least 7 characters: the shortest number detected has 7 digits. (The text is folded: its only
# digits are ASCII ones, and `[0-9]` is much quicker for `re` to test than `\d`.) A run never starts
# right after one of its own first characters (`finditer` would have matched one character
# earlier): the lookbehind says so, which spares `re` retrying from every digit of a short number.
_RUN = re.compile(r"[+(0-9](?<![+(0-9][+(0-9])[0-9 \-.()+/]{6,}")
_SENTENCE_END = re.compile(r"\.\s")
_BEFORE_NUMBER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@/-.#$\u20ac\u00a3\u00a5")
_AFTER_NUMBER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%$\u20ac\u00a3")
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social security|soc\.? ?sec|tin)\b|\bss#")
_PHONE_CONTEXT = re.compile(
    r"\b(phone|tel|telephone|call|mobile|cell|whatsapp|sms|text me|fax|ring|reach me|number is|telefon|"
    r"handy|rufnummer|t\u00e9l\u00e9phone|portable|appele[rz]|tel\u00e9fono|m\u00f3vil|llam\w*|telefoon|"
    r"mobiel|bel|telefono|cellulare|chiam\w*)\b"
)
_NOT_PHONE_CONTEXT = re.compile(  # the number is a reference of some kind
    r"(?:\b(?:orders?|tracking|track|invoices?|ref|reference|waybill|parcel|shipment|package|awb|sendung\w*|"
    r"paket|bestell\w*|rechnung\w*|commande|colis|facture|pedido|env\u00edo|factura|bestelling|zending|"
    r"factuur|ordine|spedizione|fattura|sku|serial|imei|account|konto|case|ticket|no\.|nr\.|n\u00ba|"
    r"fedex|ups|usps|dhl|gls|dpd|tnt|hermes|colissimo|correos|postnl|royal mail)|#)\W*$"
)


Group = tuple[str, int, int]  # the digits of one group, and their span in the folded text


def _looks_like_date(groups: list[Group]) -> bool:
    if len(groups) < 3:
        return False
    a, b, c = (int(g[0]) for g in groups[:3])
    la, lc = len(groups[0][0]), len(groups[2][0])
    if la == 4:  # 2024-03-15
        return 1 <= b <= 12 and 1 <= c <= 31
    if lc == 4:  # 15.03.2024 or 03/15/2024
        return (1 <= a <= 31 and 1 <= b <= 12) or (1 <= a <= 12 and 1 <= b <= 31)
    return False


def _phone(
    digits: str, groups: list[Group], shape: list[int], plus: bool, paren: bool, text: str, start: int, end: int
) -> str | None:
    """The canonical number (`+` and digits when international) if the groups are written like a phone.
    The number's context (`text[start:end]` is the number) is built only when a rule reads it."""
    n = len(digits)
    if plus:
        return f"+{digits}" if country_code(digits) and 8 <= n <= 15 else None
    if n < 7 or n > 17 or (n > 12 and digits[:2] != "00"):
        return None  # no rule below takes it: spare reading the context
    if shape == [3, 2, 4] or _looks_like_date(groups):
        return None  # 3-2-4 is how SSNs are written (an invalid one is still not a phone)
    context = _Context(text, start, end)
    if _NOT_PHONE_CONTEXT.search(context.before[-24:]):
        return None
    if digits.startswith("00"):
        return f"+{digits[2:]}" if country_code(digits[2:]) and 10 <= n <= 17 else None
    separated = len(groups) > 1
    nanp = shape in ([3, 3, 4], [1, 3, 3, 4]) and (shape[0] == 3 or digits[0] == "1")
    national = digits[1:] if n == 11 and digits[0] == "1" else digits
    if nanp and digits[-10] in "23456789" and digits[-7] in "23456789":
        return digits
    if paren and 10 <= n <= 12:
        return digits
    if digits[0] == "0" and 10 <= n <= 12 and (separated or digits[:2] == "07" or context.has(_PHONE_CONTEXT)):
        return digits
    grouped = len(groups) >= 3 and max(shape) <= 3  # 24 17 29 82 83, 6 6 3 0 4 0 6 3 3
    if grouped and len(national) == 10 and national[0] in "23456789" and national[3] in "23456789":
        return digits  # North American
    if n == 9 and digits[0] in "6789" and (grouped or shape == [3, 3, 3]):  # Spain: 612 34 56 78
        return digits
    if n == 10 and digits[0] == "3" and shape in ([3, 3, 4], [3, 7], [3, 4, 3]):  # Italian mobiles
        return digits
    if 7 <= n <= 12 and context.has(_PHONE_CONTEXT):  # read last: most numbers are decided before
        return digits
    return None


def _classify(
    digits: str, groups: list[Group], shape: list[int], plus: bool, paren: bool, text: str, start: int, end: int
) -> tuple[PiiClass, str, str] | None:
    """What a whole segment of digit groups is (`text[start:end]`): a card, an SSN, a phone, or nothing.
    `shape` is the length of each group: computed once, read by every rule."""
    if not plus and len(digits) >= 13 and card_valid(digits):  # card_valid starts with 13 <= length
        return PiiClass.CARD, "card", digits
    if (
        not plus
        and len(digits) == 9
        and ssn_valid(digits)
        and (shape == [3, 2, 4] or _Context(text, start, end).has(_SSN_CONTEXT))
    ):
        return PiiClass.NATIONAL_ID, "ssn", digits
    phone = _phone(digits, groups, shape, plus, paren, text, start, end)
    return (PiiClass.PHONE, "phone", phone) if phone else None


def _splits(sep: str) -> bool:
    """True when `sep` cannot sit inside one number: too long, a sentence end, a `+`, a spaced slash."""
    if len(sep) == 1:
        return sep == "+"
    return (
        len(sep.replace("(", "").replace(")", "")) > 3
        or ".." in sep
        or "+" in sep
        or "/" in sep
        or _SENTENCE_END.match(sep) is not None
    )


_GROUP_SPLIT = re.compile(r"(\d+)")  # splits a run into separators (even items) and digit groups (odd)


def _split_run(text: str, start: int, end: int) -> list[tuple[int, list[Group]]]:
    """Digit groups of a run, as segments cut where a separator cannot be inside one number."""
    segments: list[tuple[int, list[Group]]] = []
    groups: list[Group] = []
    seg_start = start
    parts = _GROUP_SPLIT.split(text[start:end])  # one call instead of a match object per group
    pos = start + len(parts[0])
    if len(parts) == 3:  # one group (most runs are one number written without separators)
        return [(start, [(parts[1], pos, pos + len(parts[1]))])]
    for i in range(1, len(parts), 2):
        sep = parts[i - 1]
        if groups and (sep == "+" if len(sep) == 1 else _splits(sep)):  # most separators are one character
            segments.append((seg_start, groups))
            groups, seg_start = [], groups[-1][2]
        digits = parts[i]
        groups.append((digits, pos, pos + len(digits)))
        pos += len(digits) + len(parts[i + 1])
    if groups:
        segments.append((seg_start, groups))
    return segments


_BOUNDARY = re.compile(r"[\n;!?]")


class _Context:
    """Lower-cased words just before and just after a number, within its clause; read only when needed."""

    __slots__ = ("_around", "_before", "_end", "_start", "_text")

    def __init__(self, text: str, start: int, end: int) -> None:
        self._text, self._start, self._end = text, start, end
        self._before: str | None = None
        self._around: str | None = None

    @property
    def before(self) -> str:
        if self._before is None:
            before = self._text[max(0, self._start - 40) : self._start].lower()
            # What follows the last boundary (`_BOUNDARY`): four `rfind`s cost less than a `re` split.
            cut = max(before.rfind("\n"), before.rfind(";"), before.rfind("!"), before.rfind("?"))
            self._before = before[cut + 1 :]
        return self._before

    @property
    def after(self) -> str:
        after = self._text[self._end : self._end + 30].lower()
        cut = _BOUNDARY.search(after)
        return after[: cut.start()] if cut else after

    def has(self, pattern: re.Pattern[str]) -> bool:
        """Whether `pattern` (a context pattern: words, no line break) is found before or after.
        One search over both, joined by a line break: no match can span it, and to `\b` it is
        what the end and the start of a string are."""
        if self._around is None:
            self._around = f"{self.before}\n{self.after}"
        return pattern.search(self._around) is not None


def _numbers(text: str, low: str) -> Iterator[_Hit]:
    """Cards, SSNs, phones, and the IPv4 addresses that sit inside the same digit runs (one scan for all)."""
    for run in _RUN.finditer(text):
        start, end = run.span()
        if text.count(".", start, end) >= 3:
            yield from _ipv4s(text, start, end)
        while end > start and not text[end - 1].isdigit():
            end -= 1
        segments = _split_run(text, start, end)
        if not segments:
            continue
        before = text[start - 1] if start else " "
        in_time = before == ":" and text[max(0, start - 3) : start - 1].isdigit()  # 10:30:01.000-0500
        if before in _BEFORE_NUMBER or in_time:
            # Glued to a code (ES31 2536...) or a time: that segment is part of it. Glued to an id by
            # a dash or a dot (O-5531 020 7946 0958): only the first group is.
            seg_start, groups = segments[0]
            only_first = before.isascii() and not before.isalnum() and not in_time
            segments[0] = (groups[0][2], groups[1:]) if only_first else (0, [])
        if end < len(text) and text[end] in _AFTER_NUMBER:
            segments.pop()  # glued to a word on the right: the last segment is part of it
        for seg_start, groups in segments:
            if groups:
                found = _number(text, seg_start, groups)
                if found:
                    yield found


def _number(text: str, seg_start: int, groups: list[Group]) -> _Hit | None:
    if len(groups) == 1:
        digits, first_start, first_end = groups[0]
        shape = [len(digits)]
    else:
        digits = "".join([g[0] for g in groups])
        _, first_start, first_end = groups[0]
        shape = [len(g[0]) for g in groups]
    if len(digits) < 7:
        return None  # shorter than any card, SSN or phone: spare the rules
    if seg_start < first_start:  # a `+` or `(` can only be between the segment's start and its digits
        plus_at, paren_at = text.rfind("+", seg_start, first_start), text.rfind("(", seg_start, first_start)
    else:
        plus_at = paren_at = -1
    paren = paren_at != -1 and len(groups) > 1 and text[first_end : first_end + 1] == ")"  # (415) 555-2671
    plus = plus_at != -1
    start = paren_at if paren else plus_at if plus else first_start
    end = groups[-1][2]
    found = _classify(digits, groups, shape, plus, paren, text, start, end)
    if found:
        return found[0], found[1], start, end, found[2]
    if plus or len(digits) < 14:
        return None  # a card and a tail of at least one digit: 13 + 1
    # A card followed by a short tail the run swallowed: an expiry date ("12/26") or a CVV ("123").
    tail = 0
    for j in range(len(groups) - 1, 0, -1):
        tail += shape[j]
        if tail > 8:
            break
        if card_valid(digits[:-tail]):
            return PiiClass.CARD, "card", start, groups[j - 1][2], digits[:-tail]
    return None


# --- IBAN, UK NINO -----------------------------------------------------------------------------

# Both start with two letters and two digits, in one case throughout (upper, or lower when typed in
# a hurry), and never right after a letter or digit: one scan finds where they may start, then each
# is matched there. The scan looks for the two digits and checks what is before them: digits are
# rare in text and letters are not, so `re` tries much less often than from every letter.
_CODE_DIGITS = re.compile(  # the first lookbehind is a quick no for most digits, within numbers
    r"[0-9](?<=[A-Za-z \-.][0-9])(?:(?<=[^A-Za-z0-9][A-Z]{2}[0-9])|(?<=[^A-Za-z0-9][a-z]{2}[0-9])"
    r"|(?<=[^A-Za-z0-9][A-Z]{2}[ \-.][0-9])|(?<=[^A-Za-z0-9][a-z]{2}[ \-.][0-9]))[0-9]"
)
_CODE_AT_START = re.compile(r"(?:[A-Z]{2}|[a-z]{2})[ \-.]?[0-9]{2}")
_IBAN = re.compile(r"[A-Za-z]{2}[ \-.]?\d{2}(?:[ \-.]{0,2}[A-Za-z0-9]){10,32}")
_NINO = re.compile(r"[A-Za-z]{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?[A-Da-d](?![A-Za-z0-9])")
_CODE_SEPARATORS = re.compile(r"[ \-.]")
_NINO_FIRST, _NINO_SECOND = frozenset("ABCEGHJKLMNOPRSTWXYZ"), frozenset("ABCEGHJKLMNPRSTWXYZ")


def _code_starts(text: str) -> Iterator[int]:
    """Where a code may start, in order. (The text is folded: its only digits are ASCII ones.)"""
    if _CODE_AT_START.match(text):
        yield 0
    for m in _CODE_DIGITS.finditer(text):
        start = m.start() - 2 if text[m.start() - 1].isalpha() else m.start() - 3
        if not text[start - 1].isalnum():  # a non-ASCII letter or digit before is still a word
            yield start


def _codes(text: str, low: str) -> Iterator[_Hit]:
    """IBANs and UK NINOs."""
    for start in _code_starts(text):
        iban = _IBAN.match(text, start)
        if iban:
            found = _iban(text, start, iban.end())
            if found:
                yield found
                continue
        nino = _NINO.match(text, start)
        if nino:
            value = _CODE_SEPARATORS.sub("", nino.group()).upper()
            if value[0] in _NINO_FIRST and value[1] in _NINO_SECOND and nino_prefix_valid(value[:2]):
                yield PiiClass.NATIONAL_ID, "nino", start, nino.end(), value


# The first `length` characters of an `_IBAN` match, per country length: where the IBAN ends.
_IBAN_OF_LENGTH = {
    n: re.compile(rf"[A-Za-z]{{2}}[ \-.]?\d{{2}}(?:[ \-.]{{0,2}}[A-Za-z0-9]){{{n - 4}}}")
    for n in set(IBAN_LENGTHS.values())
}
_IBAN_SEPARATORS = re.compile(r"[ \-.]+")


def _iban(text: str, start: int, end: int) -> _Hit | None:
    length = IBAN_LENGTHS.get(text[start : start + 2].upper())
    if length is None:
        return None
    m = _IBAN_OF_LENGTH[length].match(text, start, end)
    if m is None:
        return None
    last = m.end() - 1
    if last + 1 < len(text) and text[last + 1].isascii() and text[last + 1].isalnum():
        return None
    tokens = _IBAN_SEPARATORS.split(m.group())
    compact = "".join(tokens)
    # Prose continues in lower case after a code-like start; IBANs are written in one case, and
    # lower-case ones only in the print format (groups of four), never like "at 10 am we".
    if not (compact.isupper() or compact.islower()):
        return None
    if compact[0].islower() and len(tokens) > 1 and any(len(t) != 4 for t in tokens[:-1]):
        return None
    iban = compact.upper()
    return (PiiClass.IBAN, "iban", start, last + 1, iban) if iban_valid(iban) else None


# --- IP addresses --------------------------------------------------------------------------------

_IPV4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")  # in folded text: ASCII digits only
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*")
# Every `_IPV6` match holds this, its first colon at most four characters in. `_IPV6` may start
# anywhere (its first group can be empty), so scanning for it is slow; scanning for the colons
# and matching `_IPV6` only from four characters before them finds the same matches.
_IPV6_COLONS = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_GROUP_SEPARATORS = re.compile(r"[:.]")
_VERSION_CONTEXT = re.compile(
    r"\b(version|v|build|release|firmware|fw|app|update|patch|section|clause|chapter|article|art)\W{0,3}$"
)


def _ipv4s(text: str, lo: int, hi: int) -> Iterator[_Hit]:
    for m in _IPV4.finditer(text, lo, hi):
        start, end = m.start(), m.end()
        before = text[start - 1] if start else " "
        after = text[end : end + 2]
        if (before.isascii() and (before.isalnum() or before in "._")) or (after[:1].isascii() and after[:1].isalnum()):
            continue
        if after[:1] == "." and after[1:2].isdigit():
            continue
        if _VERSION_CONTEXT.search(text[max(0, start - 16) : start].lower()):
            continue
        if ipv4_valid(m.group()):
            yield PiiClass.IP, "ipv4", start, end, m.group()


def _ipv6s(text: str, low: str) -> Iterator[_Hit]:
    # IPv6 is written with "::" or with six or seven colons; timestamps like 10:30:00 have neither.
    if "::" not in text and text.count(":") < 6:
        return
    pos = 0
    while (colons := _IPV6_COLONS.search(text, pos)) is not None:
        m = _IPV6.search(text, max(pos, colons.start() - 4))
        assert m is not None  # the colons themselves match
        pos = m.end()
        candidate = m.group().rstrip(".")
        start, end = m.start(), m.start() + len(candidate)
        if candidate.count(":") < 2 or sum(1 for g in _IPV6_GROUP_SEPARATORS.split(candidate) if g) < 3:
            continue
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if (before.isascii() and (before.isalnum() or before in "_:")) or (after.isascii() and after.isalnum()):
            continue
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield PiiClass.IP, "ipv6", start, end, address.compressed


# --- secrets -------------------------------------------------------------------------------------

# (kind, literals, pattern, group holding the secret). Every pattern starts with one of its
# literals, so a pattern can match only where one of them occurs. Two ways to find the matches,
# each fastest for its text length (`_secrets`). The word boundary before a match is
# checked afterwards (a lookbehind would slow the scan down).
_SECRETS: tuple[tuple[str, tuple[str, ...], re.Pattern[str], int], ...] = (
    ("private_key", ("-----BEGIN ",), re.compile(
        r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY[A-Z ]*)-----[\s\S]*?(?:-----END \1-----|\Z)"), 0),
    ("jwt", ("eyJ",), re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), 0),
    ("bearer_token", ("Bearer", "bearer", "BEARER", "bEARER"), re.compile(
        r"[Bb](?:earer|EARER)[ \t]+([A-Za-z0-9\-._~+/]{12,}=*)"), 1),
    ("aws_access_key", ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AROA", "ANPA"), re.compile(
        r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}(?![A-Za-z0-9])"), 0),
    ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), re.compile(
        r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255}"), 0),
    ("gitlab_token", ("glpat-",), re.compile(r"glpat-[A-Za-z0-9_\-]{20,}"), 0),
    ("stripe_key", ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"), re.compile(
        r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9]{16,247}"), 0),
    ("slack_token", ("xox", "hooks.slack.com"), re.compile(
        r"xox[abposre]-[A-Za-z0-9-]{10,250}|hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"), 0),
    ("google_api_key", ("AIza",), re.compile(r"AIza[0-9A-Za-z_\-]{35}"), 0),
    ("openai_anthropic_key", ("sk-",), re.compile(r"sk-[A-Za-z0-9_\-]{20,}"), 0),
    ("sendgrid_key", ("SG.",), re.compile(r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"), 0),
    ("npm_token", ("npm_",), re.compile(r"npm_[A-Za-z0-9]{36}"), 0),
)
_LITERALS = tuple(lit for _, lits, _, _ in _SECRETS for lit in lits)
# No literal is a prefix of another: at any place at most one of them matches, so the factored
# pattern finds the same literal, at the same place, as the plain alternation in table order would.
if any(a != b and b.startswith(a) for a in _LITERALS for b in _LITERALS):  # checked at import, even under -O
    raise RuntimeError("a secret literal is a prefix of another: the factored literal scan would differ")
_SECRET_LITERALS = re.compile(_alternation(_LITERALS))
_SECRETS_BY_LITERAL = {lit: i for i, (_, lits, _, _) in enumerate(_SECRETS) for lit in lits}
# Patterns that start with a choice of first characters (B or b; s, r or w; x or h): `re` scans for
# those one character at a time, and they are common letters, so the scan for such a pattern starts
# where `str.find` (much faster) first sees one of its literals, and is skipped when none occurs.
_FIND_FIRST = {
    i: tuple(sorted({lit.lower() for lit in lits}))
    for i, (kind, lits, _, _) in enumerate(_SECRETS)
    if kind in ("bearer_token", "stripe_key", "slack_token")
}
# A character every match of a pattern holds: where the text has none, its scan is skipped (`in`
# looks for one character many times faster than `re` looks for a word).
_NEEDS = {
    "private_key": "-", "jwt": "J", "aws_access_key": "A", "github_token": "_", "gitlab_token": "-",
    "stripe_key": "_", "google_api_key": "z", "openai_anthropic_key": "-", "sendgrid_key": "G", "npm_token": "_",
}
_NEEDED = tuple(_NEEDS.get(kind) for kind, _, _, _ in _SECRETS)
# Below this length one `re` scan for the pair key words costs less than the scan for separators.
_SHORT = 300
# Below this length the scan for all the secret literals (factored: `_alternation`) costs less than one
# scan per pattern (a third less on 300-900 characters of support text); above it the per-pattern
# scans win on prose, most of them skipped for want of a character their matches need.
_LONG = 1024

# `key: value` / `key=value` pairs: found from the `:` or `=`, the key read backwards from there.
_PAIR_WORDS = (
    "password|passwd|pwd|passcode|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key|"
    "secret[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|token|private[_-]?key|pin|"
    "passwort|kennwort|mot de passe|contrase\u00f1a|clave|wachtwoord|parola d'ordine"
)
# A key word, then the nearest `:` or `=` on the same line (scanned in the lower-cased text).
_PAIR_NEAR = re.compile(
    r"(?:pass|pwd|secret|key|token|pin|wort|contrase\u00f1a|clave|wachtwoord|parola)[^\n:=]{0,24}[:=]"
)
_PAIR_KEY = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])?(?:{_PAIR_WORDS})[\"']?[ \t]*\Z")
_PAIR_VALUE = re.compile(
    r"[>=]?[ \t]*(?:\"([^\"\n]{1,200})\"|'([^'\n]{1,200})'|([^\s,;\"'<>()\[\]{}]{1,200}))"
)
# Every key word of `_PAIR_NEAR` and `_PAIR_SPOKEN` holds one of these: a quick no on short texts.
_PAIR_HINT_WORDS = ("pass", "pwd", "secret", "key", "token", "pin", "wort", "contrase\u00f1a", "clave", "wachtwoord",
                    "parola")
_PAIR_HINT = re.compile(_alternation(_PAIR_HINT_WORDS))
# A `_PAIR_NEAR` match starts at most this far before its `:` or `=`: the longest key word, then 24.
_PAIR_REACH = max(len(word) for word in _PAIR_HINT_WORDS) + 24
# "my password is hunter2!", scanned in the lower-cased text; the value is taken from the original.
_PAIR_SPOKEN = re.compile(
    r"(?:pass(?:word|wort|code)|pwd|pin|mot de passe|contrase\u00f1a|wachtwoord)"
    r"\s+(?:is|was|ist|war|est|es|era|is nu)\s+[\"']?([^\s\"']{6,200})"
)
# Three of `_PAIR_SPOKEN`'s key words start with p: one letter `re` finds quickly.
_SPOKEN_P = re.compile("p(?:ass|wd|in)")
_NOT_A_WORD = re.compile(r"[\d\W_]")  # a spoken secret holds a digit, a symbol or an underscore
_PLACEHOLDER = re.compile(r"(?i)^(?:\*+|x+|\.+|\u2022+|\[hidden\]|\[redacted\]|null|none|n/?a|<[^>]*>)$")
_TOKEN_CHAR = frozenset(string.ascii_letters + string.digits + "_-")


def _occurrences(text: str, needles: tuple[str, ...]) -> list[int]:
    """Every index where one of `needles` starts (overlapping ones too), sorted. `str.find` is far
    faster than a `re` scan for a choice of words; most texts hold none of them, or few."""
    found = []
    for needle in needles:
        at = text.find(needle)
        while at != -1:
            found.append(at)
            at = text.find(needle, at + 1)
    found.sort()
    return found


def _pair_separators(low: str) -> Iterator[int]:
    """The `:` and `=` that end a `_PAIR_NEAR` match, in order: those with a key word in reach
    since the separator before them. `finditer` over the whole text finds exactly these (a match
    ends at the first separator after its key word, and the next one starts after it), but it
    tries its key words at almost every letter; this tries them only in front of separators."""
    previous = -1
    for at in _occurrences(low, (":", "=")):
        if _PAIR_NEAR.search(low, max(previous + 1, at - _PAIR_REACH), at + 1):
            yield at
        previous = at


def _spoken_starts(low: str) -> list[int]:
    """Where a `_PAIR_SPOKEN` key word starts, sorted."""
    starts = []
    for m in _SPOKEN_P.finditer(low):
        if m.start() >= 7 and low.startswith("mot de ", m.start() - 7):
            starts.append(m.start() - 7)  # mot de passe
        starts.append(m.start())
    if "\u00f1" in low:
        starts += _occurrences(low, ("contrase\u00f1a",))
    starts += _occurrences(low, ("wachtwoord",))
    starts.sort()
    return starts


def _spoken_pairs(low: str) -> Iterator[re.Match[str]]:
    """`_PAIR_SPOKEN.finditer(low)`, trying the pattern only where one of its key words starts."""
    end = 0
    for at in _spoken_starts(low):
        if at >= end and (m := _PAIR_SPOKEN.match(low, at)) is not None:
            end = m.end()
            yield m


def _pairs(text: str, low: str) -> Iterator[_Hit]:
    if len(low) < _SHORT and not _PAIR_HINT.search(low):
        return
    for at in _pair_separators(low):
        if not _PAIR_KEY.search(text, max(0, at - 48), at):
            continue
        value = _PAIR_VALUE.match(text, at + 1)
        if value is None:
            continue
        group = next(g for g in (1, 2, 3) if value.group(g) is not None)
        if not _PLACEHOLDER.match(value.group(group)):
            yield PiiClass.SECRET, "credential", value.start(group), value.end(group), value.group(group)
    for m in _spoken_pairs(low):
        if m.start() and low[m.start() - 1].isalnum():
            continue
        secret = text[m.start(1) : m.end(1)].rstrip(".,;:")
        if _NOT_A_WORD.search(secret) and len(secret) >= 6:
            yield PiiClass.SECRET, "credential", m.start(1), m.start(1) + len(secret), secret


def _matches_by_literal(text: str) -> dict[int, list[re.Match[str]]]:
    """Per pattern (by index), its matches: one scan for all the literals, each pattern tried at its own."""
    found: dict[int, list[re.Match[str]]] = {}
    ends: dict[int, int] = {}  # per pattern, where its last match ended: matches do not overlap
    pos = 0
    # Restart one character after each hit, so a literal starting inside another is still seen.
    while (hit := _SECRET_LITERALS.search(text, pos)) is not None:
        pos = hit.start() + 1
        index = _SECRETS_BY_LITERAL[hit.group()]
        if hit.start() < ends.get(index, 0):
            continue
        m = _SECRETS[index][2].match(text, hit.start())
        if m is not None:
            ends[index] = m.end()
            found.setdefault(index, []).append(m)
    return found


def _matches_by_pattern(text: str, low: str) -> dict[int, list[re.Match[str]]]:
    """The same as `_matches_by_literal`, one scan per pattern. `finditer` tries each place a pattern
    could start, left to right, and goes on from the end of a match: what the literal scan does for
    it, since a pattern can only match where one of its literals is."""
    found: dict[int, list[re.Match[str]]] = {}
    for index, (_, _, pattern, _) in enumerate(_SECRETS):
        needed = _NEEDED[index]
        if needed is not None and needed not in text:
            continue
        start = 0
        literals = _FIND_FIRST.get(index)
        if literals is not None:  # the earliest literal (its lower-cased form over-matches: fine)
            start = min((at for lit in literals if (at := low.find(lit)) != -1), default=-1)
            if start == -1:
                continue
        matches = list(pattern.finditer(text, start))
        if matches:
            found[index] = matches
    return found


def _secrets(text: str, low: str) -> Iterator[_Hit]:
    found = _matches_by_literal(text) if len(text) < _LONG else _matches_by_pattern(text, low)
    for index in sorted(found):  # table order: on a tie (Bearer eyJ...) the earlier kind wins
        kind, _, _, group = _SECRETS[index]
        for m in found[index]:
            if kind != "bearer_token" and m.start() and text[m.start() - 1] in _TOKEN_CHAR:
                continue  # inside a longer token
            yield PiiClass.SECRET, kind, m.start(group), m.end(group), m.group(group)
    yield from _pairs(text, low)


# Each detector reads the folded text and its lower-cased copy (same offsets) and yields
# (class, kind, start, end, canonical value) in folded offsets.
_DETECTORS = (_secrets, _emails, _codes, _numbers, _ipv6s)


# Values tool results are full of and that can hold nothing detectable (the detectors would find
# nothing in them either): ISO dates and timestamps, and one-letter ids such as C-1042.
# Real dates only: "0044-20-79 46:09" is shaped like a timestamp but is a phone number.
_PLAIN = re.compile(
    r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|[A-Z]-\d{1,9}"
)


# What every detector needs somewhere in an ASCII text before it can find anything: a digit (numbers,
# IBANs, NINOs, IPv4), `@` or a spelled at (emails), `:` (IPv6), `:`/`=` or a key word (credential
# pairs), a secret's literal prefix (lower-cased here: the hint only has to over-match). A text with
# none of them (names, statuses, most short values, much prose) skips the detectors. The character
# scan goes first: it is the fast one, and texts with PII nearly always have a digit early on.
_MAY_HOLD_CHAR = re.compile(r"[0-9@:=]")  # read on ASCII text only: `[0-9]` is `\d` there, and quicker
_MAY_HOLD_WORD = re.compile("|".join((
    _alternation([lit.lower() for lit in _LITERALS] + list(_PAIR_HINT_WORDS)),
    r"[\s\[({<] ?at[\s\])}>]",  # where `_spelled_ats` can find an at: after a space or a bracket
)))


def detect(text: str) -> list[Detection]:
    """Every PII value and secret in `text`, non-overlapping, in order, with spans of the original."""
    if len(text) < 5 or _PLAIN.fullmatch(text):  # nothing shorter than "pin=1" holds a value
        return []
    # ASCII text is its own fold (`fold` would return it with no resizes): no `Folded` to build.
    folded = None if text.isascii() else fold(text)
    view = text if folded is None else folded.text
    low = view.lower()
    if folded is None or view.isascii():
        if not _MAY_HOLD_CHAR.search(low) and not _MAY_HOLD_WORD.search(low):
            return []
    elif len(low) != len(view):  # a few letters lower-case to two characters: keep offsets aligned
        low = "".join(c.lower()[:1] for c in view)
    hits = [hit for detector in _DETECTORS for hit in detector(view, low)]
    if not hits:
        return []
    if folded is None or folded.resizes is None:
        return [Detection._make(hit) for hit in _merge(hits)]
    return [Detection(cls, kind, *folded.span(start, end), value) for cls, kind, start, end, value in _merge(hits)]


_START = operator.itemgetter(2)


def _merge(hits: list[_Hit]) -> list[_Hit]:
    """The hits to keep, in text order: of overlapping ones, the lower rank, then the longer one."""
    hits.sort(key=_START)
    last_end = 0
    for hit in hits:
        if hit[2] < last_end or hit[3] <= hit[2]:
            break
        last_end = hit[3]
    else:
        return hits  # the common case: no overlap, nothing to rank
    hits.sort(key=lambda h: (_RANK[h[0]], h[2] - h[3], h[2]))
    starts: list[int] = []  # kept spans, sorted and disjoint
    ends: list[int] = []
    kept: list[_Hit] = []
    for hit in hits:
        start, end = hit[2], hit[3]
        i = bisect.bisect_right(starts, start)
        if end <= start or (i and ends[i - 1] > start) or (i < len(starts) and starts[i] < end):
            continue
        starts.insert(i, start)
        ends.insert(i, end)
        kept.append(hit)
    kept.sort(key=_START)
    return kept

