"""Labelled redaction corpora: generators, frozen texts and their scoring (`bench.redaction`, `tests/redaction`).

    make_corpus.py            the tuning corpus (redaction_corpus.jsonl): the detectors were developed on it
    make_heldout.py           the held-out corpus (heldout_corpus.jsonl): written independently, never tuned on
    make_third.py             a second held-out corpus (third_corpus.jsonl): written apart from both, never tuned on
    score.py                  loading and scoring any of them
"""
