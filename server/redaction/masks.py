"""What a masked value looks like, per PII class: enough to recognise it, not enough to use it.

    email        j***@example.com
    phone        +44 •••• ••• 123          (calling code and last three digits)
    card         •••• 4242                 (last four)
    iban         DE•• •••• 3000            (country and last four)
    national id  •••-••-6789 (SSN), •••••56C (others: last three)
    ip           203.0.•••.•••, 2001:db8:•••
    name         J*** S***
    address      •••, London               (only the last comma-separated part)
    dob          1985-••-••                (year only)
    secret       [secret:aws_access_key]   (only what kind it was)

Every mask is a str, so a masked field still validates as the str it was. Input is the folded
value (`fold.py`), so full-width digits and zero-width characters do not leak through a mask.
"""

from __future__ import annotations

import ipaddress
import re

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.checks import country_code, ipv4_valid
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.fold import fold

HIDDEN = "[hidden]"
_DOT = "\u2022"
_NON_DIGIT = re.compile(r"\D")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def _bullets(count: int) -> str:
    return " ".join(_DOT * min(4, count - i) for i in range(0, count, 4))


def mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    return f"{local[0]}***@{domain}" if local and at and domain else _DOT * 3


def mask_phone(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    stripped = value.lstrip()
    cc = None
    if stripped.startswith("+"):
        cc = country_code(digits)
    elif digits.startswith("00"):
        digits = digits[2:]
        cc = country_code(digits)
    national = digits[len(cc) :] if cc else digits
    if len(national) <= 4:
        return _DOT * 4
    masked = f"{_bullets(len(national) - 3)} {national[-3:]}"
    return f"+{cc} {masked}" if cc else masked


def mask_card(value: str) -> str:
    digits = _NON_DIGIT.sub("", value)
    return f"{_DOT * 4} {digits[-4:]}" if len(digits) >= 4 else _DOT * 4


def mask_iban(value: str) -> str:
    iban = _NON_ALNUM.sub("", value).upper()
    return f"{iban[:2]}{_DOT * 2} {_DOT * 4} {iban[-4:]}" if len(iban) >= 12 else _DOT * 4


def mask_national_id(value: str) -> str:
    alnum = _NON_ALNUM.sub("", value).upper()
    if len(alnum) == 9 and alnum.isdigit():
        return f"{_DOT * 3}-{_DOT * 2}-{alnum[-4:]}"
    return f"{_DOT * 5}{alnum[-3:]}" if len(alnum) >= 7 else _DOT * 5


def mask_ip(value: str) -> str:
    if _DOTTED_QUAD.fullmatch(value):  # most addresses: read without `ipaddress` (about 5x faster)
        if not ipv4_valid(value):
            return _DOT * 3
        first, second, _, _ = value.split(".")
        return f"{first}.{second}.{_DOT * 3}.{_DOT * 3}"
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return _DOT * 3
    if address.version == 4:
        first, second, *_ = str(address).split(".")
        return f"{first}.{second}.{_DOT * 3}.{_DOT * 3}"
    groups = address.exploded.split(":")
    return f"{groups[0].lstrip('0') or '0'}:{groups[1].lstrip('0') or '0'}:{_DOT * 3}"


def mask_name(value: str) -> str:
    words = value.split()
    return " ".join(f"{w[0]}***" for w in words) if words else _DOT * 3


def mask_address(value: str) -> str:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return f"{_DOT * 3}, {parts[-1]}" if len(parts) > 1 else _DOT * 3


def mask_dob(value: str) -> str:
    year = _YEAR.search(value)
    return f"{year.group() if year else _DOT * 4}-{_DOT * 2}-{_DOT * 2}"


def mask_secret(kind: str) -> str:
    return f"[secret:{kind}]"


_BY_CLASS = {
    PiiClass.EMAIL: mask_email,
    PiiClass.PHONE: mask_phone,
    PiiClass.CARD: mask_card,
    PiiClass.IBAN: mask_iban,
    PiiClass.NATIONAL_ID: mask_national_id,
    PiiClass.IP: mask_ip,
    PiiClass.NAME: mask_name,
    PiiClass.ADDRESS: mask_address,
    PiiClass.DOB: mask_dob,
}


def mask(cls: PiiClass, value: str, kind: str | None = None) -> str:
    """The masked form of a value of `cls` (a declared field's value, folded here first)."""
    return mask_canonical(cls, fold(value).text.strip(), kind)


def mask_canonical(cls: PiiClass, value: str, kind: str | None = None) -> str:
    """`mask` of a value already folded, with no space around it: a detector's `Detection.value`."""
    if cls is PiiClass.SECRET:
        return mask_secret(kind or "secret")
    masker = _BY_CLASS.get(cls)
    if masker is None:
        raise ConfigError(f"PII class {cls.value!r} has no mask")  # NONE and FREE_TEXT are never masked whole
    return masker(value)
