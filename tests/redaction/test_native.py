"""The compiled twins change how fast redaction runs, never what it finds (`server/redaction/native.py`)."""

from __future__ import annotations

import os

import pytest

from deskgate.server.redaction import detectors, native
from deskgate.server.redaction.detectors import detect
from tests.redaction.twins import corpus_texts, mutations


def _built() -> list[str]:
    built = [name for name in native.TWINS if native.load(name) is not None]
    if os.environ.get("DESKGATE_REQUIRE_NATIVE") == "1":
        assert built == list(native.TWINS), f"DESKGATE_REQUIRE_NATIVE=1 but only {built} are built"
    if not built:
        pytest.skip("no compiled twin is built here (no C compiler at install): the Python detectors run alone")
    return built


def test_every_built_twin_replaces_its_python_detector_and_the_start_record_says_so():
    built = _built()
    chosen = native.choose(detectors, detectors.PYTHON_DETECTORS)
    described = native.describe(chosen)
    assert [name for name, how in described.items() if how == "c"] == [n for n in described if n in built]
    assert set(described) == {"secrets", "emails", "codes", "numbers", "ipv6s"}
    assert detectors.scanners() == described


def test_the_python_detectors_can_be_forced(monkeypatch):
    """DESKGATE_NATIVE_SCAN=0: an operator who distrusts compiled code runs the reference alone."""
    monkeypatch.setenv("DESKGATE_NATIVE_SCAN", "0")
    chosen = native.choose(detectors, detectors.PYTHON_DETECTORS)
    assert chosen == detectors.PYTHON_DETECTORS
    assert set(native.describe(chosen).values()) == {"python"}


def test_detect_finds_the_same_with_and_without_the_twins(monkeypatch):
    """Whole `detect`, spans mapped back to the original included: every corpus text and 5,000 mutations."""
    _built()
    texts = list(corpus_texts()) + list(mutations(corpus_texts(), 5000, seed=11))
    with_twins = [detect(text) for text in texts]
    monkeypatch.setattr(detectors, "_DETECTORS", detectors.PYTHON_DETECTORS)
    assert [detect(text) for text in texts] == with_twins
    assert sum(map(len, with_twins)) > 10_000  # the comparison saw plenty of values, not only empty answers
