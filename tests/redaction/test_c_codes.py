"""The compiled twin of `_codes` (`server/redaction/c/codes.c`) finds exactly what the reference finds.

The twin scans for code starts in C and mirrors `_IBAN`, `_NINO`, `_IBAN_OF_LENGTH` and the shape
rules of `_iban` there; the country table, mod-97 and the issued NINO prefixes stay the
reference's Python objects. So beside plain equality on the corpus, on mutations and on generated
text, the patterns it mirrors are pinned here: changing one in `detectors.py` fails this file
until the twin follows. What every twin must do alike (corpus, mutations, arbitrary, long repeated,
short and four-byte texts, pinned values, bad arguments) is in `test_native.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskgate.server.redaction import detectors
from tests.redaction.twins import compiled, low_of, same

NAME = "codes"


# --- what the twin mirrors ----------------------------------------------------------------------------


def test_the_patterns_the_twin_mirrors_are_the_ones_it_was_written_for():
    """`codes.c` reads these patterns as characters: a change here must be made there too."""
    compiled(NAME)
    assert detectors._CODE_DIGITS.pattern == (
        r"[0-9](?<=[A-Za-z \-.][0-9])(?:(?<=[^A-Za-z0-9][A-Z]{2}[0-9])|(?<=[^A-Za-z0-9][a-z]{2}[0-9])"
        r"|(?<=[^A-Za-z0-9][A-Z]{2}[ \-.][0-9])|(?<=[^A-Za-z0-9][a-z]{2}[ \-.][0-9]))[0-9]"
    )
    assert detectors._CODE_AT_START.pattern == r"(?:[A-Z]{2}|[a-z]{2})[ \-.]?[0-9]{2}"
    assert detectors._IBAN.pattern == r"[A-Za-z]{2}[ \-.]?\d{2}(?:[ \-.]{0,2}[A-Za-z0-9]){10,32}"
    assert detectors._NINO.pattern == (
        r"[A-Za-z]{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?\d{2}[ \-.]?[A-Da-d](?![A-Za-z0-9])"
    )
    assert detectors._CODE_SEPARATORS.pattern == r"[ \-.]"
    assert detectors._IBAN_SEPARATORS.pattern == r"[ \-.]+"
    assert {n: p.pattern for n, p in detectors._IBAN_OF_LENGTH.items()} == {
        n: rf"[A-Za-z]{{2}}[ \-.]?\d{{2}}(?:[ \-.]{{0,2}}[A-Za-z0-9]){{{n - 4}}}"
        for n in set(detectors.IBAN_LENGTHS.values())
    }
    assert all(p.flags == re.UNICODE for p in (detectors._CODE_DIGITS, detectors._IBAN, detectors._NINO))
    assert min(detectors.IBAN_LENGTHS.values()) >= 4


def test_no_decimal_digit_has_an_upper_case():
    """The twin upper-cases a NINO's letters only: its digits (`\\d`, any script) stay as they are."""
    compiled(NAME)
    assert [c for c in map(chr, range(sys.maxunicode + 1)) if c.isdecimal() and c.upper() != c] == []


# --- the same answers (corpus, mutations, arbitrary and long repeated text: `test_native.py`) ----------

# Fragments around the corner cases: code starts at the text's start and end and after every kind
# of character, separators single, doubled and tripled, valid and broken IBANs and NINOs in both
# cases and mixed, print and electronic formats, digits and letters of other scripts (and of four
# bytes), and characters whose lower case is longer.
_CODES = [
    "DE89 3704 0044 0532 0130 00", "DE89370400440532013000", "de89 3704 0044 0532 0130 00",
    "de89370400440532013000", "De89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32",
    "gb82 west 1234 5698 7654 32", "GB82-WEST-1234-5698-7654-32", "GB82.WEST.1234.5698.7654.32", "GB82  WEST  1234",
    "NO93 8601 1117 947",
    "FR76 3000 6000 0112 3456 7890 189", "MT84 MALT 0110 0001 2345 MTLC AST0 01S", "gb82 we st12 3456 9876 5432",
    "AB 12 34 56 C", "AB123456C", "ab123456c", "AB-12-34-56-C", "QQ123456C", "GB 12 34 56 A", "ZZ123456D",
    "BG123456A", "OO123456A", "AB12 34 56 E", "TN 12 34 56 d", "AB12\u0663\u0664\u0665\u0666C",
    "AB12 \U0001d7d1\U0001d7d2 34 B", "AB\uff11\uff12\uff13\uff14\uff15\uff16C",
]
_CODE_PARTS = st.lists(st.one_of(
    st.text(alphabet="0123456789 -.abcdABCDGBEQZ", max_size=8),
    st.text(max_size=4),
    st.sampled_from(_CODES),
    st.sampled_from([
        " ", "-", ".", "  ", "--", "-.", "...", "\n", ":", "/", "(", ")", "_", "é", "ß", "İ", "\u01c5", "\u0663",
        "\uff11", "\U0001d7d1", "\U0001f600", "\u00a0", "\u200b", "x", "Q", "9", "DE", "de", "De", "89", "GB 82",
        "xY12", "é12", "AB", "ab-12", "AB 1", "12", "00", "IBAN: ", "NI number ", "a" * 40, "7" * 40,
    ]),
), max_size=14).map("".join)


