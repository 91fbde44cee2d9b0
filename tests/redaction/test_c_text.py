"""`_c_text` (`server/redaction/c/text.c`) answers exactly as fold.py's own-fold check and `str.lower` do."""

from __future__ import annotations

import os
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deskgate.server.redaction import fold, native
from tests.redaction.twins import corpus_texts, mutations, views


def _compiled() -> types.ModuleType:
    module = native.load("text")
    if module is None:
        if os.environ.get("DESKGATE_REQUIRE_NATIVE") == "1":
            pytest.fail("the compiled twin _c_text is not built (DESKGATE_REQUIRE_NATIVE=1)")
        pytest.skip("the compiled twin _c_text is not built here (no C compiler at install)")
    module.configure(fold)
    return module


@pytest.fixture
def text() -> types.ModuleType:
    return _compiled()


def _same(module: types.ModuleType, value: str) -> None:
    assert module.own_fold(value) is fold._its_own_fold(value), ascii(value)
    lowered = module.lower(value)
    assert type(lowered) is str and lowered == value.lower(), ascii(value)


def test_every_character_of_unicode_is_read_as_the_reference_reads_it(text):
    for codepoint in range(0x110000):
        if not 0xD800 <= codepoint < 0xE000:
            _same(text, chr(codepoint))


def test_corpus_texts_their_views_and_mutations_are_read_as_the_reference_reads_them(text):
    for value in (*corpus_texts(), *mutations(corpus_texts(), 5000, seed=31)):
        _same(text, value)
        _same(text, views(value)[0])


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x2200), max_size=40) | st.text(max_size=40))
def test_arbitrary_text_is_read_as_the_reference_reads_it(value):
    _same(_compiled(), value)


@pytest.mark.parametrize("value", [
    "", "a", "É", "ÀÉÎÕÜ àéîõü ß ÿ µ \u00d7\u00f7", "x" * 1_000_000 + "É", "É" * 1_000_000, "Ā" + "É" * 10,
    "\U0001f600É", "İstanbul", "ΣΑΣ", "\u2000\u20ac",
])
def test_long_wide_and_special_cased_texts_are_read_as_the_reference_reads_them(text, value):
    _same(text, value)


def test_a_str_subclass_is_read_as_a_str_and_anything_else_is_a_type_error(text):
    class Text(str):
        pass

    _same(text, Text("Crème BRÛLÉE"))
    for bad in (None, b"abc", 1, ["a"]):
        with pytest.raises(TypeError):
            text.own_fold(bad)
        with pytest.raises(TypeError):
            text.lower(bad)


def test_configure_refuses_a_reference_its_table_cannot_hold_and_keeps_the_tables_it_had(text):
    with pytest.raises(RuntimeError, match="above its table"):
        text.configure(types.SimpleNamespace(_STABLE="\u3000"))
    with pytest.raises(AttributeError):
        text.configure(types.SimpleNamespace())
    _same(text, "Crème brûlée \u2000 \u3000")  # still the tables from fold.py


def test_fold_and_detect_use_the_twin_where_it_is_built(text):
    if not native.enabled():
        pytest.skip("DESKGATE_NATIVE_SCAN=0")
    assert fold.lower is not str.lower and fold.its_own_fold is not fold._its_own_fold
