"""The compiled twin of `_emails` (`server/redaction/c/emails.c`) finds exactly what the reference finds.

The twin scans for `@` and for `_AT_CORE` in C and mirrors there `_local_start` (the local part's
character class), `_OBFUSCATED_AT`, `_TLD` and `_ADDRESS_LIKE_LOCAL`; `_DOMAIN`, `_OBFUSCATED_DOMAIN`,
`_DOT_SEPARATOR` and `_FREEMAIL` stay the reference's Python objects. So beside plain equality on
generated text, the patterns it mirrors are pinned here: changing one in `detectors.py` fails this
file until the twin follows. What every twin must do alike (corpus, mutations, arbitrary, long
repeated, short and four-byte texts, pinned values, bad arguments) is in `test_native.py`.
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
from deskgate.server.redaction.classes import PiiClass
from tests.redaction.twins import compiled, low_of, same

NAME = "emails"


# --- what the twin mirrors ----------------------------------------------------------------------------


def test_the_patterns_the_twin_mirrors_are_the_ones_it_was_written_for():
    """`emails.c` reads these patterns as characters: a change here must be made there too."""
    compiled(NAME)
    local = "[A-Za-z0-9._%+\\-\u00c0-\u024f]"
    assert detectors._LOCAL_TAIL.pattern == local + "{1,64}\\Z"
    assert detectors._TO_LAST_NOT_LOCAL.pattern == "(?s).*[^" + local[1:]
    assert detectors._AT_CORE.pattern == r"at[\s\])}>]"
    assert detectors._OBFUSCATED_AT.pattern == r"[\[({<] ?[aA][tT] ?[\])}>]|\s[aA][tT]\s"
    assert detectors._TLD.pattern == r"[A-Za-z]{2,24}"
    assert detectors._ADDRESS_LIKE_LOCAL.pattern == r"[._+\d]"
    # The twin calls `_DOMAIN` only where its first character can start it.
    assert detectors._DOMAIN.pattern.startswith("(?:[A-Za-z0-9\u00c0-\u024f](?:")
    assert all(
        p.flags == re.UNICODE
        for p in (detectors._LOCAL_TAIL, detectors._AT_CORE, detectors._OBFUSCATED_AT, detectors._TLD,
                  detectors._ADDRESS_LIKE_LOCAL, detectors._DOMAIN)
    )
    assert detectors._TO_LAST_NOT_LOCAL.flags == re.UNICODE | re.DOTALL


def test_the_spelled_domain_the_twin_looks_for_before_calling_it():
    """`emails.c` calls `_OBFUSCATED_DOMAIN` only after a label and a dot or the start of a spelled one:
    its label characters, under IGNORECASE, are ASCII ones and four letters that fold onto them."""
    compiled(NAME)
    assert detectors._SPELLED_DOT == r"\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+"
    assert detectors._OBFUSCATED_DOMAIN.pattern == (
        rf"(?i)[A-Za-z0-9\-]{{1,63}}(?:(?:{detectors._SPELLED_DOT}|\.)[A-Za-z0-9\-]{{1,63}}){{1,6}}(?![A-Za-z0-9\-])"
    )
    label = re.compile(r"(?i)[A-Za-z0-9\-]")
    chars = [chr(c) for c in range(sys.maxunicode + 1)]
    assert {c for c in chars if label.fullmatch(c) and not c.isascii()} == {"\u0130", "\u0131", "\u017f", "\u212a"}
    dot = re.compile("(?i)[dot]")
    assert {c for c in chars if dot.fullmatch(c)} == set("dotDOT")


def test_only_a_and_t_lower_case_to_a_and_t():
    """The twin's `plain_at` reads `strip().lower() == "at"` as [aA][tT] between spaces."""
    compiled(NAME)
    chars = map(chr, range(sys.maxunicode + 1))
    assert sorted(c for c in chars if c.lower() in ("a", "t", "at")) == ["A", "T", "a", "t"]


# --- the same answers (corpus, mutations, arbitrary and long repeated text: `test_native.py`) ----------

