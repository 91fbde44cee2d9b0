"""The compiled twin of `_ipv6s` (`server/redaction/c/ipv6s.c`) finds exactly what the reference finds.

The twin runs the gate, the `_IPV6_COLONS` / `_IPV6` scan, the rstrip of dots, the group count and
the neighbour rule in C; whether a candidate is an address, and its compressed form, stay the
reference's `ipaddress.IPv6Address`. So beside plain equality on generated text, the patterns and
the detector it mirrors are pinned here: changing one in `detectors.py` fails this file until the
twin follows. What every twin must do alike (corpus, mutations, arbitrary, long repeated, short and
four-byte texts, pinned values, bad arguments) is in `test_native.py`.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import ipaddress
import os
import re
import subprocess
import sys
import types
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from deskgate.server.redaction import detectors
from deskgate.server.redaction.classes import PiiClass
from tests.redaction.twins import compiled, low_of, same

NAME = "ipv6s"


class _Accepted:
    """An `IPv6Address` that accepts every candidate as it is."""

    def __init__(self, candidate: str) -> None:
        self.compressed = candidate


@contextlib.contextmanager
def _every_candidate_accepted() -> Iterator[types.ModuleType]:
    """The twin, and the reference, with `_Accepted` for `ipaddress.IPv6Address`: every candidate
    becomes a hit. The real rule rejects most wrong candidates (a group of five hex digits, a colon
    too many), so it would hide a twin that picks them where the reference does not."""
    real = detectors.ipaddress
    detectors.ipaddress = types.SimpleNamespace(IPv6Address=_Accepted)
    try:
        yield compiled(NAME)  # configured from the module as it is now
    finally:
        detectors.ipaddress = real
        compiled(NAME)


# --- what the twin mirrors ----------------------------------------------------------------------------

# SHA-256 of `inspect.getsource(detectors._ipv6s)` as `ipv6s.c` ports it (the loop, not only patterns).
_IPV6S_SOURCE = "78b72f9655cf2a8e0a72a9dd33b2bb25860e342ebc878fabf96015bbd3f25974"


def test_the_detector_and_patterns_the_twin_mirrors_are_the_ones_it_was_written_for():
    """`ipv6s.c` reads these patterns as characters and ports this loop: a change here must be made there too."""
    compiled(NAME)
    source = inspect.getsource(detectors._ipv6s).encode()
    assert hashlib.sha256(source).hexdigest() == _IPV6S_SOURCE, "_ipv6s changed: port the change to ipv6s.c"
    assert detectors._IPV6.pattern == r"[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*"
    assert detectors._IPV6_COLONS.pattern == r":[0-9A-Fa-f]{0,4}:"
    assert detectors._IPV6_GROUP_SEPARATORS.pattern == r"[:.]"
    assert all(p.flags == re.UNICODE for p in (detectors._IPV6, detectors._IPV6_COLONS))
    assert detectors.ipaddress is ipaddress


# --- the same answers (corpus, mutations, arbitrary and long repeated text: `test_native.py`) ----------

# Fragments around the corner cases: addresses full, compressed and with an IPv4 tail, at the text's
# start and end; hex runs longer than four before and after colons (the match then starts inside
# the run, four characters before the colons, or at the previous match's end); timestamps and
# clock-like colons around the gate's six; trailing dots; neighbours that are ASCII letters, '_',
# ':' or letters and digits of other scripts (and of four bytes); full-width colons.
_ADDRESSES = [
    "2001:db8:85a3::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329", "fe80::1ff:fe23:4567:890a",
    "::1", "::", "1::", "::ffff:192.0.2.1", "64:ff9b::10.0.0.1", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:1.2.3.4",
    "FE80::ABCD", "dead:beef::cafe", "2001:DB8::8A2E:370:7334", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
    "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "2001:db8::g", "::1.2.3", "::1.2.3.4.", "fe80::1%eth0",
    "0:0:0:0:0:0:0:0", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1",
]
_IPV6_PARTS = st.lists(st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF:.", max_size=10),
    st.text(alphabet="0123456789abcdefgxyz:._ -[]/", max_size=8),
    st.text(max_size=3),
    st.sampled_from(_ADDRESSES),
    st.sampled_from([
        " ", ":", "::", ":::", ".", "..", "_", "-", "[", "]", "/", "%", "\n", "x", "g", "G", "z", "Z", "é", "ß",
        "\u0663", "\uff11", "\uff1a", "\U0001d7d1", "\U0001f600", "\u00a0", "abcdef", "ABCDE", "12345",
        "10:30:00", "10:30", "at 10:30:01 cafe: ", "host ", "ip: ", "[", "]:8080", "a" * 20, ":" * 7,
    ]),
), max_size=14).map("".join)


@settings(max_examples=2500, deadline=None)
@given(_IPV6_PARTS)
@example("2001:db8::1")
@example("x2001:db8::1")
@example("2001:db8::1x")
@example("2001:db8::1g")
@example("_::1 :::1 ::1_ é::1é")
@example("abcdef::1 12345:1::2")
@example("::1.::1..::1")
@example("1:2:3:4:5:6:7:8...")
@example("1:2:3:4:5")
@example("1:2:3:4:5:6")
@example("1:2:3 4:5:6")
@example("at 10:30:01 cafe: host 2001:db8::8a2e:370:7334 dropped, beef::1x not")
@example("2001:db8::1:2001:db8::2")
@example("1:2:3:4:5:6:7:8g1:2:3:4:5:6:7:8")
@example("\U0001f600fe80::1\U0001f600")
@example("\uff1a\uff1a1 ::1")
def test_the_twin_finds_what_the_reference_finds_around_ipv6_corners(text):
    """Folded as `detect` folds, and as is (full-width colons and other scripts stay in): the same hits."""
    module = compiled(NAME)
    same(module, NAME, text)
    same(module, NAME, text, low_of(text))


@settings(max_examples=2500, deadline=None)
@given(_IPV6_PARTS)
@example("abcdef::1:2")  # the match starts four characters before the colons: 'b' before it
@example(" :abcde:1:2:3::")  # five hex digits between two colons are not `_IPV6_COLONS`
@example("1:2:3:4 a:b:c")  # five colons, no "::": the gate
@example("1:2:3:4 a:b:c:d")
@example("1:2:3 a::")
@example("1:2:3:4:5:6:7:8...x")
def test_the_twin_picks_the_candidates_the_reference_picks(text):
    """With every candidate accepted, the hits are the candidates: the same ones, spans included."""
    with _every_candidate_accepted() as module:
        same(module, NAME, text)
        same(module, NAME, text, low_of(text))


@pytest.mark.parametrize("filler", [" ", "x", ".", "a", "\xe9", "\u0663", "\U0001d7d1"])
def test_addresses_are_found_at_every_offset_and_in_every_string_kind(filler):
    """The gate and the colon walk read one-byte strings with `memchr` and others by kind: an address
    at any offset, after fillers that join it (hex letters, dots) or not, is found as the reference says."""
    module = compiled(NAME)
    for offset in range(12):
        for address in ("2001:db8::8a2e:370:7334", "::1:2:3", "1:2:3:4:5:6:7:8", "::ffff:10.0.0.1"):
            text = filler * offset + " " + address + " " + filler * (11 - offset)
            assert len(same(module, NAME, text, low_of(text))) == 1
            for text in (filler * offset + address, address + filler * offset):
                same(module, NAME, text, low_of(text))


def test_the_gate_is_the_references():
    """Without "::" or six colons nothing is a candidate; with either, every candidate is (seen with
    every candidate accepted: the real rule rejects those the gate keeps out anyway)."""
    with _every_candidate_accepted() as module:
        for colons in range(9):
            for text in (
                ":".join("1" * (colons + 1)), " ".join(":" * colons), "a:" * colons + "::", ": " * colons + "1::2"
            ):
                same(module, NAME, text, low_of(text))
        assert same(module, NAME, "1:2:3:4 a:b:c", "1:2:3:4 a:b:c") == []  # five colons
        assert [h[4] for h in same(module, NAME, "1:2:3:4 a:b:c:d", "1:2:3:4 a:b:c:d")] == ["1:2:3:4", "a:b:c:d"]
        assert [h[4] for h in same(module, NAME, "1:2:3 a::", "1:2:3 a::")] == ["1:2:3"]  # 'a::' has one group


# --- attacks and bad input -------------------------------------------------------------------------------


def test_a_megabyte_of_addresses_is_scanned_and_every_hit_is_inside_it():
    module = compiled(NAME)
    text = ("host 2001:db8::8a2e:370:7334, fe80::1ff:fe23:4567:890a; 10:30:00 ::1 abcdef::1 x " * 13_000)[: 1 << 20]
    got = same(module, NAME, text, text.lower())
    assert len(got) > 25_000  # "::1" is two groups short: not an address to the reference
    wide = "\U0001d7d1 " + text  # the same in a string of four-byte characters
    assert [h[2] - 2 for h in same(module, NAME, wide, low_of(wide))] == [h[2] for h in got]


@pytest.mark.parametrize("unit", ["1:", "::", "1.", ":.", "abcd:", "12345:"])
def test_a_megabyte_long_run_of_address_characters_is_one_candidate(unit):
    """One `_IPV6` match a megabyte long: read once, handed whole to `ipaddress` as the reference does."""
    module = compiled(NAME)
    text = "::" + unit * (1 << 19)
    same(module, NAME, text, text)


def test_configure_takes_every_rule_or_none_and_can_be_called_again():
    module = compiled(NAME)
    partial = types.SimpleNamespace(ipaddress=types.SimpleNamespace(), PiiClass=PiiClass)
    with pytest.raises(AttributeError, match=r"ipaddress\.IPv6Address"):
        module.configure(partial)
    with pytest.raises(AttributeError, match=r"PiiClass\.IP"):
        module.configure(types.SimpleNamespace(ipaddress=ipaddress))
    text = "host ::1:2:3 and fe80::1:2"
    same(module, NAME, text, text)  # the rules it had
    module.configure(detectors)
    module.configure(detectors)
    assert len(module.scan(text, text)) == 2


def test_scanning_before_configure_is_an_error_not_a_crash():
    compiled(NAME)
    child = (
        "import deskgate.server.redaction._c_ipv6s as m\n"
        "try:\n    m.scan('::1', '::1')\nexcept RuntimeError:\n    print('refused')\n"
    )
    env = {**os.environ, "DESKGATE_NATIVE_SCAN": "0"}  # nothing configures the twin at import
    run = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, check=False)
    assert (run.returncode, run.stdout) == (0, "refused\n"), run.stderr


def test_the_reference_rules_are_the_ones_called():
    """Each candidate that passes the checks goes to the configured `ipaddress.IPv6Address`, its
    `.compressed` is the value, a ValueError drops it; the class is the module's `PiiClass.IP`."""
    module = compiled(NAME)
    seen: list[str] = []

    class Recorded:
        """An `IPv6Address` stand-in: records each candidate, refuses "::0:2:3" with a ValueError subclass."""

        def __init__(self, candidate: str) -> None:
            seen.append(candidate)
            if candidate == "::0:2:3":
                raise ipaddress.AddressValueError(candidate)
            self.compressed = f"<{candidate}>"

    text = "a ::1:0:1, ::2, ::0:2:3, 1:2:3:4:5:6:7:8..., x::3:4:5 beef::ca:fe"
    rules = types.SimpleNamespace(**vars(detectors))
    rules.ipaddress = types.SimpleNamespace(IPv6Address=Recorded)
    try:
        module.configure(rules)
        got = module.scan(text, text)
    finally:
        module.configure(detectors)
    assert seen == ["::1:0:1", "::0:2:3", "1:2:3:4:5:6:7:8", "beef::ca:fe"]
    assert got == [
        (PiiClass.IP, "ipv6", 2, 9, "<::1:0:1>"),
        (PiiClass.IP, "ipv6", 25, 40, "<1:2:3:4:5:6:7:8>"),
        (PiiClass.IP, "ipv6", 54, 65, "<beef::ca:fe>"),
    ]
    assert got[0][0] is PiiClass.IP


