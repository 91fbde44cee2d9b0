"""Stage 8 of the guard chain (redact), and what the audit stage and the logs use.

    redact_output(data, pii_map, scopes)  the tool result the agent receives: each declared field
                                          shown, masked or hidden per the session's scopes; free
                                          text scanned; text someone can write, when shown, marked
                                          as data written by its author (customer, agent, system)
    redact_for_audit(data, pii_map)       what the audit log keeps: everything masked whatever the
                                          scopes, emails/phones/cards/IBANs with a keyed fingerprint
    redact_text(text)                     one string (an error reason, a log line), masked

`pii_map` is `ToolSpec.pii_classes()` (a `PiiMap`: its `authors` say who writes which field; a plain
dict declares no author, and its FREE_TEXT is then marked as the customer's): dotted field paths of
the output model, lists walked transparently (`orders.customer_id` applies to every item of
`orders`). Every str value, declared
or not, also goes through the detectors (defence in depth: a NONE field that holds an email is
still caught). The result keeps the shape and types of `data`, so it still validates against the
tool's output model: str stays str, None stays None, lists keep their length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass, PiiMap, Visibility, WrittenBy
from deskgate.server.redaction.detectors import Detection, detect
from deskgate.server.redaction.envelope import mark_untrusted
from deskgate.server.redaction.fingerprint import FINGERPRINTED, FingerprintKey
from deskgate.server.redaction.fold import fold
from deskgate.server.redaction.masks import HIDDEN, mask, mask_canonical
from deskgate.server.redaction.policy import VisibilityPolicy
from deskgate.server.settings import Paths

Replace = Callable[[Detection], str | None]  # None keeps the detected value as it is
_TEXT_CLASSES = (None, PiiClass.NONE, PiiClass.FREE_TEXT)
Check = Callable[[Any, "_Field"], None]  # called with each value that is neither text, a container nor None
OnStr = Callable[[str, "_Field", Mapping[str, Any]], str]  # a text value, its field, the record holding it
_CUSTOMER = WrittenBy(author="customer")


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
    return mask_canonical(d.cls, d.value, d.kind)  # a detection's value is folded already


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


class _Field(NamedTuple):
    """One key of an output model in a walk plan: its declared class, who writes it, what is declared below it."""

    cls: PiiClass | None
    path: str  # dotted, for error messages
    children: dict[Any, _Field]
    written_by: WrittenBy | None = None


_UNDECLARED = _Field(None, "", {})  # a key no path of the map goes through: nothing below it is declared


def _plan(pii_map: Mapping[str, PiiClass]) -> _Field:
    """The map as a tree of keys, so a walk looks each key up once instead of building its dotted path."""
    root = _Field(None, "", {})
    authors = pii_map.authors if isinstance(pii_map, PiiMap) else {}
    for path, cls in pii_map.items():
        node = root
        keys = path.split(".")
        for depth, key in enumerate(keys, 1):
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Field(None, ".".join(keys[:depth]), {})
            if depth == len(keys):
                written_by = authors.get(path, _CUSTOMER if cls is PiiClass.FREE_TEXT else None)
                child = node.children[key] = child._replace(cls=cls, written_by=written_by)
            node = child
    return root


def _walk(value: Any, field: _Field, on_str: OnStr, check: Check, record: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return on_str(value, field, record)
    if type(value) is dict or isinstance(value, Mapping):  # a dumped model holds dicts: skip the ABC check
        children = field.children
        out = {}
        for k, v in value.items():
            child = children.get(k, _UNDECLARED)
            # Most fields are text: handled here, one recursive call fewer each.
            out[k] = on_str(v, child, value) if type(v) is str else _walk(v, child, on_str, check, value)
        return out
    if isinstance(value, list | tuple):
        return [on_str(v, field, record) if type(v) is str else _walk(v, field, on_str, check, record)
                for v in value]
    if value is not None:
        check(value, field)
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
        self, data: dict[str, Any], pii_map: dict[str, PiiClass], scopes: frozenset[str],
        supplied: Mapping[tuple[PiiClass, str], frozenset[str]] | None = None,
    ) -> dict[str, Any]:
        """`data` as `scopes` may see it. `supplied`: (class, field name) -> values the caller itself gave in
        this call (`supplied_values`); a field of that class and name holding exactly such a value is shown,
        so that an agent can read back what it just wrote, and the same value stays masked everywhere else."""
        view = self._policy.view(scopes)
        echoed = supplied or {}

        def given(cls: PiiClass | None, field: _Field, value: str) -> bool:
            return bool(echoed) and cls is not None and value in echoed.get((cls, field.path.rpartition(".")[2]), ())

        def in_text(d: Detection) -> str | None:
            seen = view[d.cls]
            return None if seen is Visibility.CLEAR else HIDDEN if seen is Visibility.HIDDEN else _mask_detection(d)

        def on_str(value: str, field: _Field, record: Mapping[str, Any]) -> str:
            cls = field.cls
            if cls in _TEXT_CLASSES or view[cls] is Visibility.CLEAR or given(cls, field, value):  # shown
                text = value if given(cls, field, value) else _rewrite(value, in_text)  # the caller's own: as given
                return text if field.written_by is None else mark_untrusted(text, field.written_by.of(record))
            return HIDDEN if view[cls] is Visibility.HIDDEN else mask(cls, value)

        def check(value: Any, field: _Field) -> None:
            if field.cls not in _TEXT_CLASSES and view[field.cls] is not Visibility.CLEAR:
                _not_text(field, value)

        return _walk(data, _plan(pii_map), on_str, check, data)

    def redact_for_audit(self, data: dict[str, Any], pii_map: dict[str, PiiClass]) -> dict[str, Any]:
        def masked(cls: PiiClass, shown: str, canonical_value: str) -> str:
            if cls in FINGERPRINTED and canonical_value:
                return f"{shown} {self._key.fingerprint(cls, canonical_value)}"
            return shown

        def in_text(d: Detection) -> str:
            return masked(d.cls, _mask_detection(d), d.value)

        def on_str(value: str, field: _Field, record: Mapping[str, Any]) -> str:
            cls = field.cls
            if cls in _TEXT_CLASSES:
                return _rewrite(value, in_text)
            return masked(cls, mask(cls, value), canonical(cls, value))

        def check(value: Any, field: _Field) -> None:
            if field.cls not in _TEXT_CLASSES:
                _not_text(field, value)

        return _walk(data, _plan(pii_map), on_str, check, data)


def supplied_values(arguments: Mapping[str, Any], pii_map: Mapping[str, PiiClass]
                    ) -> dict[tuple[PiiClass, str], frozenset[str]]:
    """The personal data a caller gave in `arguments` (validated, dumped as JSON), by (class, field name), for
    `Redactor.redact_output(supplied=...)`. Secrets are never echoed; free text is shown anyway."""
    found: dict[tuple[PiiClass, str], set[str]] = {}
    for path, cls in pii_map.items():
        if cls in (PiiClass.NONE, PiiClass.SECRET) or cls in _TEXT_CLASSES:
            continue
        value: Any = arguments
        for key in path.split("."):
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            found.setdefault((cls, path.rpartition(".")[2]), set()).add(value)
    return {k: frozenset(v) for k, v in found.items()}


def _not_text(field: _Field, value: Any) -> None:
    """A value of a declared class that is not text cannot be masked and keep its type: refuse (fail closed)."""
    raise ConfigError(
        f"output field {field.path!r} declares PII class {field.cls.value if field.cls else '?'} but holds a "
        f"{type(value).__name__}: only text fields can carry a PII class (dump the model with mode='json')"
    )