# Fragments around the corner cases: at signs plain, spelled in every bracket and case, spaced by
# any whitespace; local parts of Latin letters, of 64 characters and more, led by dots and quotes;
# domains with plain, spelled and bracketed dots, labels of 63 characters, TLDs too short, too long
# and with letters that case-fold to ASCII (Kelvin sign, long s, dotless i); freemail hosts and
# prose ("look at example.com"); digits of other scripts; characters whose lower case is longer.
EMAILS = [
    "john.doe@example.com", "J.DOE+shop@Mail.Example.co.uk", "müller@beispiel.de", "john [at] example [dot] com",
    "john(at)example(dot)com", "john at example dot com", "john @ example.com", "john{at}example.com",
    "JOHN [AT] EXAMPLE [DOT] COM", "j.doe at gmail.com", "jane at gmail.com", "look at example.com",
    "jo1 at example.org", "a_b at x.io", "x <at> y <dot> zz", "x< at >y.com", "x [ at ] y.com", "x\u00a0at\u00a0y.com",
    "x\tAT\ny.com", "..'.john@example.com", "'.@example.com", "é@é.de", "user@host.c", "user@host." + "a" * 25,
    "a" * 70 + "@example.com", "b" * 64 + " at gmail.com", "x@" + "d" * 63 + ".com", "x@" + "d" * 64 + ".com",
    "x@a-.com", "x@-a.com", "x@a.b.c.d.e.f.g.h.com", "x at a dot b dot c dot d dot e dot f dot g dot com",
    "x at \u212aelvin.com", "x at exam\u017fple.\u017fe", "x at gmail.\u0131o", "x@\u0130stanbul.com",
    "x at yahoo.co.\u212a", "free at orange.fr", "x at t-online.de", "x at GMAIL.com", "x at web dot de",
    "\u0663\u0664 at example.com", "x+y at example.com", "i\u0307 at gmail.com", "\u0130 at gmail.com",
    "x @example.com", "x@ example.com", "x @ example . com", "x @@ example.com", "@example.com", "x@",
    "x at " + "d" * 63 + " dot com", "x at " + "d" * 64 + " dot com", "x at " + "d" * 63 + ".com",
    "x at " + "d" * 64 + ".com", "x at a\u00a0dot\u00a0com", "x at a\n[dot]\ncom", "x at a DoT com",
    "x at a (dot) com", "x at a.", "x at a ", "x at a dot", "x at a dot ", "x at a  [ dot ]  com", "x at a[dot]com",
    "x at a dotcom", "x at a do com", "x at a \u212aot com", "x at -.co", "x at a\u0131.com",
    "x at \u0130.\u212a\u212a",
]
_EMAIL_PARTS = st.lists(st.one_of(
    st.text(alphabet="ab.@ _+-'atAT[](){}<>\n\t", max_size=8),
    st.text(max_size=4),
    st.sampled_from(EMAILS),
    st.sampled_from([
        "@", " @ ", "at", " at ", "AT", "[at]", "(at)", "{at}", "<at>", "[ at ]", "( AT )", "at]", "at)", "at ",
        " dot ", "[dot]", "(dot)", " [ dot ] ", "dot", ".", "..", "-", "'", "%", "\u00a0", "\u2028", "\u3000",
        "\u00c0", "\u024f", "\u0250", "\u00bf", "é", "ß", "İ", "\u212a", "\u017f", "\u0131", "\u0663", "\U0001d7d8",
        "\U0001f600", "gmail", "com", "de", "example", "x" * 64, "y" * 70, "a" * 25, "1", "_",
    ]),
), max_size=14).map("".join)


@settings(max_examples=2500, deadline=None)
@given(_EMAIL_PARTS)
@example("john.doe@example.com")
@example("look at example.com")
@example("jane at gmail.com")
@example("at example.com")
@example(" at example.com")
@example("x at")
@example("xat ")
@example("[at]")
@example("a at b at c.com")
@example("john at gmail.com at yahoo.com")
@example("x(at) (at)y.com")
@example("x (at)(at) y.com")
@example("x [at]@ y.com")
@example("x\u2028@\u2028y.com")
@example("x at y dot c\u212a")
@example("x at at gmail.com")  # the second at's search starts after the first one's match
@example("x at  at gmail.com")  # and right at its end
@example("x.y at \u017fite.com")
@example("x.y at \u0131o.com")
def test_the_twin_finds_what_the_reference_finds_around_email_corners(text):
    """Folded as `detect` folds, and as is (other scripts' letters and digits stay in): the same hits."""
    module = compiled(NAME)
    same(module, NAME, text)
    same(module, NAME, text, low_of(text))


# One-byte, two-byte and four-byte strings; "a" and "t" themselves; two-byte characters holding 'a' or 't'.
FILLERS = [" ", "x", ".", "a", "t", "\xe9", "\u0250", "\u00a0", "\u0161", "\u6174", "\U0001f600"]


