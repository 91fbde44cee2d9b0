"""Compiled twins of the detectors: the same answers, without the interpreter in the loop.

`detectors.py` holds the reference: every detector written in Python. Each also exists in C, as an
optional extension module `_c_<name>` (`_c_numbers`, `_c_codes`, `_c_secrets`, `_c_emails`,
`_c_ipv6s`; sources in `c/`), which pip builds when the machine has a C compiler and skips when it
has none; so do two per-text steps of `detect` (`_c_text`: fold.py's own-fold check and
`str.lower`, by tables built from the reference). Each twin returns exactly what its Python detector
yields, hit for hit, for every text: tests compare the two on the labelled corpus, on held-out
corpora and on generated texts (`tests/redaction/test_native.py`, `test_c_*.py`). The twins read
the text and decide where values are; every rule that needs more than characters (context words,
issuer ranges, mod-97) is the reference's own Python object, called from C, so there is one copy
of each rule.

`DESKGATE_NATIVE_SCAN=0` makes the server use the Python detectors only (for comparison, or
distrust of compiled code); the result is the same, only slower.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from types import BuiltinFunctionType, ModuleType
from typing import Any

TWINS = ("numbers", "codes", "secrets", "emails", "ipv6s")  # `_numbers` in Python, `_c_numbers` in C
Detector = Callable[[str, str], Iterable[Any]]


def enabled() -> bool:
    return os.environ.get("DESKGATE_NATIVE_SCAN", "1") != "0"


def load(name: str) -> ModuleType | None:
    """The compiled twin `_c_<name>`, or None when it was not built."""
    try:
        return importlib.import_module(f"deskgate.server.redaction._c_{name}")
    except ImportError:
        return None


def twin(name: str, reference: ModuleType) -> Detector | None:
    """The compiled twin's scan, configured with the reference module's rules; None when not built."""
    module = load(name)
    if module is None:
        return None
    module.configure(reference)
    return module.scan


def choose(reference: ModuleType, detectors: tuple[Detector, ...]) -> tuple[Detector, ...]:
    """`detectors` with each one that has a built twin replaced by it (unless disabled)."""
    if not enabled():
        return detectors
    chosen = []
    for detector in detectors:
        name = _name(detector)
        compiled = twin(name, reference) if name in TWINS else None
        chosen.append(compiled or detector)
    return tuple(chosen)


def text_twins(reference: ModuleType, fallback: tuple[Callable[[str], bool], Callable[[str], str]]
               ) -> tuple[Callable[[str], bool], Callable[[str], str]]:
    """`_c_text`'s (own_fold, lower), configured from fold.py, or `fallback` when it is not built (or disabled)."""
    module = load("text") if enabled() else None
    if module is None:
        return fallback
    module.configure(reference)
    return module.own_fold, module.lower


def describe(detectors: tuple[Detector, ...]) -> dict[str, str]:
    """Which implementation runs each detector ("c" or "python"): recorded when the server starts."""
    return {_name(d): "c" if isinstance(d, BuiltinFunctionType) else "python" for d in detectors}


def _name(detector: Detector) -> str:
    if isinstance(detector, BuiltinFunctionType):  # a twin's `scan`: named by its module, `..._c_<name>`
        return detector.__self__.__name__.rsplit("._c_", 1)[1]
    return detector.__name__.lstrip("_")