@settings(max_examples=1500, deadline=None)
@given(_CODE_PARTS)
@example("DE89370400440532013000")
@example("AB123456C")
@example("xAB123456C")
@example("é de89 3704 0044 0532 0130 00")
@example("DE89 3704 0044 0532 0130 0")
@example("DE89 3704 0044 0532 0130 001")
@example("AB 12 34 56 CD")
@example("Ab123456C")
@example("aB 12 34 56 c, then bC-12-34-56-D")
@example("DE89 3704 0044 0532 0130...00")
@example("DE89 3704 0044 0532 0130 - 00")
@example("de89  3704  0044  0532  0130  00")
@example("de89 3704 0044 0532 013 000")
@example("DE89 3704 0044 0532 0130 00 00 00 00 00 00 00")
def test_the_twin_finds_what_the_reference_finds_around_code_corners(text):
    """Folded as `detect` folds, and as is (digits of any script reach `\\d` there): the same hits."""
    module = compiled(NAME)
    same(module, NAME, text)
    same(module, NAME, text, low_of(text))


@pytest.mark.parametrize("filler", [" ", "x", "\xb0", "\xb9", "\xa0", "\xb2\xb3", "\u0663", "\U0001d7d1"])
def test_codes_are_found_at_every_offset_of_the_scan(filler):
    """The scan of one-byte texts reads eight characters at a time: a code at any offset, after
    bytes whose low seven bits are digits (`\xb0`-`\xb9`), is found or not as the reference says."""
    module = compiled(NAME)
    for offset in range(24):
        for code in ("AB123456C", "AB 12 34 56 C", "de89 3704 0044 0532 0130 00"):
            text = filler * offset + " " + code + " " + filler * (23 - offset)
            assert len(same(module, NAME, text, low_of(text))) == 1
            text = filler * offset + code
            same(module, NAME, text, low_of(text))


# --- attacks and bad input -------------------------------------------------------------------------------


def test_a_megabyte_of_text_is_scanned_and_every_hit_is_inside_it():
    module = compiled(NAME)
    text = ("Ref DE89 3704 0044 0532 0130 00 / AB123456C / GB82WEST12345698765432x ab12 " * 14_000)[: 1 << 20]
    got = same(module, NAME, text, text.lower())
    assert len(got) > 20_000
    wide = "\U0001d7d1 " + text  # the same in a string of four-byte characters
    assert [h[2] - 2 for h in same(module, NAME, wide, low_of(wide))] == [h[2] for h in got]


def test_configure_takes_every_rule_or_none_and_can_be_called_again():
    module = compiled(NAME)
    partial = types.SimpleNamespace(**{k: getattr(detectors, k) for k in ("IBAN_LENGTHS", "iban_valid", "_NINO_FIRST")})
    with pytest.raises(AttributeError, match="_NINO_SECOND"):
        module.configure(partial)
    text = "de89 3704 0044 0532 0130 00 AB123456C"
    same(module, NAME, text, text.lower())  # the rules it had
    module.configure(detectors)
    module.configure(detectors)
    assert len(module.scan(text, text.lower())) == 2


def test_scanning_before_configure_is_an_error_not_a_crash():
    compiled(NAME)
    child = (
        "import deskgate.server.redaction._c_codes as m\n"
        "try:\n    m.scan('AB123456C', 'ab123456c')\nexcept RuntimeError:\n    print('refused')\n"
    )
    env = {**os.environ, "DESKGATE_NATIVE_SCAN": "0"}  # nothing configures the twin at import
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, check=False)
    assert (run.returncode, run.stdout) == (0, "refused\n"), run.stderr


def test_the_reference_rules_are_the_ones_called():
    """Country lengths and prefixes come from the module handed to `configure`, not from the C."""
    module = compiled(NAME)
    text = "DE89 3704 0044 0532 0130 00 AB123456C"
    rules = types.SimpleNamespace(**vars(detectors))
    rules.IBAN_LENGTHS = {}
    rules.nino_prefix_valid = lambda prefix: prefix != "AB"
    try:
        module.configure(rules)
        assert module.scan(text, text.lower()) == []
    finally:
        module.configure(detectors)
    assert len(module.scan(text, text.lower())) == 2
