"""Who sees what: the visibility of each PII class for a session's scopes (`config/redaction.toml`).

Deny by default: a class the file leaves out is masked, a scope only ever widens what a session
sees, and the classes in `NEVER_CLEAR` cannot be made clear by any file or scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from deskgate.config import load_model, packaged
from deskgate.scopes.catalogue import unknown_scopes
from deskgate.server.redaction.classes import PiiClass, Visibility

NEVER_CLEAR = frozenset({PiiClass.CARD, PiiClass.IBAN, PiiClass.NATIONAL_ID, PiiClass.SECRET})
# Classes a whole field is shown, masked or hidden by; NONE and FREE_TEXT are handled by detectors.
VISIBILITY_CLASSES = frozenset(PiiClass) - {PiiClass.NONE, PiiClass.FREE_TEXT}
_MAX_VIEWS = 1024
_ORDER = {Visibility.HIDDEN: 0, Visibility.MASKED: 1, Visibility.CLEAR: 2}


class ClassRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Visibility = Visibility.MASKED
    masked: tuple[str, ...] = ()
    clear: tuple[str, ...] = ()

    @field_validator("masked", "clear")
    @classmethod
    def _known_scopes(cls, scopes: tuple[str, ...]) -> tuple[str, ...]:
        unknown = unknown_scopes(set(scopes))
        if unknown:
            raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
        return scopes


class RedactionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: dict[PiiClass, ClassRule] = {}

    @model_validator(mode="after")
    def _never_clear(self) -> RedactionConfig:
        for cls, rule in self.classes.items():
            if cls not in VISIBILITY_CLASSES:
                raise ValueError(f"{cls.value}: not a visibility class (it is always scanned by the detectors)")
            if cls in NEVER_CLEAR and (rule.clear or rule.default is Visibility.CLEAR):
                raise ValueError(f"{cls.value}: can never be clear")
        return self


class VisibilityPolicy:
    """Compiled once at start-up; `view(scopes)` is what one call's redaction reads."""

    def __init__(self, config: RedactionConfig) -> None:
        self._rules = {cls: config.classes.get(cls, ClassRule()) for cls in VISIBILITY_CLASSES}
        # Sessions share a handful of scope sets: each one's view is worked out once, on first use.
        self._views: dict[frozenset[str], Mapping[PiiClass, Visibility]] = {}

    @classmethod
    def load(cls, path: Path | None = None) -> VisibilityPolicy:
        return cls(load_model(path or packaged("redaction.toml"), RedactionConfig))

    def visibility(self, cls: PiiClass, scopes: frozenset[str]) -> Visibility:
        rule = self._rules[cls]
        seen = rule.default
        if any(s in scopes for s in rule.masked) and _ORDER[seen] < _ORDER[Visibility.MASKED]:
            seen = Visibility.MASKED
        if any(s in scopes for s in rule.clear) and cls not in NEVER_CLEAR:
            seen = Visibility.CLEAR
        return seen

    def view(self, scopes: frozenset[str]) -> Mapping[PiiClass, Visibility]:
        view = self._views.get(scopes)
        if view is None:
            view = MappingProxyType({cls: self.visibility(cls, scopes) for cls in VISIBILITY_CLASSES})
            if len(self._views) >= _MAX_VIEWS:
                self._views.clear()  # many distinct scope sets: start over rather than grow without bound
            self._views[scopes] = view
        return view
