"""Checksums and numbering rules that tell a real identifier from a number that only looks like one."""

from __future__ import annotations

# IBAN length per country (SWIFT IBAN registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

# mod-97 reads each letter as two digits: A = 10 ... Z = 35.
_AS_DIGITS = {ord(c): str(10 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}

# ITU country calling codes: the one- and two-digit ones; three-digit codes fill the gaps between them.
_CC_1 = frozenset({"1", "7"})
_CC_2 = frozenset({
    "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41", "43", "44", "45", "46", "47", "48",
    "49", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66", "81",
    "82", "84", "86", "90", "91", "92", "93", "94", "95", "98",
})
_CC_3_FIRST = frozenset("2345689")

# UK National Insurance number prefixes that are never issued.
_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_brand_plausible(digits: str) -> bool:
    """Issuer prefix and length of a real scheme (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if two in (30, 36, 38, 39):
        return 14 <= n <= 19
    if two == 35 or digits[0] == "6" or two in (50, 56, 57, 58):
        return 16 <= n <= 19
    return False


def card_valid(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and card_brand_plausible(digits) and luhn_valid(digits)


def iban_valid(iban: str) -> bool:
    """`iban` upper-case, separators removed: right length for its country and ISO 7064 mod-97 == 1."""
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban[2:4].isdigit():
        return False
    digits = (iban[4:] + iban[:4]).translate(_AS_DIGITS)
    return digits.isascii() and digits.isdigit() and int(digits) % 97 == 1


def ssn_valid(digits: str) -> bool:
    """US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        len(digits) == 9
        and area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
    )


def nino_prefix_valid(prefix: str) -> bool:
    return prefix not in _NINO_BAD_PREFIXES


def ipv4_valid(dotted: str) -> bool:
    """What `ipaddress.IPv4Address` accepts of four dot-separated groups of one to three ASCII digits:
    each at most 255, none with a leading zero. Such an address is its own canonical form. (A few
    comparisons here, where `ipaddress` runs some forty Python calls.)"""
    return all(int(octet) <= 255 and (octet[0] != "0" or len(octet) == 1) for octet in dotted.split("."))


def country_code(digits: str) -> str | None:
    """The ITU calling code that `digits` (an international number without `+`) starts with."""
    if digits[:1] in _CC_1:
        return digits[:1]
    if digits[:2] in _CC_2:
        return digits[:2]
    if len(digits) >= 3 and digits[0] in _CC_3_FIRST:
        return digits[:3]
    return None
