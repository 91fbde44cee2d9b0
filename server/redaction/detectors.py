"""Detectors over free text: where the PII and secrets are, as spans of the original text.

`detect(text)` folds the text (`fold.py`: NFKC, any-script digits, dashes, invisible characters
removed, Latin look-alikes mapped), runs every detector over the folded view, keeps the strongest of
overlapping hits and maps each back to the original. Patterns are compiled once, at import.

One section per detector, each with its rules in its header comment:

    emails      `_emails`: plain, spelled out (at/dot), percent-encoded or HTML-escaped
    numbers     `_numbers`: cards, SSNs, phones - digit groups joined by ANY short separator
    codes       `_codes`: IBANs (any case, any separators, even glued) and UK NINOs
    IPs         `_ipv4s`, `_ipv6s`
    secrets     `_secrets`: provider keys (case-insensitive), JWTs, bearer/Token headers, key=value pairs

Each detector finds candidates with a cheap pattern and then proves them: Luhn and issuer ranges
for cards, country length and mod-97 for IBANs, area/group/serial rules for SSNs, issued prefixes
for NINOs, address parsing for IPs, calling codes and numbering shapes for phones. A checksum
decides whatever touches the number; where there is no checksum, the context decides (an SSN or
phone word in the clause; a reference or version word right before). That is what keeps order
numbers, tracking numbers, SKUs, prices, dates and version strings unredacted.
"""

from __future__ import annotations

import bisect
import html
import ipaddress
import itertools
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


# Percent-encoding (`%40`) and HTML character references (`&#64;`, `&#x40;`, `&commat;`) are decoded
# before emails are looked for: an address in a URL or in HTML is still an address.
_ENCODED = re.compile(r"%[0-7][0-9A-Fa-f]|&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")


def _decoded(text: str) -> tuple[str, list[int], list[int]] | None:
    """`text` with its encoded characters decoded, and for each decoded character the start and end of
    the original characters it came from; None when nothing in it is encoded."""
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for m in _ENCODED.finditer(text):
        raw = m.group()
        char = chr(int(raw[1:], 16)) if raw[0] == "%" else html.unescape(raw)
        if len(char) != 1 or char == raw:
            continue  # not a character reference html knows
        parts += (text[pos : m.start()], char)
        starts += [*range(pos, m.start()), m.start()]
        ends += [*range(pos + 1, m.start() + 1), m.end()]
        pos = m.end()
    if not parts:
        return None
    parts.append(text[pos:])
    starts += range(pos, len(text))
    ends += range(pos + 1, len(text) + 1)
    return "".join(parts), starts, ends


def _emails(text: str, low: str) -> Iterator[_Hit]:
    decoded = _decoded(text) if "%" in text or "&" in text else None
    if decoded is None:
        yield from _plain_emails(text, low)
        return
    view, starts, ends = decoded
    view_low = view.lower()
    if len(view_low) != len(view):
        view_low = "".join(c.lower()[:1] for c in view)
    for cls, kind, start, end, value in _plain_emails(view, view_low):
        yield cls, kind, starts[start], ends[end - 1], value