def test_an_error_other_than_valueerror_from_the_rule_is_raised_not_swallowed():
    module = compiled(NAME)

    def broken(candidate: str) -> None:
        raise RuntimeError(candidate)

    rules = types.SimpleNamespace(**vars(detectors))
    rules.ipaddress = types.SimpleNamespace(IPv6Address=broken)
    try:
        module.configure(rules)
        with pytest.raises(RuntimeError, match="fe80::1:2"):
            module.scan("at fe80::1:2 now", "at fe80::1:2 now")
    finally:
        module.configure(detectors)
    assert len(module.scan("at fe80::1:2 now", "at fe80::1:2 now")) == 1


def test_the_value_is_whatever_the_rule_says_and_a_rule_that_reconfigures_the_twin_is_survived():
    """`.compressed` is taken as it is (None too, as the reference would); Python code run by the rule
    may call `configure` mid-scan, releasing the rule being called: the twin holds it for the call."""
    module = compiled(NAME)
    real = detectors.ipaddress

    class Reconfiguring:
        compressed = None

        def __init__(self, candidate: str) -> None:
            detectors.ipaddress = real
            module.configure(detectors)  # now the real rule again, for the candidates after this one

    detectors.ipaddress = types.SimpleNamespace(IPv6Address=Reconfiguring)
    try:
        module.configure(detectors)
        text = "a 1:2:3:4:5:6:7:8 b fe80::1:2:3 c"
        assert module.scan(text, text) == [
            (PiiClass.IP, "ipv6", 2, 17, None),
            (PiiClass.IP, "ipv6", 20, 31, "fe80::1:2:3"),
        ]
    finally:
        detectors.ipaddress = real
        module.configure(detectors)
