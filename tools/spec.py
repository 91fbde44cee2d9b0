"""What a tool is: a typed function plus the security metadata the guard chain and the manifest read.

A `ToolSpec` is declared once per tool (see `deskgate.tools.catalogue`). The chain never asks a tool
whether it may run; it reads the spec. A spec that leaves out its scope, its risk or the PII class
of any text field in its output cannot be registered (`Catalogue.register` raises at start-up).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field, create_model
from pydantic.fields import FieldInfo

from deskgate.server.errors import ConfigError
from deskgate.server.outcome import envelope_schema
from deskgate.server.redaction.classes import PiiClass, PiiMap, WrittenBy

if TYPE_CHECKING:
    from deskgate.tools.context import ToolContext

Handler = Callable[["ToolContext", Any], Awaitable[BaseModel]]
Previewer = Callable[["ToolContext", Any], Awaitable[str]]

# The shared argument vocabulary across the catalogue: the chain checks object bindings by these names.
OBJECT_ARGUMENTS = ("customer_id", "account_id", "order_id", "ticket_id", "subscription_id")
_TOOL_NAME = re.compile(r"^[a-z][a-z0-9_]{2,63}$")


class _PiiMark:
    """The PII class of a field, kept on its `FieldInfo` (as `json_schema_extra`) and left out of schemas.

    Schemas stay standard JSON Schema 2020-12: no `x-` keywords. The classes reach clients in the
    manifest and in each tool's `_meta` (`ToolSpec.pii_annotation`), never as schema keywords.
    """

    __slots__ = ("cls",)

    def __init__(self, cls: PiiClass) -> None:
        self.cls = cls

    def __call__(self, schema: dict[str, Any]) -> None:
        """Called by pydantic while it writes the field's schema: it adds nothing."""


def pii(cls: PiiClass, *, written_by: str | None = None, **kwargs: Any) -> Any:
    """A pydantic `Field` that declares the PII class of an output field, and who can write its text:
    "customer", "agent", "system", or "@<field>" (a sibling field names the author). Text someone can
    write reaches the agent inside an envelope naming its author (server/redaction/envelope.py)."""
    info = Field(json_schema_extra=_PiiMark(cls), **kwargs)
    if written_by is not None:
        info.metadata.append(WrittenBy.parse(written_by))  # not in the JSON schema: the manifest is unchanged
    return info


