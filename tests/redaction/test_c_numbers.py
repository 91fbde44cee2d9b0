"""The compiled twin of `_numbers` (`server/redaction/c/numbers.c`) finds exactly what the reference finds.

The twin reads runs, groups, segments, glue and shapes in C (and `card_valid`'s length and Luhn);
`card_brand_plausible`, `ssn_valid`, `country_code`, `_Context` and the context patterns stay the
reference's Python objects. Its `configure` refuses a reference whose `_RUN`, `_IPV4`,
`_SENTENCE_END` or `_GROUP_SPLIT` is not the pattern the C was written for. What every twin must do
alike (corpus, mutations, arbitrary, long repeated, short and four-byte texts, pinned values, bad
arguments) is in `test_native.py`.
"""

from __future__ import annotations

import hashlib
import inspect
import types

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskgate.server.redaction import checks, detectors
from tests.redaction.test_detectors import _NUMBER_PARTS, _SCAN_PARTS
from tests.redaction.twins import compiled, low_of, same

NAME = "numbers"


def _proxy(**replaced: object) -> types.SimpleNamespace:
    """The reference module's namespace with some rules replaced."""
    return types.SimpleNamespace(**{**vars(detectors), **replaced})


# --- the same answers (corpus, mutations, arbitrary and long repeated text: `test_native.py`) ----------

# Fragments around the corner cases: every shape the rules read (cards with tails, SSNs, national
# and international phones, dates, addresses, versions), context words before and after, what a
# run can be glued to on either side (a time, a code, an id, currency), separators single, doubled
# and spaced, digits and digit-likes of other scripts (and of four bytes), at the text's start and end.
_NUMBERS = [
    "4111 1111 1111 1111", "4111111111111111", "378282246310005", "3782 822463 10005", "5555-5555-5555-4444",
    "4111 1111 1111 1111 12/26 123", "4111111111111111 123", "4111 1111 1111 1111 1", "6011 0009 9013 9424",
    "123-45-6789", "123 45 6789", "123456789", "078-05-1120", "666-12-3456", "(415) 555-2671", "+1 (415) 555-2671",
    "415.555.2671", "1 415 555 2671", "+14155552671", "+44 20 7946 0958", "+44 (0)20 7946 0958", "0044 20 7946 0958",
    "00441234567890123", "020 7946 0958", "07700 900123", "07700900123", "030/12345678", "612 34 56 78",
    "06 12 34 56 78", "06.12.34.56.78", "6 6 3 0 4 0 6 3 3", "24 17 29 82 83", "333 123 4567", "333 1234567",
    "333 1234 567", "912 345 678", "2024-03-15", "15.03.2024", "03/15/2024", "2024 13 40", "192.168.1.10",
    "10.0.0.1", "1.2.3.4.5", "010.1.2.3", "256.1.1.1", "1.2.3.4.", "1.2.3.4.5.6.7.8", "1234.5.6.7",
]
_NUMBER_CORNERS = st.lists(st.one_of(
    st.text(alphabet="0123456789 -.()+/", max_size=12),
    st.text(max_size=4),
    st.sampled_from(_NUMBERS),
    st.sampled_from([
        "phone ", "call me on ", "tel: ", "Tel.", "text me ", "llamar ", "whatsapp", "ssn ", "SSN: ", "ss#",
        "soc. sec ", "social security", "order #", "Order ", "tracking ", "no. ", "ref ", "invoice", "kontonr.",
        "version ", "build ", "fw ", "art. ", "v", "INV-", "O-", "ES", "x", "_", "@", "#", "$", "%", "€", "£", "¥",
        ":", "12:", "1:", "10:30:", "\u0663\u0664:", " ", "  ", "-", ".", "/", " / ", ". ", "..", "+", "++", "(",
        ")", "()", " - ", "\n", ";", "!", "?", "\u0663", "\uff14\uff11", "\U0001d7d8", "\U0001f600", "\u00b2",
        "\u2460", "\u00bd", "é", "İ", "ß", "\u00a0", "\u2013", "\u200b", "\u2028", "0", "1", "00", "07", "3", "9",
    ]),
), max_size=12).map("".join)


@settings(max_examples=1500, deadline=None)
@given(_NUMBER_CORNERS)
@example("card 4111 1111 1111 1111 12/26 ok")
@example("call (415) 555-2671 or +44 20 7946 0958; ssn 123 45 6789")
@example("10:30:01.000-0500")
@example("\u0663\u0664:555 123 4567")
@example("O-5531 020 7946 0958")
@example("ES31 2536 1234 5678")
@example("ip 1.2.3.4.5 and 10.0.0.1.")
@example("version 10.0.0.1")
@example("+(((((((")
def test_the_twin_finds_what_the_reference_finds_around_number_corners(text):
    """Folded as `detect` folds, and as is (other scripts' digits stay outside the runs): the same hits."""
    module = compiled(NAME)
    same(module, NAME, text)
    same(module, NAME, text, low_of(text))


@settings(max_examples=800, deadline=None)
@given(st.one_of(_NUMBER_PARTS, _SCAN_PARTS.map("".join)))
def test_the_twin_finds_what_the_reference_finds_on_the_fragments_the_reference_was_proven_on(text):
    """The strategies `test_detectors.py` checks the reference's own shortcuts with."""
    module = compiled(NAME)
    same(module, NAME, text)
    same(module, NAME, text, low_of(text))


