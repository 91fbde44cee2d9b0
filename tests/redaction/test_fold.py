"""The folded view undoes evasions, and every folded span maps back to exactly its original characters."""

# ruff: noqa: RUF001 - full-width and other look-alike characters are the evasions under test

from __future__ import annotations

import unicodedata

from deskgate.server.redaction.fold import fold


def test_ascii_text_is_its_own_fold_with_no_offset_table():
    """The common case costs nothing: ASCII text is returned as is."""
    folded = fold("Call 020 7946 0958 about O-5531.")
    assert folded.text == "Call 020 7946 0958 about O-5531."
    assert folded.resizes is None
    assert folded.span(5, 18) == (5, 18)


def test_accented_prose_needs_no_offset_table_either():
    """Non-ASCII letters that NFKC leaves alone do not trigger the slow path."""
    folded = fold("Bestellung für Müller, reçu à 10h")
    assert folded.resizes is None


def test_full_width_forms_fold_to_ascii():
    """Full-width digits, letters and at sign are folded by NFKC."""
    assert fold("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ ４１１１").text == "john@example.com 4111"


def test_format_characters_vanish_and_spans_cover_them():
    """Zero-width and soft-hyphen characters are dropped; a span across them covers them in the original."""
    original = "card 41\u200b11\u00ad11\u2060 done"
    folded = fold(original)
    assert folded.text == "card 411111 done"
    start, end = folded.span(5, 11)
    assert original[start:end] == "41\u200b11\u00ad11"


def test_digits_of_any_script_and_unicode_dashes_fold():
    """Arabic-Indic digits become ASCII digits and en dashes become hyphens."""
    assert fold("\u0661\u0662\u0663\u2013\u0664\u0665").text == "123-45"


def test_span_maps_expanded_characters_back_to_the_one_original_character():
    """A ligature that NFKC expands maps back to the single original character."""
    original = "x\ufb01y"  # "ﬁ" ligature
    folded = fold(original)
    assert folded.text == "xfiy"
    assert folded.span(1, 2) == (1, 2)
    assert folded.span(1, 3) == (1, 2)
    assert folded.span(3, 4) == (2, 3)


def test_every_folded_character_maps_back_to_the_original_character_it_came_from():
    """Across vanishing, expanding, astral and plain characters in any order, each folded index maps exactly."""
    original = "a\u200b\u200b\ufb01\u00ad\uff14x\U0001d7cf\u2060\ufb03y\U000e0041z\u00bd\u200d"
    folded = fold(original)
    expected = [i for i, ch in enumerate(original) for _ in fold(ch).text or ""]
    assert folded.text == "".join(fold(ch).text for ch in original)
    assert [folded.span(i, i + 1)[0] for i in range(len(folded.text))] == expected
    assert [folded.span(0, i + 1)[1] for i in range(len(folded.text))] == [i + 1 for i in expected]


def test_no_digit_but_an_ascii_one_survives_folding():
    """The detectors' patterns say `[0-9]` (quicker for `re` than `\\d`): that is the same on folded
    text only because every decimal digit of any script, alone or inside a compatibility form
    such as a circled or parenthesised number, folds to ASCII digits."""
    # A character that is no digit and that NFKC leaves alone folds to itself (or to nothing, or
    # to "-"): only the others need folding to be checked.
    changing = (
        chr(code)
        for code in range(0x80, 0x110000)
        if not 0xD800 <= code < 0xE000
        and (chr(code).isdecimal() or unicodedata.normalize("NFKC", chr(code)) != chr(code))
    )
    survivors = [hex(ord(ch)) for ch in changing if any(c.isdecimal() and not c.isascii() for c in fold(ch).text)]
    assert survivors == []


def test_the_quick_check_for_text_that_is_its_own_fold_agrees_with_the_search_for_characters_that_fold():
    """Character by character over all of Unicode: the run `_ITS_OWN_FOLD` takes exactly the characters
    `_FOLDS` does not find, so a whole text is its own fold exactly when the search finds nothing in it."""
    from deskgate.server.redaction import fold as folding

    for codepoint in range(0x110000):
        char = chr(codepoint)
        stays = folding._ITS_OWN_FOLD.fullmatch(char) is not None
        assert stays is (folding._FOLDS.search(char) is None), hex(codepoint)
    assert folding._ITS_OWN_FOLD.fullmatch("") is not None and folding._FOLDS.search("") is None


def test_invisible_characters_that_are_not_format_characters_vanish_too():
    """Variation selectors, combining marks, Hangul fillers, the braille blank and the combining grapheme
    joiner are drawn as nothing: they vanish, and a span across them still covers them in the original."""
    original = "card 4\ufe0f1\u03011\u31641\u28001\u034f1\u115f1\uffa0 done"
    folded = fold(original)
    assert folded.text == "card 4111111 done"
    start, end = folded.span(5, 12)
    assert original[start:end] == original[5:-6]  # from the first digit to the last


def test_latin_look_alikes_from_cyrillic_and_greek_fold_to_latin():
    """A homoglyph cannot hide an address or a key: Cyrillic e and a, Greek omicron read as Latin."""
    assert fold("john@\u0435x\u0430mple.c\u03bfm").text == "john@example.com"
