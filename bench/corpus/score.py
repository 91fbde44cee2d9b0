"""Loading and scoring the labelled redaction corpus; shared by `test_corpus.py` and `bench/redaction.py`.

A gold span counts as found (recall) when predictions of the same label cover every character of
it that is not white space or an invisible format character; "exact" recall needs the same span.
A prediction is correct (precision) when it overlaps a gold span of its label. A hard-negative or
prose text counts as flagged when anything at all is predicted in it.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).with_name("redaction_corpus.jsonl")  # the tuning corpus
HELDOUT = Path(__file__).with_name("heldout_corpus.jsonl")  # never tuned on (make_heldout.py)
THIRD = Path(__file__).with_name("third_corpus.jsonl")  # a second held-out set, never tuned on (make_third.py)
LABELS = ("email", "phone", "card", "iban", "ssn", "nino", "ip", "secret")
NEGATIVE_SUBSETS = ("negative", "prose", "extra_negative")

Span = tuple[str, int, int]  # (label, start, end)
Predict = Callable[[str], Iterable[Span]]


def load(path: Path = CORPUS) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@dataclass
class Tally:
    gold: int = 0
    found: int = 0
    exact: int = 0
    predicted: int = 0
    correct: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def exact_recall(self) -> float:
        return self.exact / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


@dataclass
class Score:
    per_label: dict[str, Tally] = field(default_factory=lambda: {label: Tally() for label in LABELS})
    evasion: Tally = field(default_factory=Tally)
    negatives: int = 0
    negatives_flagged: int = 0

    @property
    def negative_rate(self) -> float:
        return self.negatives_flagged / self.negatives if self.negatives else 0.0


def covered(text: str, start: int, end: int, spans: list[Span], label: str) -> bool:
    marks = bytearray(end - start)
    for lb, s, e in spans:
        if lb == label:
            for i in range(max(s, start), min(e, end)):
                marks[i - start] = 1
    return all(
        marks[i - start] or text[i].isspace() or unicodedata.category(text[i]) == "Cf" for i in range(start, end)
    )


def score(records: list[dict], predict: Predict, labels: Iterable[str] = LABELS) -> Score:
    wanted = set(labels)
    result = Score()
    for record in records:
        text = record["text"]
        predicted = [p for p in predict(text) if p[0] in wanted]
        gold = [(g["label"], g["start"], g["end"]) for g in record["spans"] if g["label"] in wanted]
        if record["subset"] in NEGATIVE_SUBSETS:
            result.negatives += 1
            result.negatives_flagged += bool(predicted)
        for label, start, end in gold:
            found = covered(text, start, end, predicted, label)
            exact = (label, start, end) in predicted
            for tally in (result.per_label[label], *([result.evasion] if record["subset"] == "evasion" else [])):
                tally.gold += 1
                tally.found += found
                tally.exact += exact
        for label, start, end in predicted:
            tally = result.per_label[label]
            tally.predicted += 1
            tally.correct += any(lb == label and start < e and s < end for lb, s, e in gold)
    return result


def label_of(kind: str, cls: str) -> str:
    """The corpus label of one of deskgate's detections (its `kind` and `cls.value`)."""
    if cls == "secret":
        return "secret"
    return "ip" if kind in ("ipv4", "ipv6") else kind


def predict_deskgate(text: str) -> list[Span]:
    from deskgate.server.redaction.detectors import detect

    return [(label_of(d.kind, d.cls.value), d.start, d.end) for d in detect(text)]


def score_mutations(records: Iterable[dict], predict: Predict) -> dict[str, Tally]:
    """Recall on the mutated value of each record (`mutate.every_mutation`), per mutation kind and per label
    (keys "kind:<kind>" and "label:<label>")."""
    tallies: dict[str, Tally] = {}
    for record in records:
        span = record["spans"][record["mutated"]]
        label, start, end = span["label"], span["start"], span["end"]
        found = covered(record["text"], start, end, [p for p in predict(record["text"]) if p[0] == label], label)
        for key in (f"kind:{record['subset'].split(':', 1)[1]}", f"label:{label}"):
            tally = tallies.setdefault(key, Tally())
            tally.gold += 1
            tally.found += found
    return tallies
