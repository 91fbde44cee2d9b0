"""Stage 8 of the guard chain (redact), and what the audit stage and the logs use.

    redact_output(data, pii_map, scopes)  the tool result the agent receives: each declared field
                                          shown, masked or hidden per the session's scopes; free
                                          text scanned and marked as customer-supplied
    redact_for_audit(data, pii_map)       what the audit log keeps: everything masked whatever the
                                          scopes, emails/phones/cards/IBANs with a keyed fingerprint
    redact_text(text)                     one string (an error reason, a log line), masked

`pii_map` is `ToolSpec.pii_classes()`: dotted field paths of the output model, lists walked
transparently (`orders.customer_id` applies to every item of `orders`). Every str value, declared
or not, also goes through the detectors (defence in depth: a NONE field that holds an email is
still caught). The result keeps the shape and types of `data`, so it still validates against the
tool's output model: str stays str, None stays None, lists keep their length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass, Visibility
from deskgate.server.redaction.detectors import Detection, detect
from deskgate.server.redaction.envelope import mark_untrusted
from deskgate.server.redaction.fingerprint import FINGERPRINTED, FingerprintKey
from deskgate.server.redaction.fold import fold
from deskgate.server.redaction.masks import HIDDEN, mask
from deskgate.server.redaction.policy import VisibilityPolicy
from deskgate.server.settings import Paths

Replace = Callable[[Detection], str | None]  # None keeps the detected value as it is
_TEXT_CLASSES = (None, PiiClass.NONE, PiiClass.FREE_TEXT)


def _rewrite(text: str, replace: Replace) -> str:
    detections = detect(text)
    if not detections:
        return text
    out: list[str] = []
    pos = 0
    for d in detections:
        replacement = replace(d)
        if replacement is not None:
            out += (text[pos : d.start], replacement)
            pos = d.end
    out.append(text[pos:])
    return "".join(out)


def _mask_detection(d: Detection) -> str:
    return mask(d.cls, d.value, d.kind)


def redact_text(text: str) -> str:
    """Every value the detectors find, masked (for error reasons and log lines)."""
    return _rewrite(text, _mask_detection)


def canonical(cls: PiiClass, value: str) -> str:
    """The form a declared value is fingerprinted in, matching what the detectors produce."""
    folded = fold(value).text.strip()
    if cls is PiiClass.EMAIL:
        return folded.lower()
    if cls is PiiClass.PHONE:
        digits = "".join(c for c in folded if c.isdigit())
        if folded.startswith("+"):
            return f"+{digits}"
        return f"+{digits[2:]}" if digits.startswith("00") else digits
    if cls is PiiClass.CARD:
        return "".join(c for c in folded if c.isdigit())
    return "".join(c for c in folded if c.isalnum()).upper()


def _walk(value: Any, path: str, on_str: Callable[[str, str], str], check: Callable[[Any, str], None]) -> Any:
    if isinstance(value, str):
        return on_str(value, path)
    if isinstance(value, Mapping):
        return {k: _walk(v, f"{path}.{k}" if path else str(k), on_str, check) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, path, on_str, check) for v in value]
    check(value, path)
    return value


class Redactor:
    """Built once at start-up (policy and fingerprint key); every method is a pure function of its input."""

    def __init__(self, policy: VisibilityPolicy, key: FingerprintKey) -> None:
        self._policy = policy
        self._key = key

    @classmethod
    def load(cls, paths: Paths) -> Redactor:
        return cls(VisibilityPolicy.load(), FingerprintKey.load(paths))

    redact_text = staticmethod(redact_text)

    def redact_output(
        self, data: dict[str, Any], pii_map: dict[str, PiiClass], scopes: frozenset[str]
    ) -> dict[str, Any]:
        view = self._policy.view(scopes)

        def in_text(d: Detection) -> str | None:
            seen = view[d.cls]
            return None if seen is Visibility.CLEAR else HIDDEN if seen is Visibility.HIDDEN else _mask_detection(d)

        def on_str(value: str, path: str) -> str:
            cls = pii_map.get(path)
            if cls in _TEXT_CLASSES or view[cls] is Visibility.CLEAR:
                text = _rewrite(value, in_text)
                return mark_untrusted(text) if cls is PiiClass.FREE_TEXT else text
            return HIDDEN if view[cls] is Visibility.HIDDEN else mask(cls, value)

        def check(value: Any, path: str) -> None:
            cls = pii_map.get(path)
            if value is not None and cls not in _TEXT_CLASSES and view[cls] is not Visibility.CLEAR:
                _not_text(path, cls, value)

        return _walk(data, "", on_str, check)

    def redact_for_audit(self, data: dict[str, Any], pii_map: dict[str, PiiClass]) -> dict[str, Any]:
        def masked(cls: PiiClass, shown: str, canonical_value: str) -> str:
            if cls in FINGERPRINTED and canonical_value:
                return f"{shown} {self._key.fingerprint(cls, canonical_value)}"
            return shown

        def in_text(d: Detection) -> str:
            return masked(d.cls, _mask_detection(d), d.value)

        def on_str(value: str, path: str) -> str:
            cls = pii_map.get(path)
            if cls in _TEXT_CLASSES:
                return _rewrite(value, in_text)
            return masked(cls, mask(cls, value), canonical(cls, value))

        def check(value: Any, path: str) -> None:
            cls = pii_map.get(path)
            if value is not None and cls not in _TEXT_CLASSES:
                _not_text(path, cls, value)

        return _walk(data, "", on_str, check)


def _not_text(path: str, cls: PiiClass | None, value: Any) -> None:
    """A value of a declared class that is not text cannot be masked and keep its type: refuse (fail closed)."""
    raise ConfigError(
        f"output field {path!r} declares PII class {cls.value if cls else '?'} but holds a "
        f"{type(value).__name__}: only text fields can carry a PII class (dump the model with mode='json')"
    )