def _plain_emails(text: str, low: str) -> Iterator[_Hit]:
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
#
# A number is digit groups joined by separators, and a separator is ANY short run (one to three) of
# characters that are not letters or digits: spaces, dots and dashes as people write them, but also
# tabs, `|`, `:`, `;`, `*`, `~`, `_`, `/`, brackets, a line break, or several of them. What the number
# is, is decided by its digits and its context, never by which separators it was written with:
#
#   card         13-19 digits of a real issuer range passing Luhn (a checksum: whatever touches it);
#   SSN          9 digits passing the SSA rules, written 3-2-4, or with an SSN word in its clause;
#   phone        `+` or `00` and a calling code; or how national numbers are written (trunk 0,
#                North American 3-3-4, ...); or any 7-12 digits with a phone word in its clause;
#   none of them when a reference word stands right before it (order, SKU, tracking, invoice, ...),
#   or it is a date; a four-part dotted number after a version word is a version, not an address.
#
# A run is first cut where a separator reads as the end of one number (`_ends_number`: a comma, a
# semicolon, a line break, a sentence end, `+`, ...), each piece is classified, and consecutive
# pieces that are nothing on their own are classified again joined, all of them first, then fewer
# (a card split over two lines, after an order number).
# (The text is folded: its only digits are ASCII ones, and `[0-9]` is quicker for `re` than `\d`.)
# A separator holds at most one line break (a blank line ends a number). The lookahead skips, in `re`,
# most runs of fewer than seven digits (the shortest number detected here): a number followed by a
# letter within seven characters ("2 items", "2024 we").
_SEPARATOR = r"(?:[^\w\n]|_){1,3}|(?:[^\w\n]|_){0,2}\n(?:[^\w\n]|_){0,2}"
# (A pattern that starts with a character set lets `re` skip quickly to where it may match; one that
# starts with a lookbehind is tried at every character: the lookbehinds come after the first set.)
_RUN = re.compile(rf"[+(0-9](?<![0-9].)(?:(?<=[+(])[0-9])?(?=[0-9\W_]{{6}})[0-9]*(?:(?:{_SEPARATOR})[0-9]+)*")
_SENTENCE_END = re.compile(r"\.\s")
# A number glued to one of these on its left or right is part of a word, a code, an amount or a time:
# only a checksum-valid card, or an SSN or phone its context names, is still read from it.
_GLUED_LEFT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@/-.#$\u20ac\u00a3\u00a5")
_GLUED_RIGHT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_@%$\u20ac\u00a3")
_WEAK = frozenset(" -.()\t|*~_:/")  # one of these alone never ends a number
_SSN_CONTEXT = re.compile(r"\b(?:ssn|social|soc\.? ?sec|tin\b|tax ?id|taxpayer|itin\b|ss#)")
# Words that say "phone"; a label glued to the number (`tel0207...`) counts, so no `\b` at the end.
_PHONE_CONTEXT = re.compile(
    r"\b(?:phone|tel|call|mob|cell|ph\b|fax|sms|text\b|whatsapp|contact|reach|ring|number|numéro|numero|número|"
    r"nummer|handy|rufnummer|ruf|t\u00e9l\u00e9phone|portable|appel|llam|m\u00f3vil|movil|telefo|bel\b|"
    r"cellulare|chiam|mobiel|landline|hotline|callback|extension|ext\b)"
)
# Words that say "this is a reference, not personal data", right before the number (a qualifier such
# as "number", "no." or "#" may follow them).
_REFERENCE = re.compile(
    r"(?:\b(?:orders?|tracking|track|invoices?|ref|reference|waybill|parcel|shipment|package|consignment|awb|"
    r"sendung\w*|paket|bestell\w*|rechnung\w*|commande|colis|facture|pedido|env\u00edo|factura|bestelling|"
    r"zending|factuur|ordine|spedizione|fattura|sku|ean|upc|gtin|isbn|asin|imei|serial|s/?n|model|part|item|"
    r"article|artikel|product|batch|lot|rma|return|case|ticket|claim|booking|reservation|confirmation|"
    r"meeting|conference|account|konto|customer|member|id|transaction|receipt|contract|policy|po|"
    r"fedex|ups|usps|dhl|gls|dpd|tnt|hermes|colissimo|correos|postnl|royal mail)"
    r"(?:\W{0,3}(?:number|num|no|nr|n\u00ba|n\u00b0|id|code|#))?|\bno\.|\bnr\.|\bn\u00ba|#)\W*$"
)
_VERSION_CONTEXT = re.compile(
    r"\b(?:version|ver|v|build|release|firmware|fw|driver|update[ds]?|updating|upgrade[ds]?|upgrading|"
    r"install\w*|patch\w*|app|sdk|kernel|ios|android|windows|macos|chrome|section|clause|chapter|article|art|"
    r"rev|revision)\W+(?:\w+\W+){0,2}$"
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

    def reference(self) -> bool:
        """A reference word stands right before the number (`#` and `no.` too, unless a phone or SSN word
        labels it: `mob#...`, `SSN#...`)."""
        before = self.before[-32:]
        return _REFERENCE.search(before) is not None and _LABEL.search(before) is None


_LABEL = re.compile(r"\b(?:tel|phone|mob|cell|ph|fax|call|whatsapp|handy|contact|ssn|ss|social security)\w*\W*$")


def _phone(
    digits: str, groups: list[Group], shape: list[int], plus: bool, paren: bool, context: _Context, glued: bool
) -> str | None:
    """The canonical number (`+` and digits when international) if the groups are written like a phone
    (or its context says phone)."""
    n = len(digits)
    if plus:
        return f"+{digits}" if country_code(digits) and 8 <= n <= 15 else None
    if n < 7 or n > 17 or (n > 12 and digits[:2] != "00"):
        return None  # no rule below takes it: spare reading the context
    if shape == [3, 2, 4] or _looks_like_date(groups):
        return None  # 3-2-4 is how SSNs are written (an invalid one is still not a phone)
    if context.reference():
        return None
    said = context.has(_PHONE_CONTEXT)
    if glued and not said:
        return None  # part of a code or a word, unless a phone word labels it
    if digits.startswith("00"):
        return f"+{digits[2:]}" if country_code(digits[2:]) and 10 <= n <= 17 else None
    separated = len(groups) > 1
    nanp = shape in ([3, 3, 4], [1, 3, 3, 4]) and (shape[0] == 3 or digits[0] == "1")
    national = digits[1:] if n == 11 and digits[0] == "1" else digits
    if nanp and digits[-10] in "23456789" and digits[-7] in "23456789":
        return digits
    if paren and 10 <= n <= 12:
        return digits
    if digits[0] == "0" and 10 <= n <= 12 and (separated or digits[:2] == "07" or said):
        return digits  # trunk 0: national numbers of most countries
    grouped = len(groups) >= 3 and max(shape) <= 3  # 24 17 29 82 83, 6 6 3 0 4 0 6 3 3
    if grouped and len(national) == 10 and national[0] in "23456789" and national[3] in "23456789":
        return digits  # North American
    if n == 9 and digits[0] in "6789" and (grouped or shape == [3, 3, 3]):  # Spain: 612 34 56 78
        return digits
    if n == 10 and digits[0] == "3" and shape in ([3, 3, 4], [3, 7], [3, 4, 3]):  # Italian mobiles
        return digits
    if 7 <= n <= 12 and said:
        return digits
    return None


def _classify(
    digits: str, groups: list[Group], plus: bool, paren: bool, text: str, start: int, end: int, glued: bool
) -> tuple[PiiClass, str, str] | None:
    """What a whole sequence of digit groups is (`text[start:end]`): a card, an SSN, a phone, or nothing."""
    n = len(digits)
    if not plus and n >= 13 and card_valid(digits):
        return PiiClass.CARD, "card", digits  # a checksum: whatever it is called, whatever touches it
    if text.find(",", start, end) != -1:
        return None  # amounts and lists (27 865,70; 12, 13, 14): only a checksum joins digits across a comma
    context = _Context(text, start, end)
    shape = [len(g[0]) for g in groups]
    if not plus and n == 9 and ssn_valid(digits):
        said = context.has(_SSN_CONTEXT)
        if said or (shape == [3, 2, 4] and not context.reference()):
            return PiiClass.NATIONAL_ID, "ssn", digits
    phone = _phone(digits, groups, shape, plus, paren, context, glued)
    return (PiiClass.PHONE, "phone", phone) if phone else None


def _ends_number(sep: str) -> bool:
    """True when `sep` reads as the end of one number: a comma, semicolon, line break, `+`, a sentence
    end, a spaced slash, a double dot, or more than two characters besides brackets."""
    if len(sep) == 1:
        return sep not in _WEAK
    return (
        len(sep.replace("(", "").replace(")", "").replace(" ", "")) > 2
        or any(c not in _WEAK for c in sep)
        or ".." in sep
        or "/" in sep
        or _SENTENCE_END.match(sep) is not None
    )


# Every separator that does not end a number: `_ends_number` worked out once for each (a separator of a
# run that is not one of these, such as any holding a line break, ends a number).
_JOINING = frozenset(
    sep for n in (1, 2, 3) for sep in map("".join, itertools.product(sorted(_WEAK), repeat=n)) if not _ends_number(sep)
)
_GROUP_SPLIT = re.compile(r"([0-9]+)")  # splits a run into separators (even items) and digit groups (odd)


def _pieces(text: str, start: int, end: int) -> list[list[Group]]:
    """Digit groups of a run, cut where a separator ends a number."""
    parts = _GROUP_SPLIT.split(text[start:end])
    pos = start + len(parts[0])
    if len(parts) == 3:  # one group (most runs are one number written without separators)
        return [[(parts[1], pos, pos + len(parts[1]))]]
    pieces: list[list[Group]] = []
    groups: list[Group] = []
    for i in range(1, len(parts), 2):
        if groups and parts[i - 1] not in _JOINING:
            pieces.append(groups)
            groups = []
        digits = parts[i]
        groups.append((digits, pos, pos + len(digits)))
        pos += len(digits) + len(parts[i + 1])
    pieces.append(groups)
    return pieces


def _numbers(text: str, low: str, claimed: list[tuple[int, int]] | None = None) -> Iterator[_Hit]:
    """Cards, SSNs and phones. A run inside a `claimed` span (sorted, disjoint: the kept hits of the
    detectors that outrank these classes) is not read: whatever it yielded would overlap that hit and
    lose to it in `_merge` (IBANs and IP addresses are digit runs too)."""
    claims = iter(claimed or ())
    claim = next(claims, None)
    for run in _RUN.finditer(text):
        start, end = run.span()
        if end - start < 7:
            continue  # shorter than any number detected here
        while claim is not None and claim[1] < end:  # runs come in order: an earlier claim holds none of them
            claim = next(claims, None)
        if claim is not None and claim[0] <= start:
            continue  # inside the claim
        before = text[start - 1] if start else " "
        if before == ":" and text[max(0, start - 3) : start - 1].isdigit():
            continue  # the tail of a time: 10:30:01.000-0500
        glued_left = before in _GLUED_LEFT
        glued_right = end < len(text) and text[end] in _GLUED_RIGHT
        pieces = _pieces(text, start, end)
        if len(pieces) == 1:  # most runs: what the loop below does with one piece, without the lists
            groups = pieces[0]
            glued = glued_left or glued_right
            hit = _number(text, groups, glued)
            if hit is None and glued and len(groups) > 1 and before.isascii() and not before.isalnum():
                hit = _number(text, groups[1:], glued_right)  # the first group is a glued id's (see below)
            if hit is not None:
                yield hit
            continue
        # The whole run as one number first: +49/30 / 68942782
        whole = _number(text, [g for piece in pieces for g in piece], glued_left or glued_right)
        if whole is not None:
            yield whole
            continue
        found: list[_Hit | None] = []
        for i, groups in enumerate(pieces):
            glued = (glued_left and i == 0) or (glued_right and i == len(pieces) - 1)
            hit = _number(text, groups, glued)
            if hit is None and glued and i == 0 and len(groups) > 1 and before.isascii() and not before.isalnum():
                # An id glued by a dash or a dot (O-5531 020 7946 0958): its first group is the id's.
                hit = _number(text, groups[1:], False)  # the first of several pieces: not at the run's end
            found.append(hit)
        yield from (hit for hit in found if hit is not None)
        yield from _rejoined(text, pieces, found, glued_left, glued_right)


def _rejoined(
    text: str, pieces: list[list[Group]], found: list[_Hit | None], glued_left: bool, glued_right: bool
) -> Iterator[_Hit]:
    """Consecutive pieces that are nothing on their own, classified again as one number."""
    i = 0
    while i < len(pieces):
        j = i
        while j < len(pieces) and found[j] is None:
            j += 1
        if j - i > 1:
            yield from _joined(text, pieces, i, j, (glued_left, glued_right))
        i = j + 1


_JOINED_MAX_DIGITS = 27  # the longest a number classified here can be: a card (19) and a swallowed tail (8)


def _joined(text: str, pieces: list[list[Group]], i: int, j: int, glued: tuple[bool, bool]) -> Iterator[_Hit]:
    """Of `pieces[i:j]` joined two or more at a time, the longest that is a number (the first of equal
    length), then the same on either side of it: an order number before a card split over two lines
    (`O-21530. 4568--1235..2563|1988`) spoils the whole, not the card."""
    sizes = [sum(len(g[0]) for g in piece) for piece in pieces[i:j]]
    for length in range(j - i, 1, -1):
        for start in range(i, j - length + 1):
            end = start + length
            if length < j - i and sum(sizes[start - i : end - i]) > _JOINED_MAX_DIGITS:
                continue
            hit = _number(text, [g for piece in pieces[start:end] for g in piece],
                          (glued[0] and start == 0) or (glued[1] and end == len(pieces)))
            if hit is not None:
                if start - i > 1:
                    yield from _joined(text, pieces, i, start, glued)
                yield hit
                if j - end > 1:
                    yield from _joined(text, pieces, end, j, glued)
                return


def _number(text: str, groups: list[Group], glued: bool) -> _Hit | None:
    if not groups:
        return None
    if len(groups) == 1:
        digits, first_start, first_end = groups[0]
    else:
        digits = "".join([g[0] for g in groups])
        _, first_start, first_end = groups[0]
    if len(digits) < 7:
        return None  # shorter than any card, SSN or phone: spare the rules
    lead = text[max(0, first_start - 2) : first_start]  # a `+` or `(` can only be right before the digits
    plus = lead.endswith("+") or lead == "+("
    paren = lead.endswith("(") and len(groups) > 1 and text[first_end : first_end + 1] == ")"  # (415) 555-2671
    start = first_start - (2 if lead == "+(" else 1) if plus or paren else first_start
    end = groups[-1][2]
    found = _classify(digits, groups, plus, paren, text, start, end, glued)
    if found:
        return found[0], found[1], start, end, found[2]
    if plus or len(digits) < 14:
        return None  # a card and a tail of at least one digit: 13 + 1
    # A card followed by a short tail the run swallowed: an expiry date ("12/26") or a CVV ("123").
    tail = 0
    for j in range(len(groups) - 1, 0, -1):
        tail += len(groups[j][0])
        if tail > 8:
            break
        if card_valid(digits[:-tail]):
            return PiiClass.CARD, "card", start, groups[j - 1][2], digits[:-tail]
    return None


# --- IBAN, UK NINO -----------------------------------------------------------------------------

# Both start with two letters and two digits. An IBAN is proven by its country's length and mod-97,
# so it is read in any case, with any short separators (`_`, `/`, tabs, line breaks... as for
# numbers), and wherever it starts, even glued to a label (`IBANDE89...`). A NINO has no checksum:
# it must start a word, and its separators are the usual ones.
# Found from their two digits (digits are rare in text, letters are not: `re` skips to the next digit
# quickly), looking back over at most three separators for the two letters.
_CODE_DIGITS = re.compile(  # the first lookbehind is a quick no for the digits inside numbers
    r"[0-9](?<![0-9]{2})(?:(?<=[A-Za-z]{2}[0-9])|(?<=[A-Za-z]{2}[\W_][0-9])|(?<=[A-Za-z]{2}[\W_]{2}[0-9])"
    r"|(?<=[A-Za-z]{2}[\W_]{3}[0-9]))[0-9]"
)
_NINO = re.compile(r"[A-Za-z]{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?[A-Da-d](?![A-Za-z0-9])")
_CODE_SEPARATORS = re.compile(r"[\W_]+")
_NINO_FIRST, _NINO_SECOND = frozenset("ABCEGHJKLMNOPRSTWXYZ"), frozenset("ABCEGHJKLMNPRSTWXYZ")


def _codes(text: str, low: str) -> Iterator[_Hit]:
    """IBANs and UK NINOs."""
    done = 0  # where the last code found ended
    for m in _CODE_DIGITS.finditer(text):
        start = m.start() - 1
        while not text[start].isalpha():
            start -= 1
        start -= 1  # the first of the two letters
        if start < done:
            continue
        # Most candidates are a word before a number ("is 0151..."): the letters rule them out here.
        letters = text[start : start + 2].upper()
        length = IBAN_LENGTHS.get(letters)
        found = None if length is None else _iban(text, start, length)
        if (found is None and letters[0] in _NINO_FIRST and letters[1] in _NINO_SECOND
                and not (start and text[start - 1].isalnum())):
            found = _nino(text, start)
        if found is not None:
            done = found[3]
            yield found


# The first `length` characters of an IBAN, per country length: where the IBAN ends.
_IBAN_OF_LENGTH = {
    n: re.compile(rf"[A-Za-z]{{2}}[\W_]{{0,3}}[0-9]{{2}}(?:[\W_]{{0,3}}[A-Za-z0-9]){{{n - 4}}}")
    for n in set(IBAN_LENGTHS.values())
}


def _iban(text: str, start: int, length: int) -> _Hit | None:
    """The IBAN of a country whose IBANs are `length` long starting at `start`, if there is one."""
    m = _IBAN_OF_LENGTH[length].match(text, start)
    if m is None or text[m.end() : m.end() + 1].isdigit():
        return None  # too short, or a prefix of a longer number
    tokens = _CODE_SEPARATORS.split(m.group())
    compact = "".join(tokens)
    # Prose can start like a code ("at 10 am we ..."); IBANs not in upper case are typed compact or in
    # the print format (groups of four), which prose never is.
    if not compact.isupper() and any(len(t) != 4 for t in tokens[:-1]):
        return None
    iban = compact.upper()
    return (PiiClass.IBAN, "iban", start, m.end(), iban) if iban_valid(iban) else None


def _nino(text: str, start: int) -> _Hit | None:
    """The NINO starting at `start`, whose two letters `_codes` has checked, if there is one."""
    m = _NINO.match(text, start)
    if m is None:
        return None
    value = _CODE_SEPARATORS.sub("", m.group()).upper()
    if nino_prefix_valid(value[:2]):
        return PiiClass.NATIONAL_ID, "nino", start, m.end(), value
    return None


# --- IP addresses --------------------------------------------------------------------------------

# In folded text: ASCII digits only. Never from inside a number (the lookbehind spares `re` the retries).
_IPV4 = re.compile(r"[0-9](?<![0-9.][0-9])[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_IPV6 = re.compile(r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*")
# Every `_IPV6` match holds this, its first colon at most four characters in. `_IPV6` may start
# anywhere (its first group can be empty), so scanning for it is slow; scanning for the colons
# and matching `_IPV6` only from four characters before them finds the same matches.
_IPV6_COLONS = re.compile(r":[0-9A-Fa-f]{0,4}:")
_IPV6_GROUP_SEPARATORS = re.compile(r"[:.]")
_IP_CONTEXT = re.compile(r"\b(?:ip|ips|ipv4|address|addr|host|server|from)\b")


def _ipv4s(text: str, low: str) -> Iterator[_Hit]:
    if text.count(".") < 3:
        return
    for m in _IPV4.finditer(text):
        start, end = m.start(), m.end()
        before = text[start - 1] if start else " "
        after = text[end : end + 2]
        if (before.isascii() and (before.isalnum() or before in "._")) or (after[:1].isascii() and after[:1].isalnum()):
            continue
        if after[:1] == "." and after[1:2].isdigit():
            continue
        if not ipv4_valid(m.group()):
            continue
        context = _Context(text, start, end)
        if _VERSION_CONTEXT.search(context.before) and not _IP_CONTEXT.search(context.before):
            continue  # version 10.2.0.4, upgraded to 1.2.3.4
        yield PiiClass.IP, "ipv4", start, end, m.group()


def _ipv6s(text: str, low: str) -> Iterator[_Hit]:
    # IPv6 is written with "::" or with six or seven colons; timestamps like 10:30:00 have neither.
    if "::" not in text and text.count(":") < 6:
        return
    pos = 0
    while (colons := _IPV6_COLONS.search(text, pos)) is not None:
        m = _IPV6.search(text, max(pos, colons.start() - 4))
        if m is None:  # cannot happen (the colons themselves match): stop rather than loop
            return
        pos = m.end()
        candidate = m.group().rstrip(".")
        start = m.start()
        if candidate.startswith(":") and not candidate.startswith("::"):
            candidate, start = candidate[1:], start + 1  # a label's colon: ip:2001:db8::1
        end = start + len(candidate)
        groups = [g for g in _IPV6_GROUP_SEPARATORS.split(candidate) if g]
        if candidate.count(":") < 2 or len(groups) < 2 or (len(groups) == 2 and len(groups[0]) < 4):
            continue  # two groups only as a compressed address with a full first group: 2001::1, fe80::1
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if before == ":" and start >= 2 and text[start - 2].isalpha():
            before = " "  # glued to a label by its colon
        if (before.isascii() and (before.isalnum() or before in "_:")) or (after.isascii() and after.isalnum()):
            continue
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        yield PiiClass.IP, "ipv6", start, end, address.compressed


# --- secrets -------------------------------------------------------------------------------------

# (kind, literals, pattern, group holding the secret). Every pattern starts with one of its literals,
# so a pattern can match only where one of them occurs: one scan of the lower-cased text finds the
# literals (`_SECRET_LITERALS`), and each pattern is tried only there, on the text, ignoring case (a
# provider key typed or pasted in lower case is still the key). The word boundary before a match is
# checked afterwards (a lookbehind would slow the scan down).
_QUOTE = r"[\"'\[(<{`]?"  # an opening quote or bracket between a header's scheme and its value
_BEARER_VALUE = r"[A-Za-z0-9\-._~+/]{12,}=*"
_HEADER_VALUE = r"(?=[A-Za-z0-9\-._~+/]*[0-9])(?=[A-Za-z0-9\-._~+/]*[A-Za-z])[A-Za-z0-9\-._~+/]{20,}=*"
_SECRETS: tuple[tuple[str, tuple[str, ...], re.Pattern[str], int], ...] = tuple(
    (kind, literals, re.compile(pattern, re.IGNORECASE), group) for kind, literals, pattern, group in (
        ("private_key", ("-----begin ",),
         r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY[A-Z ]*)-----[\s\S]*?(?:-----END \1-----|\Z)", 0),
        ("jwt", ("eyj",), r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", 0),
        # A short label may sit between the scheme and the value: `Bearer token=...`.
        ("bearer_token", ("bearer",), rf"bearer[ \t]+(?:[A-Za-z_]{{1,12}}[=:])?{_QUOTE}({_BEARER_VALUE})", 1),
        # `Authorization: Token ...` (Django REST framework, GitHub): a value with a letter and a digit.
        ("authorization_token", ("token",),
         rf"token[ \t]+{_QUOTE}({_HEADER_VALUE})", 1),
        ("aws_access_key", ("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa"),
         r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}(?![A-Za-z0-9])", 0),
        ("github_token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
         r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,255}", 0),
        ("gitlab_token", ("glpat-",), r"glpat-[A-Za-z0-9_\-]{20,}", 0),
        ("stripe_key", ("sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"),
         r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}|whsec_[A-Za-z0-9]{16,247}", 0),
        ("slack_token", ("xox", "hooks.slack.com"),
         r"xox[abposre]-[A-Za-z0-9-]{10,250}|hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}", 0),
        ("google_api_key", ("aiza",), r"AIza[0-9A-Za-z_\-]{35}", 0),
        ("openai_anthropic_key", ("sk-",), r"sk-[A-Za-z0-9_\-]{20,}", 0),
        ("sendgrid_key", ("sg.",), r"SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}", 0),
        ("npm_token", ("npm_",), r"npm_[A-Za-z0-9]{36}", 0),
    )
)
_LITERALS = tuple(lit for _, lits, _, _ in _SECRETS for lit in lits)
# No literal is a prefix of another: at any place at most one of them matches, so the factored
# pattern finds the same literal, at the same place, as the plain alternation in table order would.
if any(a != b and b.startswith(a) for a in _LITERALS for b in _LITERALS):  # checked at import, even under -O
    raise RuntimeError("a secret literal is a prefix of another: the factored literal scan would differ")
_SECRET_LITERALS = re.compile(_alternation(_LITERALS))
_SECRETS_BY_LITERAL = {lit: i for i, (_, lits, _, _) in enumerate(_SECRETS) for lit in lits}
# `key: value` / `key=value` pairs: found from a key word, the nearest `:` or `=` after it on the same
# line, the whole key read backwards from there.
_PAIR_WORDS = (
    "password|passwd|pwd|passcode|passphrase|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?key|"
    "secret[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|token|private[_-]?key|pin|"
    "passwort|kennwort|mot de passe|contrase\u00f1a|clave|wachtwoord|parola d'ordine"
)
# Every key word of `_PAIR_WORDS` and `_PAIR_SPOKEN` holds one of these.
_KEY_WORDS = ("pass", "pwd", "secret", "key", "token", "pin", "wort", "contrase\u00f1a", "clave", "wachtwoord",
              "parola")
# What a pair's separator is: a key word, then the nearest `:` or `=` on the same line, 24 characters on at
# most (in the lower-cased text). `_pair_separators` finds the places this pattern's matches end.
_PAIR_NEAR = re.compile(rf"(?:{'|'.join(_KEY_WORDS)})[^\n:=]{{0,24}}[:=]")
_PAIR_STOP = re.compile(r"[\n:=]")
_PAIR_KEY = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:[A-Za-z0-9]+[_-])?(?:{_PAIR_WORDS})[\"']?[ \t]*\Z")
_PAIR_VALUE = re.compile(
    r"[>=]?[ \t]*(?:\"([^\"\n]{1,200})\"|'([^'\n]{1,200})'|[\[(<{`\"']?([^\s,;\"'<>()\[\]{}]{1,200}))"
)
# "my password is hunter2!", scanned in the lower-cased text; the value is taken from the original.
_PAIR_SPOKEN = re.compile(
    r"(?:pass(?:word|wort|code)|pwd|pin|mot de passe|contrase\u00f1a|wachtwoord)"
    r"\s+(?:is|was|ist|war|est|es|era|is nu)\s+[\"']?([^\s\"']{6,200})"
)
_SPOKEN_WORDS = frozenset({"pass", "pwd", "pin", "contrase\u00f1a", "wachtwoord"})  # where `_PAIR_SPOKEN` can start
_NOT_A_WORD = re.compile(r"[\d\W_]")  # a spoken secret holds a digit, a symbol or an underscore
_PLACEHOLDER = re.compile(r"(?i)^(?:\*+|x+|\.+|\u2022+|\[hidden\]|\[redacted\]|null|none|n/?a|<[^>]*>)$")
_TOKEN_CHAR = frozenset(string.ascii_letters + string.digits + "_-")


def _key_words(low: str) -> list[tuple[int, str]]:
    """Where each of `_KEY_WORDS` starts (overlapping ones too), with the word, sorted. `str.find` is far
    faster than a `re` scan for a choice of words; most texts hold none of them, or few."""
    found = []
    for word in _KEY_WORDS:
        at = low.find(word)
        while at != -1:
            found.append((at, word))
            at = low.find(word, at + 1)
    found.sort()
    return found


def _pair_separators(low: str, keys: list[tuple[int, str]]) -> list[int]:
    """The `:` and `=` where `_PAIR_NEAR`'s matches end, in order: after each key word, the first `:`, `=` or
    line break within reach, unless it is the line break (what a match may hold between its key word and
    its end is none of them). `finditer` would try the key words at almost every letter of the text."""
    found: list[int] = []
    for end in sorted(at + len(word) for at, word in keys):
        stop = _PAIR_STOP.search(low, end, end + 25)
        if stop is not None and low[stop.start()] != "\n" and (not found or found[-1] != stop.start()):
            found.append(stop.start())
    return found


def _spoken_pairs(low: str, keys: list[tuple[int, str]]) -> Iterator[re.Match[str]]:
    """`_PAIR_SPOKEN.finditer(low)`, trying the pattern only where one of its key words starts."""
    end = 0
    for at, word in keys:
        if word not in _SPOKEN_WORDS:
            continue
        for start in (at - 7, at) if word == "pass" and at >= 7 and low.startswith("mot de ", at - 7) else (at,):
            if start >= end and (m := _PAIR_SPOKEN.match(low, start)) is not None:  # at - 7: mot de passe
                end = m.end()
                yield m


def _pairs(text: str, low: str) -> Iterator[_Hit]:
    keys = _key_words(low)
    if not keys:
        return
    for at in _pair_separators(low, keys):
        if not _PAIR_KEY.search(text, max(0, at - 48), at):
            continue
        value = _PAIR_VALUE.match(text, at + 1)
        if value is None:
            continue
        group = next(g for g in (1, 2, 3) if value.group(g) is not None)
        if not _PLACEHOLDER.match(value.group(group)):
            yield PiiClass.SECRET, "credential", value.start(group), value.end(group), value.group(group)
    for m in _spoken_pairs(low, keys):
        if m.start() and low[m.start() - 1].isalnum():
            continue
        secret = text[m.start(1) : m.end(1)].rstrip(".,;:")
        if _NOT_A_WORD.search(secret) and len(secret) >= 6:
            yield PiiClass.SECRET, "credential", m.start(1), m.start(1) + len(secret), secret


def _secret_matches(text: str, low: str) -> dict[int, list[re.Match[str]]]:
    """Per pattern (by index), its matches: one scan for all the literals, each pattern tried at its own."""
    found: dict[int, list[re.Match[str]]] = {}
    ends: dict[int, int] = {}  # per pattern, where its last match ended: matches do not overlap
    pos = 0
    # Restart one character after each hit, so a literal starting inside another is still seen.
    while (hit := _SECRET_LITERALS.search(low, pos)) is not None:
        pos = hit.start() + 1
        index = _SECRETS_BY_LITERAL[hit.group()]
        if hit.start() < ends.get(index, 0):
            continue
        m = _SECRETS[index][2].match(text, hit.start())
        if m is not None:
            ends[index] = m.end()
            found.setdefault(index, []).append(m)
    return found


def _secrets(text: str, low: str) -> Iterator[_Hit]:
    found = _secret_matches(text, low)
    for index in sorted(found):  # table order: on a tie (Bearer eyJ...) the earlier kind wins
        kind, _, _, group = _SECRETS[index]
        for m in found[index]:
            if kind != "bearer_token" and m.start() and text[m.start() - 1] in _TOKEN_CHAR:
                continue  # inside a longer token
            yield PiiClass.SECRET, kind, m.start(group), m.end(group), m.group(group)
    yield from _pairs(text, low)


# Each detector reads the folded text and its lower-cased copy (same offsets) and yields
# (class, kind, start, end, canonical value) in folded offsets. `_numbers` comes last: it skips the
# digit runs the others' kept hits of a higher rank hold (`_claimed`).
_BEFORE_NUMBERS = (_secrets, _emails, _codes, _ipv4s, _ipv6s)
_DETECTORS = (*_BEFORE_NUMBERS, _numbers)
_OUTRANK_NUMBERS = frozenset(cls for cls, rank in _RANK.items() if rank < _RANK[PiiClass.CARD])


def _claimed(hits: list[_Hit]) -> list[tuple[int, int]]:
    """The spans, sorted, of the hits of a class that outranks every number class and that `_merge` keeps:
    kept whatever `_numbers` adds, since `_merge` places every hit of a lower rank first."""
    return [(hit[2], hit[3]) for hit in _merge([hit for hit in hits if hit[0] in _OUTRANK_NUMBERS])]


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
_MAY_HOLD_CHAR = re.compile(r"[0-9@:=&]")  # read on ASCII text only: `[0-9]` is `\d` there, and quicker
_MAY_HOLD_WORD = re.compile("|".join((
    _alternation([lit.lower() for lit in _LITERALS] + list(_KEY_WORDS)),
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
    hits = [hit for detector in _BEFORE_NUMBERS for hit in detector(view, low)]
    hits += _numbers(view, low, _claimed(hits))
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