@cache
def _json_schema(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> str:
    """A model's JSON Schema, generated once per process (a model is fixed once defined; generating the
    catalogue's schemas is most of what opening a runtime costs), kept as text so every caller gets its
    own fresh dict."""
    return json.dumps(model.model_json_schema(mode=mode))


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    title: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    handler: Handler
    scope: str
    read_only: bool
    irreversible: bool = False
    idempotent: bool = False          # repeating the same call has no further effect
    reversible_by: str | None = None  # the tool that reverses it, e.g. "undo_action"
    preview: Previewer | None = None  # human-readable effect, required for irreversible tools
    money: bool = False               # pays out (refund, credit): counts against caps and breakers
    customer_output: str | None = None  # the argument whose text the customer reads: audited as final output

    def annotations(self) -> ToolAnnotations:
        """MCP hints derived from the metadata, never written by hand."""
        return ToolAnnotations(
            title=self.title,
            read_only_hint=self.read_only,
            destructive_hint=(not self.read_only) and self.irreversible,
            idempotent_hint=self.read_only or self.idempotent,
            open_world_hint=False,
        )

    def pii_classes(self) -> PiiMap:
        """Dotted output field path -> declared PII class (the redaction map), with who writes each text."""
        return PiiMap(_pii_fields(self.output_model, ""), _written_by(self.output_model, ""))

    def input_pii_classes(self) -> dict[str, PiiClass]:
        """Dotted input field path -> declared PII class (redacts arguments in audit records)."""
        return dict(_pii_fields(self.input_model, ""))

    def pii_annotation(self) -> dict[str, dict[str, str]]:
        """The PII classes as plain JSON, for the manifest and the tool's `_meta`."""
        return {"inputs": {path: cls.value for path, cls in self.input_pii_classes().items()},
                "outputs": {path: cls.value for path, cls in self.pii_classes().items()}}

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema (2020-12) of the arguments, as `tools/list` serves it."""
        schema: dict[str, Any] = json.loads(_json_schema(self.input_model, "validation"))
        return schema

    def output_schema(self) -> dict[str, Any]:
        """The JSON Schema of what a call answers: the `Outcome` envelope, `data` as this tool's output.

        Serialization mode: it describes the JSON actually sent (a `Decimal` is sent as a string).
        """
        return envelope_schema(json.loads(_json_schema(self.output_model, "serialization")))

    def served(self, vocabulary: Mapping[str, Sequence[str]], controls: Mapping[str, tuple[Any, Any]]) -> ToolSpec:
        """This tool as served: each named text argument narrowed to an `enum` of the values given (e.g. its
        `reason_code` to the policy's list), and the guard chain's control arguments that apply to it added,
        as (type, field) (`idempotency_key`, `confirmation_token`, `customer_code`). The served schema says
        it, and the same model refuses the rest."""
        narrowed: dict[str, Any] = dict(controls)
        for name, values in vocabulary.items():
            info = self.input_model.model_fields.get(name)
            if info is None or not values:
                raise ConfigError(f"tool {self.name!r}: no argument {name!r}, or no values for it")
            # Literal[...] keeps the values' order; the description and PII class stay the field's own.
            choice = Literal.__getitem__(tuple(values))
            narrowed[name] = (Annotated[choice, Field(json_schema_extra=info.json_schema_extra,
                                                      description=info.description)],
                              ... if info.is_required() else info.default)
        if not narrowed:
            return self
        model = create_model(self.input_model.__name__, __base__=self.input_model,
                             __module__=self.input_model.__module__, __doc__=self.input_model.__doc__, **narrowed)
        return replace(self, input_model=model)

    def object_arguments(self) -> tuple[str, ...]:
        return tuple(a for a in OBJECT_ARGUMENTS if a in self.input_model.model_fields)

    def validate(self) -> None:
        problems: list[str] = []
        if not _TOOL_NAME.match(self.name):
            problems.append("name must be lower_snake_case, 3-64 characters")
        if not self.scope:
            problems.append("no required scope")
        if not self.description.strip() or not self.title.strip():
            problems.append("no title or description")
        if self.read_only and (self.irreversible or self.money or self.reversible_by):
            problems.append("a read-only tool cannot be irreversible, move money or be reversible")
        if self.irreversible and self.preview is None:
            problems.append("an irreversible tool must describe its effect (preview)")
        if self.irreversible and self.reversible_by:
            problems.append("an irreversible tool cannot name a reversing tool")
        if self.customer_output is not None and (
                self.read_only or self.input_pii_classes().get(self.customer_output) is not PiiClass.FREE_TEXT):
            problems.append("customer_output must name a free-text argument of a write tool")
        problems += [f"output field {p!r}: no PII class declared" for p in _unclassified(self.output_model, "")]
        problems += [f"output field {p!r}: a PII field must be a plain string (masking changes its shape)"
                     for p in _constrained_pii(self.output_model, "")]
        authors = _written_by(self.output_model, "")
        problems += [f"output field {p!r}: free text must say who writes it (pii(..., written_by=...))"
                     for p, c in _pii_fields(self.output_model, "") if c is PiiClass.FREE_TEXT and p not in authors]
        if problems:
            raise ConfigError(f"tool {self.name!r} cannot be registered: " + "; ".join(problems))


@dataclass(slots=True)
class Catalogue:
    """The registry of tools, in a fixed order. Frozen once the server starts."""

    _tools: dict[str, ToolSpec] = field(default_factory=dict)
    _frozen: bool = False

    def register(self, spec: ToolSpec) -> ToolSpec:
        if self._frozen:
            raise ConfigError(f"tool {spec.name!r}: the catalogue is frozen once the server has started")
        if spec.name in self._tools:
            raise ConfigError(f"tool {spec.name!r} is registered twice")
        spec.validate()
        self._tools[spec.name] = spec
        return spec

    def freeze(self) -> Catalogue:
        self._frozen = True
        return self

    def get(self, name: str) -> ToolSpec | None:
        return self._tools.get(name)

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def visible_to(self, scopes: frozenset[str]) -> list[ToolSpec]:
        return [t for t in self._tools.values() if t.scope in scopes]

    def served(self, vocabulary: Callable[[ToolSpec], Mapping[str, Sequence[str]]],
               controls: Callable[[ToolSpec], Mapping[str, tuple[Any, Any]]]) -> Catalogue:
        """A new, unfrozen catalogue of the tools as served (`ToolSpec.served`)."""
        served = Catalogue()
        for spec in self._tools.values():
            served.register(spec.served(vocabulary(spec), controls(spec)))
        return served


# --- output classification walk -------------------------------------------------------------

def _field_pii(info: FieldInfo) -> PiiClass | None:
    extra = info.json_schema_extra
    return extra.cls if isinstance(extra, _PiiMark) else None


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _nested_models(arg)]


def _is_text(annotation: Any) -> bool:
    """True when a field can carry free text (str, or str inside a list/optional); Literals cannot."""
    if annotation is str:
        return True
    if get_origin(annotation) is Literal:
        return False
    return any(_is_text(a) for a in get_args(annotation))


def _pii_fields(model: type[BaseModel], prefix: str) -> Iterator[tuple[str, PiiClass]]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        declared = _field_pii(info)
        if declared is not None:
            yield path, declared
        for nested in _nested_models(info.annotation):
            yield from _pii_fields(nested, f"{path}.")


def _written_by(model: type[BaseModel], prefix: str) -> dict[str, WrittenBy]:
    found: dict[str, WrittenBy] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        found.update((path, m) for m in info.metadata if isinstance(m, WrittenBy))
        for nested in _nested_models(info.annotation):
            found.update(_written_by(nested, f"{path}."))
    return found


def _unclassified(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        nested = _nested_models(info.annotation)
        if nested:
            for m in nested:
                yield from _unclassified(m, f"{path}.")
        elif _is_text(info.annotation) and _field_pii(info) is None:
            yield path


_SHAPE_KEYWORDS = ("pattern", "minLength", "maxLength", "format", "enum", "const")


def _constrained_pii(model: type[BaseModel], prefix: str) -> Iterator[str]:
    """PII fields whose schema constrains their shape: a masked value would fail client validation."""
    properties = json.loads(_json_schema(model, "serialization")).get("properties", {})
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if _field_pii(info) not in (None, PiiClass.NONE):
            node = properties.get(info.serialization_alias or name, {})
            variants = [node, *node.get("anyOf", []), node.get("items", {})]
            if any(k in v for v in variants for k in _SHAPE_KEYWORDS):
                yield path
        for nested in _nested_models(info.annotation):
            yield from _constrained_pii(nested, f"{path}.")
