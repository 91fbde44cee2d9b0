"""The compiled twins change how fast redaction runs, never what it finds (`server/redaction/native.py`).

Here what every twin must do alike: find what its Python detector finds on the corpus, on its
mutations, on arbitrary and on long repeated text, report pinned values whole and canonical, read
short texts and texts of four-byte characters within bounds, and refuse bad arguments. What is
particular to one twin (its corner cases, pinned patterns, `configure` and the reference rules it
calls) is in `test_c_<name>.py`.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskgate.server.redaction import detectors, fold, native
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.detectors import detect
from tests.redaction.test_c_codes import _CODES
from tests.redaction.test_c_emails import EMAILS
from tests.redaction.test_c_ipv6s import _ADDRESSES
from tests.redaction.test_c_numbers import _NUMBERS
from tests.redaction.test_c_secrets import SECRETS
from tests.redaction.twins import compiled, corpus_texts, low_of, mutations, same


class Found(NamedTuple):
    """What a twin's comparison must have seen, so that it proves it compared real values, not only
    empty answers: on the corpus texts these kinds, more than `per_kind` hits of each and more than
    `corpus` in all; more than `mutated` hits on the mutations drawn with `seed`."""

    kinds: set[str]
    per_kind: int
    corpus: int
    mutated: int
    seed: int


FOUND = {
    "numbers": Found({"card", "ssn", "phone", "ipv4"}, per_kind=300, corpus=5000, mutated=10_000, seed=7),
    "codes": Found({"iban", "nino"}, per_kind=300, corpus=2000, mutated=3000, seed=7),
    "secrets": Found({"credential", "private_key", "jwt", "bearer_token", "aws_access_key", "github_token",
                      "stripe_key", "slack_token", "google_api_key", "openai_anthropic_key"},
                     per_kind=50, corpus=1000, mutated=2000, seed=23),
    "emails": Found({"email"}, per_kind=1000, corpus=1000, mutated=4000, seed=7),
    "ipv6s": Found({"ipv6"}, per_kind=500, corpus=500, mutated=1300, seed=7),
}
MUTATIONS = 40_000  # per twin


def _built() -> list[str]:
    built = [name for name in native.TWINS if native.load(name) is not None]
    if os.environ.get("DESKGATE_REQUIRE_NATIVE") == "1":
        assert built == list(native.TWINS), f"DESKGATE_REQUIRE_NATIVE=1 but only {built} are built"
    if not built:
        pytest.skip("no compiled twin is built here (no C compiler at install): the Python detectors run alone")
    return built


def test_every_built_twin_replaces_its_python_detector_and_the_start_record_says_so(monkeypatch):
    built = _built()
    running, disabled = detectors.scanners(), not native.enabled()  # chosen at import, under this environment
    monkeypatch.delenv("DESKGATE_NATIVE_SCAN", raising=False)
    chosen = native.choose(detectors, detectors.PYTHON_DETECTORS)
    described = native.describe(chosen)
    assert [name for name, how in described.items() if how == "c"] == [n for n in described if n in built]
    assert set(described) == {"secrets", "emails", "codes", "numbers", "ipv6s"}
    if disabled:
        assert set(running.values()) == {"python"}
    else:
        assert running == {**described, "text": "c" if native.load("text") else "python"}


def test_the_python_detectors_can_be_forced(monkeypatch):
    """DESKGATE_NATIVE_SCAN=0: an operator who distrusts compiled code runs the reference alone."""
    monkeypatch.setenv("DESKGATE_NATIVE_SCAN", "0")
    chosen = native.choose(detectors, detectors.PYTHON_DETECTORS)
    assert chosen == detectors.PYTHON_DETECTORS
    assert set(native.describe(chosen).values()) == {"python"}


def test_detect_finds_the_same_with_and_without_the_twins(monkeypatch):
    """Whole `detect`, spans mapped back to the original included: every corpus text and 5,000 mutations,
    with every twin (`_c_text` too) and with none."""
    _built()
    texts = list(corpus_texts()) + list(mutations(corpus_texts(), 5000, seed=11))
    with_twins = [detect(text) for text in texts]
    monkeypatch.setattr(detectors, "_DETECTORS", detectors.PYTHON_DETECTORS)
    monkeypatch.setattr(detectors, "lower", str.lower)
    monkeypatch.setattr(fold, "its_own_fold", fold._its_own_fold)
    assert [detect(text) for text in texts] == with_twins
    assert sum(map(len, with_twins)) > 10_000  # the comparison saw plenty of values, not only empty answers


# --- each twin finds what its Python detector finds ------------------------------------------------


def test_every_twin_has_its_expectations_here():
    assert FOUND.keys() == set(native.TWINS)


@pytest.mark.parametrize("name", native.TWINS)
def test_the_twin_finds_what_the_reference_finds_on_every_corpus_text(name):
    module = compiled(name)
    texts = corpus_texts()
    assert len(texts) > 9000
    kinds: dict[str, int] = {}
    for text in texts:
        for hit in same(module, name, text):
            kinds[hit[1]] = kinds.get(hit[1], 0) + 1
    assert kinds.keys() == FOUND[name].kinds, kinds
    assert sum(kinds.values()) > FOUND[name].corpus and min(kinds.values()) > FOUND[name].per_kind, kinds


@pytest.mark.parametrize("name", native.TWINS)
def test_the_twin_finds_what_the_reference_finds_on_mutated_corpus_texts(name):
    module = compiled(name)
    found = sum(len(same(module, name, text)) for text in mutations(corpus_texts(), MUTATIONS, FOUND[name].seed))
    assert found > FOUND[name].mutated


@pytest.mark.parametrize("name", native.TWINS)
@settings(max_examples=600, deadline=None)
@given(text=st.text())
def test_the_twin_finds_what_the_reference_finds_on_arbitrary_text(name, text):
    """Folded as `detect` folds, and as is (other scripts' digits and letters stay in): the same hits."""
    module = compiled(name)
    same(module, name, text)
    same(module, name, text, low_of(text))


# Sanity of the comparison itself: values of each kind, each whole and in canonical form as the
# reference reports it, in strings of one-byte and of four-byte characters.
PINNED = [
    ("numbers", "card 4111 1111 1111 1111 12/26, ssn 123-45-6789, call +44 20 7946 0958, host 10.0.0.1", [
        (PiiClass.CARD, "card", 5, 24, "4111111111111111"),
        (PiiClass.NATIONAL_ID, "ssn", 36, 47, "123456789"),
        (PiiClass.PHONE, "phone", 54, 70, "+442079460958"),
        (PiiClass.IP, "ipv4", 77, 85, "10.0.0.1"),
    ]),
    ("numbers", "\U0001f600 tel 020 7946 0958", [(PiiClass.PHONE, "phone", 6, 19, "02079460958")]),
    ("codes", "IBAN de89 3704 0044 0532 0130 00, NI AB 12 34 56 C.", [
        (PiiClass.IBAN, "iban", 5, 32, "DE89370400440532013000"),
        (PiiClass.NATIONAL_ID, "nino", 37, 50, "AB123456C"),
    ]),
    ("codes", "NI AB12 \U0001d7d1\U0001d7d2 34 B", [
        (PiiClass.NATIONAL_ID, "nino", 3, 15, "AB12\U0001d7d1\U0001d7d234B"),
    ]),
    ("emails", "mail Jo.Doe@Example.COM or jo [at] example [dot] org", [
        (PiiClass.EMAIL, "email", 5, 23, "jo.doe@example.com"),
        (PiiClass.EMAIL, "email", 27, 52, "jo@example.org"),
    ]),
    ("ipv6s", "ip 2001:0DB8:0000:0000:0000:ff00:0042:8329. and ::ffff:10.0.0.1", [
        (PiiClass.IP, "ipv6", 3, 42, "2001:db8::ff00:42:8329"),
        (PiiClass.IP, "ipv6", 48, 63, "::ffff:a00:1"),
    ]),
    ("ipv6s", "\U0001f600 host fe80::1ff:fe23:4567:890a", [(PiiClass.IP, "ipv6", 7, 31, "fe80::1ff:fe23:4567:890a")]),
]


@pytest.mark.parametrize(("name", "text", "hits"), PINNED)
def test_what_is_found_is_each_value_whole_and_in_canonical_form(name, text, hits):
    assert same(compiled(name), name, text, text.lower()) == hits


# Each twin's own values and what may stand between them, repeated into long texts.
REPEATED = {
    "numbers": [*_NUMBERS, "phone", "x", "é", "\U0001d7d8", ". ", "(", "+"],
    "codes": [*_CODES, " ", "x", "é", "\U0001d7d1", "12"],
    "secrets": [*SECRETS.values(), "password=", "pin is ", "x", "é", "\U0001f600", "_"],
    "emails": [*EMAILS, " ", "x", "é", "\U0001f600", "@", " at "],
    "ipv6s": [*_ADDRESSES, "10:30:00", ":", "::", ".", "x", "é", "\U0001d7d1", "abcdef", "_"],
}


@pytest.mark.parametrize("name", native.TWINS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_the_twin_finds_what_the_reference_finds_in_long_repetitive_text(name, data):
    module = compiled(name)
    parts = data.draw(st.lists(st.sampled_from(REPEATED[name]), min_size=1, max_size=8), label="parts")
    text = " ".join(parts) * data.draw(st.integers(50, 3000), label="times")
    same(module, name, text, low_of(text))


# --- short texts, four-byte characters and bad arguments ---------------------------------------------

SHORT_TEXTS = [
    "", "1", "+", "(", "1234567", "+123456", "(((((((", "12.3.4.5", "\U0001d7d8" * 9, "\U0001f600" + "5" * 7,
    "5" * 7 + "\U0001f600", ":" + "5" * 7, "1:5555555", "\U0001f600:5555555", "4111111111111111", "+" + "4" * 7,
    "A", "AB", "AB1", "AB12", "AB-1", "AB-12", " AB12", "\U0001d7d1" * 7, "AB12" * 5,
    "eyJ", "ghp_", "sk-", "-----", "-----BEGIN ", "Bearer ", "pin=", "pin is ", "\U0001f600" * 3 + "pin=1",
    "@", "a@b.co", " at ", "x at y.co", "::", ":::::::", "1:2:3", "\U0001f600::1:2",
]


@pytest.mark.parametrize("text", SHORT_TEXTS)
def test_short_texts_and_texts_of_four_byte_characters_are_read_within_bounds(text):
    for name in native.TWINS:
        module = compiled(name)
        same(module, name, text, low_of(text))
        same(module, name, text)


_NOT_STR = (None, b"password=x", 1, ["a"], bytearray(b"ab"))
NOT_TWO_STR = [
    *((bad, "ab") for bad in _NOT_STR), *(("ab", bad) for bad in _NOT_STR), (None, ""), ("", None), (1, 1),
    (b"123-45-6789", "123-45-6789"), (b"AB123456C", "ab123456c"), (), ("1234567",), ("AB123456C",),
    ("ab", "ab", "ab"),
]
OF_ANOTHER_LENGTH = [
    ("call 020 7946 0958", "call 020 7946 095"), ("AB123456C", "ab123456"), ("password=x", "password="),
    ("", "x"), ("x", ""),
]


@pytest.mark.parametrize("name", native.TWINS)
def test_arguments_that_are_not_two_strings_of_one_length_are_refused(name):
    """A non-str in either place or the wrong number of arguments: TypeError; lengths that differ: ValueError."""
    module = compiled(name)
    for args in NOT_TWO_STR:
        with pytest.raises(TypeError):
            module.scan(*args)
    for args in OF_ANOTHER_LENGTH:
        with pytest.raises(ValueError):
            module.scan(*args)
    assert module.scan("", "") == []


def test_the_twins_give_the_same_answers_from_many_threads_at_once():
    """Redaction runs on the event loop, in worker threads and in log filters at once. The twins keep no
    state between calls but the rules, and call back into Python (where another thread may take over)
    mid-scan: with a thread switch forced as often as possible, four threads find what one finds."""
    _built()
    texts = list(corpus_texts())
    expected = [detect(text) for text in texts]
    results: dict[int, list] = {}

    def work(worker: int) -> None:
        results[worker] = [detect(text) for text in texts[worker::4]]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert [results[worker] for worker in range(4)] == [expected[worker::4] for worker in range(4)]