@pytest.mark.parametrize("filler", FILLERS)
def test_addresses_are_found_at_every_offset_and_at_both_ends(filler):
    """Local parts read back 64 characters at most, spelled ats read a few around them, and the scan for
    "at" reads 8 bytes at a time: an address at any offset, after or before any character (of each
    str kind), is found or not as the reference says."""
    module = compiled(NAME)
    for offset in range(70):
        for email in ("john.doe@example.com", "jane at gmail.com", "j [at] x [dot] io", "x @ y.com", "at ", " at"):
            for text in (filler * offset + email, email + filler * offset, filler * offset + " " + email + " "):
                same(module, NAME, text, low_of(text))


def test_spelled_and_plain_at_signs_keep_the_reference_order():
    """All plain addresses first, then the spelled ones, then the spaced `@`s: as the reference yields."""
    module = compiled(NAME)
    text = "x @ y.com, a at gmail.com, b@c.de, d [at] e [dot] fr"
    assert [h[2] for h in same(module, NAME, text, low_of(text))] == [27, 11, 35, 0]


# --- attacks and bad input -------------------------------------------------------------------------------


def test_a_megabyte_of_text_is_scanned_and_every_hit_is_inside_it():
    module = compiled(NAME)
    unit = "Mail john.doe@example.com or jane [at] example [dot] org, at gmail.com, x @ y.io; look at this. "
    text = (unit * (1 + (1 << 20) // len(unit)))[: 1 << 20]
    got = same(module, NAME, text, text.lower())
    assert len(got) > 30_000
    wide = "\U0001f600 " + text  # the same in a string of four-byte characters
    assert [h[2] - 2 for h in same(module, NAME, wide, low_of(wide))] == [h[2] for h in got]


def test_long_runs_of_at_signs_and_spelled_ats_are_read_within_bounds():
    module = compiled(NAME)
    for text in ("@" * 5000, " @" * 3000, "at " * 4000, "[at]" * 3000, "a" * 5000 + "@", "x" + " at" * 3000 + " y.com"):
        same(module, NAME, text, low_of(text))


def test_configure_takes_every_rule_or_none_and_can_be_called_again():
    module = compiled(NAME)
    partial = types.SimpleNamespace(**{k: getattr(detectors, k) for k in ("_DOMAIN", "_OBFUSCATED_DOMAIN")})
    with pytest.raises(AttributeError, match=r"_DOT_SEPARATOR\.split"):
        module.configure(partial)
    text = "john@example.com, jane at gmail dot com"
    same(module, NAME, text, text.lower())  # the rules it had
    module.configure(detectors)
    module.configure(detectors)
    assert [h[4] for h in module.scan(text, text.lower())] == ["john@example.com", "jane@gmail.com"]


def test_scanning_before_configure_is_an_error_not_a_crash():
    compiled(NAME)
    child = (
        "import deskgate.server.redaction._c_emails as m\n"
        "try:\n    m.scan('a@b.com', 'a@b.com')\nexcept RuntimeError:\n    print('refused')\n"
    )
    env = {**os.environ, "DESKGATE_NATIVE_SCAN": "0"}  # nothing configures the twin at import
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, check=False)
    assert (run.returncode, run.stdout) == (0, "refused\n"), run.stderr


def test_the_reference_rules_are_the_ones_called():
    """Domains, dot separators, freemail hosts and the class come from the module handed to `configure`."""
    module = compiled(NAME)
    text = "john@example.com, jane at gmail.com, joe [at] x [dot] io"
    rules = types.SimpleNamespace(**vars(detectors))
    rules._FREEMAIL = frozenset()
    rules._DOMAIN = re.compile("example")
    rules._DOT_SEPARATOR = re.compile("(?!)")  # splits nothing: "x [dot] io" has no TLD
    try:
        module.configure(rules)
        assert [h[4] for h in module.scan(text, text.lower())] == ["john@example"]
    finally:
        module.configure(detectors)
    assert [h[4] for h in same(module, NAME, text, text.lower())] == ["john@example.com", "jane@gmail.com", "joe@x.io"]


def test_a_failing_reference_rule_raises_through_the_twin():
    module = compiled(NAME)

    def broken(*_):
        raise LookupError("rule failed")

    rules = types.SimpleNamespace(**vars(detectors))
    rules._DOMAIN = types.SimpleNamespace(match=broken)
    try:
        module.configure(rules)
        with pytest.raises(LookupError, match="rule failed"):
            module.scan("a@b.com", "a@b.com")
        assert module.scan("no address here", "no address here") == []
    finally:
        module.configure(detectors)
    assert module.scan("a@b.com", "a@b.com") == [(PiiClass.EMAIL, "email", 0, 7, "a@b.com")]