# --- attacks and bad input -------------------------------------------------------------------------------

_MEGABYTE = 1 << 20


@pytest.mark.parametrize("text", [
    ("call 020 7946 0958; ip 10.0.0.1, card 4111 1111 1111 1111 12/26 ssn 123-45-6789 " * 13_000)[:_MEGABYTE],
    "4" * _MEGABYTE,  # one run, one group
    ("1 " * _MEGABYTE)[:_MEGABYTE],  # one run, half a million groups
    ("1." * _MEGABYTE)[:_MEGABYTE],  # one run, every place an address could start
    ("+(" * _MEGABYTE)[:_MEGABYTE],  # one run without a digit
    ("12345 x" * _MEGABYTE)[:_MEGABYTE],  # runs too short to match, tried everywhere
])
def test_a_megabyte_of_text_is_scanned_and_every_hit_is_inside_it(text):
    module = compiled(NAME)
    got = same(module, NAME, text, text)
    wide = "\U0001d7d8" + text  # the same in a string of four-byte characters
    assert [(h[2] - 1, h[3] - 1) for h in same(module, NAME, wide, low_of(wide))] == [(h[2], h[3]) for h in got]


# --- configure and the reference's rules -------------------------------------------------------------------

_TEXT = "card 4111 1111 1111 1111, ssn 123-45-6789, tel 020 7946 0958, ip 10.0.0.1"


def test_configure_takes_every_rule_or_none_and_can_be_called_again():
    module = compiled(NAME)
    partial = _proxy()
    del partial._VERSION_CONTEXT
    with pytest.raises(AttributeError, match="_VERSION_CONTEXT"):
        module.configure(partial)
    same(module, NAME, _TEXT, _TEXT.lower())  # the rules it had
    module.configure(detectors)
    module.configure(detectors)
    assert len(module.scan(_TEXT, _TEXT.lower())) == 4


# SHA-256 of `inspect.getsource(checks.card_valid)`: the twin reads its length and Luhn itself.
_CARD_VALID_SOURCE = "c8872867fe9e6963e51e52351408edebbaf77242082432a5f24c78acf1de51a1"


def test_card_valid_is_the_composition_the_twin_reads():
    source = inspect.getsource(checks.card_valid).encode()
    assert hashlib.sha256(source).hexdigest() == _CARD_VALID_SOURCE, "card_valid changed: port it to numbers.c"


@pytest.mark.parametrize("name", ["_RUN", "_IPV4", "_SENTENCE_END", "_GROUP_SPLIT"])
def test_configure_refuses_patterns_the_twin_was_not_written_for(name):
    """These patterns are read as characters in C: a change in `detectors.py` must be made there too."""
    module = compiled(NAME)
    changed = _proxy(**{name: types.SimpleNamespace(pattern=getattr(detectors, name).pattern + "?")})
    with pytest.raises(RuntimeError, match=name):
        module.configure(changed)
    assert len(module.scan(_TEXT, _TEXT.lower())) == 4  # still the rules it had


def test_the_reference_rules_are_the_ones_called():
    """Issuer checks, SSN rules, calling codes, context and classes come from the module handed to `configure`."""
    module = compiled(NAME)
    calls: list[str] = []

    def no_card(digits: str) -> bool:
        calls.append(digits)
        return False

    try:
        module.configure(_proxy(card_brand_plausible=no_card, ssn_valid=lambda digits: False))
        got = module.scan(_TEXT, _TEXT.lower())
        assert calls == ["4111111111111111"]  # asked once: Luhn-valid, and no tail to try
        # Neither a card (16 digits are no phone) nor an SSN (written like one, so no phone either).
        assert [hit[1] for hit in got] == ["phone", "ipv4"]
        module.configure(_proxy(country_code=lambda digits: None))
        assert module.scan("call +44 20 7946 0958", "call +44 20 7946 0958") == []
    finally:
        module.configure(detectors)
    assert len(module.scan(_TEXT, _TEXT.lower())) == 4


def test_an_error_in_a_rule_is_raised_from_scan():
    module = compiled(NAME)

    class Broken(detectors._Context):
        __slots__ = ()

        def has(self, pattern):
            raise LookupError("broken rule")

    try:
        module.configure(_proxy(_Context=Broken))
        with pytest.raises(LookupError, match="broken rule"):
            module.scan("reach me 01512345678", "reach me 01512345678")  # decided by its context
        assert len(module.scan(_TEXT, _TEXT.lower())) == 4  # no context read there
    finally:
        module.configure(detectors)


def test_configure_called_back_in_the_middle_of_a_scan_is_safe():
    """A rule that reconfigures the twin while it scans drops the twin's last reference to itself:
    the scan finishes with the rules it started with, and the next scan uses the new ones."""
    module = compiled(NAME)
    asked = []

    def reconfiguring() -> object:
        def card_brand_plausible(digits: str) -> bool:
            module.configure(detectors)
            asked.append(digits)
            return detectors.card_brand_plausible(digits)

        return card_brand_plausible

    try:
        module.configure(_proxy(card_brand_plausible=reconfiguring()))  # only the twin holds that function
        text = _TEXT + " " + _TEXT
        same(module, NAME, text, text.lower())
        assert asked == ["4111111111111111"] * 2
        same(module, NAME, text, text.lower())
        assert len(asked) == 2
    finally:
        module.configure(detectors)
