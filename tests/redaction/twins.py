"""What the compiled twins of the detectors are compared on (`server/redaction/native.py`).

A twin must return exactly what its Python detector yields (`list(detector(view, low))`), for every
text `detect` could hand it: `same` is that comparison, used by every twin test. The views here are
built the way `detect` builds them: the folded text and its lower-cased twin of the same length.

The twins are optional builds: where one is not built the comparison skips, saying so - unless
`DESKGATE_REQUIRE_NATIVE=1` (set by `.ci/run`, whose machine has a compiler), where a missing twin
fails the run instead of skipping it silently.
"""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Iterator
from types import ModuleType

import pytest

from deskgate.server.redaction import detectors, native
from deskgate.server.redaction.fold import fold
from tests.data import corpus, make_corpus


def compiled(name: str) -> ModuleType:
    """The configured twin `_c_<name>`; skips (or fails under DESKGATE_REQUIRE_NATIVE=1) when not built."""
    module = native.load(name)
    if module is None:
        if os.environ.get("DESKGATE_REQUIRE_NATIVE") == "1":
            pytest.fail(f"the compiled twin _c_{name} is not built (DESKGATE_REQUIRE_NATIVE=1)")
        pytest.skip(f"the compiled twin _c_{name} is not built here (no C compiler at install)")
    module.configure(detectors)
    return module


def low_of(text: str) -> str:
    """`low` as `detect` builds it: the lower-cased twin of `text`, of the same length."""
    low = text.lower()
    return low if len(low) == len(text) else "".join(c.lower()[:1] for c in text)


def views(text: str) -> tuple[str, str]:
    """(folded text, lower-cased twin) as `detect` hands them to every detector."""
    view = fold(text).text
    return view, low_of(view)


def reference(name: str, text: str) -> list:
    """What the Python detector `_<name>` yields on `text`'s views."""
    return list(getattr(detectors, f"_{name}")(*views(text)))


def same(module: ModuleType, name: str, text: str, low: str | None = None) -> list:
    """The twin's hits on (text, low) - on `views(text)` when `low` is None - checked against the reference's.

    Equal lists, each hit a tuple whose class is the very PiiClass member the reference yields, with
    `0 <= start < end <= len(scanned text)`. Returns the hits.
    """
    scanned, low = views(text) if low is None else (text, low)
    expected = list(getattr(detectors, f"_{name}")(scanned, low))
    got = module.scan(scanned, low)
    where = f"_c_{name} on {scanned[:300]!r}{'...' if len(scanned) > 300 else ''}"
    assert got == expected, where
    assert all(g[0] is e[0] for g, e in zip(got, expected, strict=True)), where  # the member, not an equal
    assert all(type(g) is tuple and 0 <= g[2] < g[3] <= len(scanned) for g in got), where
    return got


@functools.cache
def corpus_texts() -> tuple[str, ...]:
    """The labelled corpus, two held-out corpora, and 2 KB tickets joined from corpus texts."""
    texts = [r["text"] for r in corpus.load()]
    for seed in (1, 2):
        texts += [str(r["text"]) for r in make_corpus.generate(seed)]
    texts += ["\n".join(texts[i : i + 25]) for i in range(0, 2000, 25)]
    return tuple(texts)


def mutations(texts: tuple[str, ...], count: int, seed: int = 7) -> Iterator[str]:
    """Corpus texts with characters dropped, doubled, swapped for separators, digits or letters."""
    rng = random.Random(seed)  # reproducible: a failure names the same texts every run
    alphabet = "0123456789 -.()+/:=@_#\n;!?abcxyzABCXYZé\u00a0"
    for _ in range(count):
        chars = list(rng.choice(texts))
        for _ in range(rng.randint(1, 6)):
            if not chars:
                break
            i = rng.randrange(len(chars))
            op = rng.randrange(4)
            if op == 0:
                del chars[i]
            elif op == 1:
                chars.insert(i, chars[i])
            else:
                chars[i] = rng.choice(alphabet)
        yield "".join(chars)
