"""The canonical tool manifest: everything a security review needs, exactly as the server serves it.

One dict per deployment, built from plain inputs (the catalogue, a policy lookup, the roles and the
scope catalogue) so that it can be rebuilt anywhere and compared byte for byte:

    {"format": ..., "tools": {name: entry}, "scopes": {scope: text}, "roles": {role: [scope]},
     "policy": {the policy settings no tool entry carries},
     "manifest_hash": sha256 of the RFC 8785 canonical JSON of everything else}

A tool entry holds what `tools/list` serves (title, description, input schema, enveloped output
schema, annotations) next to what the guard chain enforces (scope, read/write, irreversible, money,
reversibility, the policy entry, PII classes of inputs and outputs), the roles that reach the tool,
its risk level and the scanner's flags. Every value is plain JSON: a Decimal becomes its string,
a non-finite number or an unknown type is a configuration error, never a guess.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

import rfc8785

from deskgate.server.errors import ConfigError
from deskgate.server.manifest.scan import scan_tool
from deskgate.tools.spec import ToolSpec

FORMAT = "deskgate-manifest/1"
HASH_KEY = "manifest_hash"
_MAX_DEPTH = 64


class Risk(StrEnum):
    """Severity, shared by tools (how much harm a call can do) and by manifest changes."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for the most severe: sorting by rank puts the riskiest first."""
        return list(Risk).index(self)


def tool_risk(entry: Mapping[str, Any]) -> Risk:
    """Irreversible money writes first, then irreversible or money writes, other writes, reads last."""
    if entry["read_only"]:
        return Risk.LOW
    if entry["irreversible"] and entry["money"]:
        return Risk.CRITICAL
    if entry["irreversible"] or entry["money"]:
        return Risk.HIGH
    return Risk.MEDIUM


def access_kind(entry: Mapping[str, Any]) -> str:
    """'read', 'write', or the write's weight: 'irreversible money write', 'money write', ..."""
    if entry["read_only"]:
        return "read"
    return " ".join([*(w for w in ("irreversible", "money") if entry[w]), "write"])


def build_manifest(
    catalogue: Iterable[ToolSpec],
    *,
    policy_for: Callable[[str], Mapping[str, Any]],
    roles: Mapping[str, Iterable[str]],
    scopes: Mapping[str, str],
    policy: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of every tool in `catalogue`, with its `manifest_hash`; `policy` holds the policy's
    settings that no tool entry carries, so that any change of the policy changes the hash."""
    scope_table = {str(name): str(text) for name, text in scopes.items()}
    role_table = _roles(roles, scope_table)
    tools = {spec.name: _tool_entry(spec, policy_for, role_table, scope_table) for spec in catalogue}
    manifest: dict[str, Any] = {"format": FORMAT, "tools": tools, "scopes": scope_table, "roles": role_table}
    if policy is not None:
        manifest["policy"] = _plain(dict(policy), "policy", 0)
    manifest[HASH_KEY] = manifest_hash(manifest)
    return manifest


def canonical_bytes(manifest: Any) -> bytes:
    """RFC 8785 canonical JSON: sorted keys, one spelling per number, no whitespace."""
    try:
        return rfc8785.dumps(manifest)
    except rfc8785.CanonicalizationError as exc:
        raise ConfigError(f"the manifest is not plain JSON: {exc}") from None


def manifest_hash(manifest: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical form of everything but the hash itself."""
    body = {k: v for k, v in manifest.items() if k != HASH_KEY}
    return hashlib.sha256(canonical_bytes(body)).hexdigest()


def _roles(roles: Mapping[str, Iterable[str]], scopes: Mapping[str, str]) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for role, granted in roles.items():
        if isinstance(granted, str):
            raise ConfigError(f"role {role!r}: scopes must be a list of names, not one string")
        names = sorted(set(granted))
        unknown = [s for s in names if s not in scopes]
        if unknown:
            raise ConfigError(f"role {role!r} grants scopes that are not in the catalogue: {', '.join(unknown)}")
        table[str(role)] = names
    return table


def _tool_entry(
    spec: ToolSpec,
    policy_for: Callable[[str], Mapping[str, Any]],
    roles: Mapping[str, list[str]],
    scopes: Mapping[str, str],
) -> dict[str, Any]:
    if spec.scope not in scopes:
        raise ConfigError(f"tool {spec.name!r} requires scope {spec.scope!r}, which is not in the catalogue")
    policy = policy_for(spec.name)
    if not isinstance(policy, Mapping):
        raise ConfigError(f"tool {spec.name!r}: the policy entry must be a table, not {type(policy).__name__}")
    input_schema = spec.input_schema()
    output_schema = spec.output_schema()
    entry: dict[str, Any] = {
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "input_schema": input_schema,
        "output_schema": output_schema,
        "annotations": spec.annotations().model_dump(mode="json", by_alias=True, exclude_none=True),
        "scope": spec.scope,
        "read_only": spec.read_only,
        "irreversible": spec.irreversible,
        "idempotent": spec.idempotent,
        "money": spec.money,
        "reversible_by": spec.reversible_by,
        "customer_output": spec.customer_output,
        "policy": policy,
        "pii": spec.pii_annotation(),
        "roles": sorted(role for role, granted in roles.items() if spec.scope in granted),
        "flags": [asdict(f) for f in scan_tool(spec.title, spec.description, input_schema, output_schema, policy)],
    }
    entry["risk"] = tool_risk(entry).value
    plain: dict[str, Any] = _plain(entry, f"tool {spec.name!r}", 0)
    return plain


def _plain(value: Any, where: str, depth: int) -> Any:
    """`value` as plain JSON, or a ConfigError naming where it is not."""
    if depth > _MAX_DEPTH:
        raise ConfigError(f"{where}: nested too deeply for a manifest")
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: a number that is not finite")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ConfigError(f"{where}: a number that is not finite")
        return str(value)  # exact; a float would not be
    if isinstance(value, Enum):
        return _plain(value.value, where, depth + 1)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where}: a key that is not a string ({key!r})")
            out[key] = _plain(item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, where, depth + 1) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(item, where, depth + 1) for item in value), key=canonical_bytes)
    raise ConfigError(f"{where}: {type(value).__name__} is not plain JSON")


