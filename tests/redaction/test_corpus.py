"""The labelled corpus: reproducible from its generator, and the detectors hold their measured quality on it."""

from __future__ import annotations

import pytest

from bench.corpus import make_corpus, make_heldout, make_third
from bench.corpus import score as corpus

# Floors set just below what the detectors achieve (see BENCHMARKS.md): a drop fails the build.
RECALL_FLOOR = {"email": 0.995, "phone": 0.99, "card": 0.995, "iban": 0.995, "ssn": 0.99, "nino": 0.995,
                "ip": 0.995, "secret": 0.995}
PRECISION_FLOOR = dict.fromkeys(RECALL_FLOOR, 0.995)
EVASION_RECALL_FLOOR = 0.99
NEGATIVES_FLAGGED_CEILING = 0.005


@pytest.fixture(scope="module")
def score():
    return corpus.score(corpus.load(), corpus.predict_deskgate)


def test_the_committed_corpus_is_exactly_what_the_generator_produces():
    """Regenerating gives the same bytes: the corpus is reviewable code, not an opaque download."""
    assert make_corpus.render(make_corpus.generate()) == corpus.CORPUS.read_text(encoding="utf-8")


def test_the_committed_held_out_corpus_is_exactly_what_its_own_generator_produces():
    """The held-out corpus comes from a second, independently written generator, frozen the same way."""
    assert make_heldout.render(make_heldout.generate()) == corpus.HELDOUT.read_text(encoding="utf-8")


def test_the_corpus_is_large_varied_and_labelled_across_all_classes():
    """At least 2,000 texts, six or more languages, every label in hundreds, evasions and negatives included."""
    records = corpus.load()
    assert len(records) >= 2000
    assert {r["lang"] for r in records} >= {"en", "de", "fr", "es", "nl", "it"}
    subsets = {s: sum(r["subset"] == s for r in records) for s in ("plain", "evasion", "negative", "prose")}
    assert subsets["evasion"] >= 400 and subsets["negative"] >= 500
    labels = [s["label"] for r in records for s in r["spans"]]
    assert all(labels.count(label) >= 300 for label in corpus.LABELS)
    assert all(r["text"][s["start"] : s["end"]].strip() for r in records for s in r["spans"])


@pytest.mark.parametrize("label", list(RECALL_FLOOR))
def test_per_class_recall_and_precision_stay_above_their_floors(score, label):
    """Each structured class keeps its measured recall and precision."""
    tally = score.per_label[label]
    assert tally.recall >= RECALL_FLOOR[label], f"{label} recall {tally.recall:.4f}"
    assert tally.precision >= PRECISION_FLOOR[label], f"{label} precision {tally.precision:.4f}"


def test_disguised_values_are_still_found(score):
    """Full-width, zero-width, odd separators, other-script digits, spelled-out emails: recall on evasions."""
    assert score.evasion.recall >= EVASION_RECALL_FLOOR, f"evasion recall {score.evasion.recall:.4f}"


def test_hard_negatives_are_left_alone(score):
    """Order ids, tracking numbers, prices, dates, invalid numbers and versions are (almost) never flagged."""
    assert score.negative_rate <= NEGATIVES_FLAGGED_CEILING, f"negatives flagged {score.negative_rate:.4f}"


# The held-out corpus was never tuned on: these floors are what the detectors measured on it when it
# was first scored after the rework (BENCHMARKS.md), the targets where they are met.
HELDOUT_RECALL_FLOOR = {"email": 0.99, "phone": 0.985, "card": 0.99, "iban": 0.99, "ssn": 0.99, "nino": 0.99,
                        "ip": 0.99, "secret": 0.985}
HELDOUT_EVASION_RECALL_FLOOR = 0.97
HELDOUT_ALTERED_CEILING = 0.02


@pytest.fixture(scope="module")
def heldout_score():
    return corpus.score(corpus.load(corpus.HELDOUT), corpus.predict_deskgate)


@pytest.mark.parametrize("label", list(HELDOUT_RECALL_FLOOR))
def test_on_text_it_was_not_tuned_on_each_class_keeps_its_recall(heldout_score, label):
    """Other templates, languages, countries' formats and value sources: recall per class holds."""
    tally = heldout_score.per_label[label]
    assert tally.recall >= HELDOUT_RECALL_FLOOR[label], f"{label} held-out recall {tally.recall:.4f}"


def test_on_text_it_was_not_tuned_on_the_evasion_classes_are_closed(heldout_score):
    """Other separators, glued labels, invisible characters, mixed-case IBANs, spelled, encoded or homoglyph
    emails, lower-cased keys and Token headers, none of them seen in tuning, are found."""
    assert heldout_score.evasion.recall >= HELDOUT_EVASION_RECALL_FLOOR, f"{heldout_score.evasion.recall:.4f}"


def test_on_text_it_was_not_tuned_on_look_alikes_and_clean_texts_are_left_alone(heldout_score):
    """Four-part versions, SSN-shaped order numbers, failing IBAN placeholders, tracking and SKU numbers and
    clean support texts: at most 2% of them are altered."""
    assert heldout_score.negative_rate <= HELDOUT_ALTERED_CEILING, f"altered {heldout_score.negative_rate:.4f}"


# The third corpus (`make_third.py`) was frozen before anything was measured on it and never tuned on:
# these floors are what the detectors measured on it then. NINO misses are NINOs written with `/`, `_`
# or ` . ` between their groups; the look-alikes flagged are impossible dotted quads read as phones and
# Amazon-style order ids whose 17 digits happen to pass Luhn.
THIRD_RECALL_FLOOR = {**dict.fromkeys(RECALL_FLOOR, 0.99), "nino": 0.98}
THIRD_EVASION_RECALL_FLOOR = 0.99
THIRD_ALTERED_CEILING = 0.02


@pytest.fixture(scope="module")
def third_score():
    return corpus.score(corpus.load(corpus.THIRD), corpus.predict_deskgate)


def test_the_committed_third_corpus_is_exactly_what_its_own_generator_produces():
    """The third corpus comes from a third, independently written generator, frozen the same way."""
    assert make_third.render(make_third.generate()) == corpus.THIRD.read_text(encoding="utf-8")


@pytest.mark.parametrize("label", list(THIRD_RECALL_FLOOR))
def test_on_a_second_text_set_it_was_not_tuned_on_each_class_keeps_its_recall(third_score, label):
    """CRM exports, chat transcripts, logs; other countries' phones and IBANs, other groupings: recall holds."""
    tally = third_score.per_label[label]
    assert tally.recall >= THIRD_RECALL_FLOOR[label], f"{label} third-corpus recall {tally.recall:.4f}"


def test_on_a_second_text_set_it_was_not_tuned_on_evasions_are_found(third_score):
    """No-break and thin spaces, full-width and Arabic-Indic digits, joiners inside values, glued labels."""
    assert third_score.evasion.recall >= THIRD_EVASION_RECALL_FLOOR, f"{third_score.evasion.recall:.4f}"


def test_on_a_second_text_set_it_was_not_tuned_on_look_alikes_are_left_alone(third_score):
    """UUIDs, hashes, amounts, times, failing checksums, reserved SSN areas, impossible addresses: <= 2% altered."""
    assert third_score.negative_rate <= THIRD_ALTERED_CEILING, f"altered {third_score.negative_rate:.4f}"