_TOOL_KEYS = {
    "name": str, "title": str, "description": str, "input_schema": Mapping, "output_schema": Mapping,
    "annotations": Mapping, "scope": str, "read_only": bool, "irreversible": bool, "idempotent": bool,
    "money": bool, "policy": Mapping, "pii": Mapping, "roles": list, "flags": list, "risk": str,
}


def require_manifest(manifest: Any, source: str) -> dict[str, Any]:
    """`manifest` if it has the shape `build_manifest` produces; a ConfigError naming `source` if not."""

    def fail(what: str) -> ConfigError:
        return ConfigError(f"not a deskgate manifest: {what}", file=source)

    if not isinstance(manifest, Mapping):
        raise fail("not a JSON object")
    if manifest.get("format") != FORMAT:
        raise fail(f"format is {manifest.get('format')!r}, expected {FORMAT!r}")
    tools, scopes, roles = manifest.get("tools"), manifest.get("scopes"), manifest.get("roles")
    if not isinstance(scopes, Mapping) or not all(isinstance(v, str) for v in scopes.values()):
        raise fail("scopes must map names to descriptions")
    if not isinstance(roles, Mapping) or not all(
            isinstance(v, list) and all(isinstance(s, str) for s in v) for v in roles.values()):
        raise fail("roles must map names to lists of scopes")
    if not isinstance(tools, Mapping):
        raise fail("tools must be an object")
    for name, tool in tools.items():
        if not isinstance(tool, Mapping):
            raise fail(f"tool {name!r} is not an object")
        for key, kind in _TOOL_KEYS.items():
            if not isinstance(tool.get(key), kind):
                raise fail(f"tool {name!r}: {key} missing or not a {kind.__name__}")
        if tool["name"] != name:
            raise fail(f"tool {name!r} is filed under another name ({tool['name']!r})")
        if tool["risk"] not in set(Risk):
            raise fail(f"tool {name!r}: unknown risk {tool['risk']!r}")
        if not isinstance(tool.get("reversible_by", 0), str | None):
            raise fail(f"tool {name!r}: reversible_by missing or not a tool name")
        pii = tool["pii"]
        if not all(isinstance(pii.get(side), Mapping) for side in ("inputs", "outputs")):
            raise fail(f"tool {name!r}: pii must hold inputs and outputs")
        if not all(isinstance(f, Mapping) and all(isinstance(f.get(k), str) for k in ("where", "rule", "excerpt"))
                   for f in tool["flags"]):
            raise fail(f"tool {name!r}: malformed flags")
    return dict(manifest)
