"""What changed between two manifests, for a reviewer: each change with a risk level, riskiest first.

A change "raises risk" when it gives the model or a role more reach, weakens a control, or changes
text the model reads (the rug-pull vector): a tool added, a description or schema field changed,
a scope widened, an annotation weakened (destructive -> not), a tier lowered, a threshold raised,
a confirmation or approval removed, PII exposure widened, a role gaining a tool or a scope. The
opposite moves are still listed, at low risk, after every risk-raising change.

The diff is complete by construction: when two tool entries differ in a way no rule classifies,
a catch-all change says so, so `check` never refuses without saying why.

Policy entries are free-form tables (whatever `policy_for` returns); they are read by convention:
`tier` and a gate's `otherwise` order automate < assist < escalate < deny; a key mentioning
`confirm` or `approv` with a boolean or none/agent/customer value is a gate; any other number is a
limit, loosened by raising it (or, for `min*` and `*window` keys, by lowering it); lists of tables
(thresholds, limits, gates) are compared rule by rule, and a rule removed loosens the policy; a
missing list is an empty one. When a tool gains or loses thresholds, its `tier` and `thresholds` are
compared as what they decide - the tier of every amount - so a change that gives no amount a less
strict tier is a tightening, whatever its spelling.
A partial `rollout` is a share of sessions: raising it (or removing it: every session) loosens. A
role's own rules (`by_role`) are compared with what that role had before (its own, or the tool's).
The policy settings no tool carries (`policy`) are read by the same rules; sharing actions with
every session of a subject, rather than one session, loosens them.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from deskgate.server.manifest.build import HASH_KEY, Risk, access_kind, canonical_bytes, require_manifest
from deskgate.server.manifest.scan import visible

TIERS = ("automate", "assist", "escalate", "deny")  # least to most strict
_TIER_KEYS = frozenset({"tier", "otherwise"})  # a rule's tier; a gate's outcome when it fails
_GATE_LEVELS = {"agent": 1, "customer": 2}  # who confirms: the agent, or the customer with a code
_MISSING = object()
_STRUCTURE = frozenset({"$ref", "$defs", "anyOf", "oneOf", "allOf", "properties", "items", "prefixItems",
                        "additionalProperties", "required", "x-pii"})
_RETYPE = frozenset({"type", "format", "const"})
_UPPER = frozenset({"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"})
_LOWER = frozenset({"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"})
_TEXT = frozenset({"description", "title", "examples"})


@dataclass(frozen=True, slots=True)
class Change:
    risk: Risk
    raises_risk: bool
    subject: str   # a tool name, "role NAME", "scope NAME" or "manifest"
    kind: str      # machine-readable, e.g. tier_lowered
    detail: str    # for people

    def order(self) -> tuple[bool, int, str, str, str]:
        return (not self.raises_risk, self.risk.rank, self.subject, self.kind, self.detail)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from `old` to `new`, risk-raising first, then by severity."""
    old, new = require_manifest(old, "old manifest"), require_manifest(new, "new manifest")
    changes = [*_tools(old, new), *_scopes(old["scopes"], new["scopes"]), *_roles(old["roles"], new["roles"]),
               *_policy_walk("policy", "", old.get("policy", _MISSING), new.get("policy", _MISSING), False)]
    for key in sorted((old.keys() | new.keys()) - {"tools", "scopes", "roles", "policy", HASH_KEY}):
        if old.get(key) != new.get(key):
            changes.append(Change(Risk.MEDIUM, True, "manifest", "manifest_changed",
                                  f"{key}: {_show(old.get(key))} -> {_show(new.get(key))}"))
    return sorted(changes, key=Change.order)


def render_diff(changes: list[Change]) -> str:
    if not changes:
        return "No changes.\n"
    raising = sum(c.raises_risk for c in changes)
    lines = [f"{len(changes)} change(s), {raising} raising risk (marked !):"]
    lines += [f"{'!' if c.raises_risk else ' '} {c.risk.value:<8} {c.subject}: {c.detail} [{c.kind}]" for c in changes]
    return "\n".join(lines) + "\n"


# --- tools ------------------------------------------------------------------------------------

def _tools(old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = old["tools"], new["tools"]
    for name in sorted(after.keys() - before.keys()):
        tool = after[name]
        yield Change(Risk(tool["risk"]), True, name, "tool_added",
                     f"new {access_kind(tool)} tool, scope {tool['scope']}, reached by {_names(tool['roles'])}")
    for name in sorted(before.keys() - after.keys()):
        yield Change(Risk.LOW, False, name, "tool_removed", f"{access_kind(before[name])} tool removed")
    for name in sorted(before.keys() & after.keys()):
        found = list(_tool_changes(name, before[name], after[name]))
        if not found and canonical_bytes(before[name]) != canonical_bytes(after[name]):
            keys = sorted(k for k in before[name].keys() | after[name].keys()
                          if before[name].get(k) != after[name].get(k))
            found.append(Change(Risk.MEDIUM, True, name, "tool_changed", f"unclassified change in {', '.join(keys)}"))
        yield from found


def _tool_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for field in ("title", "description"):
        if old[field] != new[field]:
            yield Change(Risk.MEDIUM, True, name, f"{field}_changed",
                         f"{field}: {_text_change(old[field], new[field])}")
    yield from _flag_changes(name, old["flags"], new["flags"])
    yield from _scope_change(name, old, new)
    yield from _metadata_changes(name, old, new)
    yield from _annotation_changes(name, old["annotations"], new["annotations"])
    yield from _policy_changes(name, old["policy"], new["policy"], money=bool(new["money"]))
    for direction in ("outputs", "inputs"):
        yield from _pii_changes(name, direction, old["pii"][direction], new["pii"][direction])
    for which in ("input", "output"):
        yield from _schema_changes(name, which, old[f"{which}_schema"], new[f"{which}_schema"])
    if old["scope"] == new["scope"]:  # a role's own scope change; a tool's is reported by _scope_change
        level = Risk(new["risk"]) if Risk(new["risk"]).rank < Risk.MEDIUM.rank else Risk.MEDIUM
        for role in sorted(set(new["roles"]) - set(old["roles"])):
            yield Change(level, True, f"role {role}", "role_gained_tool", f"now reaches {name} ({access_kind(new)})")
        for role in sorted(set(old["roles"]) - set(new["roles"])):
            yield Change(Risk.LOW, False, f"role {role}", "role_lost_tool", f"no longer reaches {name}")


def _flag_changes(name: str, old: list[dict[str, str]], new: list[dict[str, str]]) -> Iterator[Change]:
    seen = {(f["where"], f["rule"]) for f in old}
    for flag in new:
        if (flag["where"], flag["rule"]) not in seen:
            yield Change(Risk.HIGH, True, name, "flag_added",
                         f"scanner flag {flag['rule']} in {flag['where']}: {flag['excerpt']}")
    kept = {(f["where"], f["rule"]) for f in new}
    for flag in old:
        if (flag["where"], flag["rule"]) not in kept:
            yield Change(Risk.LOW, False, name, "flag_cleared", f"scanner flag {flag['rule']} in {flag['where']} gone")


def _scope_change(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    if old["scope"] == new["scope"]:
        return
    gained = sorted(set(new["roles"]) - set(old["roles"]))
    if gained:
        yield Change(Risk.HIGH, True, name, "scope_widened",
                     f"scope {old['scope']} -> {new['scope']}: now also reached by {_names(gained)}")
    else:
        yield Change(Risk.MEDIUM, True, name, "scope_changed", f"scope {old['scope']} -> {new['scope']}")


# Each flag flip, in either direction, changes which controls the chain applies: all raise risk.
_METADATA = {  # key -> (what turning it on means, what turning it off means)
    "read_only": ("declared read-only: no write controls apply", "now a write tool"),
    "irreversible": ("now irreversible", "no longer irreversible: no confirmation step"),
    "money": ("now moves money", "no longer counted against money caps and breakers"),
}


def _metadata_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for key, (turned_on, turned_off) in _METADATA.items():
        if bool(old[key]) != bool(new[key]):
            yield Change(Risk.HIGH, True, name, f"{key}_changed", turned_on if new[key] else turned_off)
    if bool(old["idempotent"]) != bool(new["idempotent"]):
        if new["idempotent"]:
            yield Change(Risk.MEDIUM, True, name, "idempotent_changed", "now declared idempotent")
        else:
            yield Change(Risk.LOW, False, name, "idempotent_changed", "no longer declared idempotent")
    if old["reversible_by"] != new["reversible_by"]:
        yield Change(Risk.MEDIUM, True, name, "reversible_by_changed",
                     f"reversed by {_show(old['reversible_by'])} -> {_show(new['reversible_by'])}")
    if old.get("customer_output") != new.get("customer_output"):  # locks made before the key say nothing
        yield Change(Risk.HIGH, True, name, "customer_output_changed",
                     f"text the customer reads: {_show(old.get('customer_output'))} -> "
                     f"{_show(new.get('customer_output'))}")


# Hint -> the value that makes a client treat the tool as safer (so moving to it raises risk).
_SAFER_HINT = {"destructiveHint": False, "readOnlyHint": True, "idempotentHint": True, "openWorldHint": False}


def _annotation_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    for hint in sorted((old.keys() | new.keys()) - {"title"}):
        before, after = old.get(hint), new.get(hint)
        if before == after:
            continue
        detail = f"{hint}: {_show(before)} -> {_show(after)}"
        safer = _SAFER_HINT.get(hint)
        if safer is None:
            yield Change(Risk.MEDIUM, True, name, "annotation_changed", detail)
        elif after == safer:
            yield Change(Risk.HIGH if hint in ("destructiveHint", "readOnlyHint") else Risk.MEDIUM, True, name,
                         "annotation_weakened", detail)
        else:
            yield Change(Risk.LOW, False, name, "annotation_strengthened", detail)


# --- policy -----------------------------------------------------------------------------------

def _policy_changes(name: str, old: Mapping[str, Any], new: Mapping[str, Any], *, money: bool) -> Iterator[Change]:
    base_old, base_new = _without_roles(old), _without_roles(new)
    yield from _policy_walk(name, "", base_old, base_new, money)
    roles_old, roles_new = old.get("by_role", {}), new.get("by_role", {})
    for role in sorted(roles_old.keys() | roles_new.keys()):
        yield from _policy_walk(f"role {role}", f"{name}", roles_old.get(role, base_old),
                                roles_new.get(role, base_new), money)


def _without_roles(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "by_role"}


def _policy_walk(name: str, path: str, was: Any, now: Any, money: bool) -> Iterator[Change]:
    if was == now:
        return
    if (isinstance(was, Mapping) and isinstance(now, Mapping)
            and len(was.get("thresholds", [])) != len(now.get("thresholds", []))):
        yield from _tiers(name, path, was, now, money)
        was, now = ({k: v for k, v in m.items() if k not in ("tier", "thresholds")} for m in (was, now))
    if (was is _MISSING and _rule_list(now)) or (now is _MISSING and _rule_list(was)):
        was, now = ([] if v is _MISSING else v for v in (was, now))
    if (was is _MISSING and isinstance(now, Mapping)) or (now is _MISSING and isinstance(was, Mapping)):
        was, now = ({} if v is _MISSING else v for v in (was, now))
    if was == now:
        return
    if isinstance(was, Mapping) and isinstance(now, Mapping):
        for key in sorted(was.keys() | now.keys()):
            yield from _policy_walk(name, f"{path}.{key}" if path else key, was.get(key, _MISSING),
                                    now.get(key, _MISSING), money)
    elif _rule_list(was) and _rule_list(now) and len(was) == len(now):
        for i, (a, b) in enumerate(zip(was, now, strict=True)):
            yield from _policy_walk(name, f"{path}[{i}]", a, b, money)
    elif _rule_list(was) and _rule_list(now):
        # A threshold, limit or gate removed loosens the policy; one added tightens it.
        for rule in (r for r in was if r not in now):
            yield Change(Risk.HIGH if money else Risk.MEDIUM, True, name, "policy_rule_removed",
                         f"policy {path}: - {_show(rule)}")
        for rule in (r for r in now if r not in was):
            yield Change(Risk.LOW, False, name, "policy_rule_added", f"policy {path}: + {_show(rule)}")
    else:
        yield _policy_leaf(name, path, was, now, money)


def _policy_leaf(name: str, path: str, was: Any, now: Any, money: bool) -> Change:
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    detail = f"policy {path}: {_show(was)} -> {_show(now)}"
    if key in _TIER_KEYS and was in TIERS and now in TIERS:
        if TIERS.index(now) < TIERS.index(was):
            return Change(Risk.HIGH, True, name, "tier_lowered", detail)
        return Change(Risk.LOW, False, name, "tier_raised", detail)
    gate = "confirmation" if "confirm" in key else "approval" if "approv" in key else None
    if gate and (a := _gate_level(was)) is not None and (b := _gate_level(now)) is not None:
        if b < a:
            return Change(Risk.HIGH, True, name, f"{gate}_removed" if b == 0 else f"{gate}_weakened", detail)
        return Change(Risk.LOW, False, name, f"{gate}_added" if a == 0 else f"{gate}_strengthened", detail)
    old_number, new_number = _number(was), _number(now)
    stricter_when_higher = key.startswith("min") or key.endswith("window")
    if key == "shared_with" and {was, now} == {"session", "subject"}:
        widened = now == "subject"
        return Change(Risk.MEDIUM if widened else Risk.LOW, widened, name,
                      "sharing_widened" if widened else "sharing_narrowed", detail)
    if key == "enabled":  # absent: on
        on = now is not False
        return Change(Risk.MEDIUM if on else Risk.LOW, on, name, "tool_switched_on" if on else "tool_switched_off",
                      detail)
    if key == "rollout":  # a share of sessions; absent: all of them
        old_number, new_number = (Decimal(1) if v is None else v for v in (old_number, new_number))
    if old_number is not None and new_number is not None:
        loosened = (new_number > old_number) != stricter_when_higher
        kind = "threshold_raised" if new_number > old_number else "threshold_lowered"
        return Change(Risk.HIGH if money else Risk.MEDIUM, True, name, kind, detail) if loosened else \
            Change(Risk.LOW, False, name, kind, detail)
    if old_number is not None and now is _MISSING:
        return Change(Risk.HIGH if money else Risk.MEDIUM, True, name, "threshold_removed", detail)
    if was is _MISSING and new_number is not None:
        return Change(Risk.LOW, False, name, "threshold_added", detail)
    if isinstance(was, list) and isinstance(now, list):
        added = [v for v in now if v not in was]
        if added:
            return Change(Risk.MEDIUM, True, name, "policy_list_widened", f"policy {path}: + {_show(added)}")
        return Change(Risk.LOW, False, name, "policy_list_narrowed",
                      f"policy {path}: - {_show([v for v in was if v not in now])}")
    return Change(Risk.MEDIUM, True, name, "policy_changed", detail)


def _tiers(name: str, path: str, was: Mapping[str, Any], now: Mapping[str, Any], money: bool) -> Iterator[Change]:
    """A tool's base tier and thresholds, compared as the tier they give each amount."""
    before, after = _tier_steps(was), _tier_steps(now)
    if before == after:
        return
    where = f"{path}." if path else ""
    detail = (f"policy {where}tier/thresholds: {_show([was.get('tier'), was.get('thresholds', [])])} -> "
              f"{_show([now.get('tier'), now.get('thresholds', [])])}")
    if before is None or after is None:
        yield Change(Risk.MEDIUM, True, name, "policy_changed", detail)
        return
    # The tiers are step functions of the amount: comparing them at 0 and just above each step is exact.
    points = {Decimal(0), *(above + Decimal("0.01") for above, _ in [*before[1], *after[1]])}
    lowered = any(_tier_at(after, p) < _tier_at(before, p) for p in points)
    if lowered:
        yield Change(Risk.HIGH if money else Risk.MEDIUM, True, name, "thresholds_loosened", detail)
    else:
        yield Change(Risk.LOW, False, name, "thresholds_tightened", detail)


TierSteps = tuple[int, list[tuple[Decimal, int]]]


def _tier_steps(rules: Mapping[str, Any]) -> TierSteps | None:
    """(rank of the base tier, [(above, rank)]) or None when the rules cannot be read that way."""
    tier, thresholds = rules.get("tier", "automate"), rules.get("thresholds", [])
    if tier not in TIERS or not _rule_list(thresholds):
        return None
    steps = []
    for rule in thresholds:
        above = _number(rule.get("above"))
        if above is None or rule.get("tier") not in TIERS:
            return None
        steps.append((above, TIERS.index(rule["tier"])))
    return TIERS.index(tier), sorted(steps)


def _tier_at(steps: TierSteps, amount: Decimal) -> int:
    base, thresholds = steps
    passed = [rank for above, rank in thresholds if amount > above]
    return passed[-1] if passed else base


def _rule_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, Mapping) for v in value)


def _gate_level(value: Any) -> int | None:
    """How strong a confirmation or approval setting is: 0 off, higher stronger, None when unknown."""
    if value is _MISSING or value is None or value is False or value == "none":
        return 0
    return _GATE_LEVELS.get(value) if isinstance(value, str) else 1 if value is True else None


def _number(value: Any) -> Decimal | None:
    """Policy numbers arrive as int, float or (for exact money) a decimal string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


# --- PII and schemas --------------------------------------------------------------------------

def _pii_changes(name: str, direction: str, old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[Change]:
    side = "output" if direction == "outputs" else "input"
    for path in sorted(old.keys() | new.keys()):
        was, now = old.get(path), new.get(path)
        if was == now or (was is None and now == "none"):
            continue
        detail = f"{side} {path}: {was or 'absent'} -> {now or 'absent'}"
        if now is None:
            yield Change(Risk.LOW, False, name, "pii_field_removed", detail)
        elif now == "none":
            # Declassified: redaction (outputs) or audit masking (inputs) stops applying to it.
            yield Change(Risk.HIGH, True, name, "pii_declassified", detail)
        elif was is None or was == "none":
            yield Change(Risk.MEDIUM, True, name, "pii_exposure_widened", detail)
        else:
            yield Change(Risk.MEDIUM, True, name, "pii_reclassified", detail)


def _schema_changes(name: str, which: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Change]:
    before, after = schema_fields(old), schema_fields(new)
    found: list[Change] = []
    added = sorted(after.keys() - before.keys())
    for path in added:
        if not any(path.startswith(f"{p}.") or path.startswith(f"{p}[") for p in added if p != path):
            found.append(Change(Risk.MEDIUM, True, name, f"{which}_field_added", f"{which} field {path} added"))
    removed = sorted(before.keys() - after.keys())
    for path in removed:
        if not any(path.startswith(f"{p}.") or path.startswith(f"{p}[") for p in removed if p != path):
            found.append(Change(Risk.LOW, False, name, f"{which}_field_removed", f"{which} field {path} removed"))
    for path in sorted(before.keys() & after.keys()):
        found += _field_changes(name, f"{which} field {path}", before[path], after[path])
    if not found and canonical_bytes(old) != canonical_bytes(new):
        found.append(Change(Risk.MEDIUM, True, name, "schema_changed", f"{which} schema changed"))
    yield from found


def _field_changes(name: str, label: str, old: dict[str, list[str]], new: dict[str, list[str]]) -> Iterator[Change]:
    for key in sorted(old.keys() | new.keys()):
        was, now = old.get(key, []), new.get(key, [])
        if was == now:
            continue
        detail = f"{label} {key}: {_show(_one(was))} -> {_show(_one(now))}"
        if key in _RETYPE:
            yield Change(Risk.MEDIUM, True, name, "field_retyped", detail)
        elif key in _TEXT:
            yield Change(Risk.MEDIUM, True, name, "schema_text_changed", detail)
        elif key == "required":
            yield Change(Risk.LOW, False, name, "field_required_changed", detail)
        elif key == "enum":
            widened = _members(now) - _members(was)
            yield Change(Risk.MEDIUM if widened else Risk.LOW, bool(widened), name,
                         "enum_widened" if widened else "enum_narrowed", detail)
        elif key in _UPPER | _LOWER and len(was) == len(now) == 1 and \
                (a := _number(json.loads(was[0]))) is not None and (b := _number(json.loads(now[0]))) is not None:
            loosened = (b > a) if key in _UPPER else (b < a)
            yield Change(Risk.MEDIUM if loosened else Risk.LOW, loosened, name,
                         "limit_loosened" if loosened else "limit_tightened", detail)
        else:
            yield Change(Risk.MEDIUM, True, name, "constraint_changed", detail)


def schema_fields(schema: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Dotted field path (`a.b`, `items[]`) -> its facets (keyword -> sorted canonical JSON of its values).

    `$ref`s are resolved and `anyOf`/`oneOf`/`allOf` variants merged, so `Optional[X]` and `X` differ
    only in their `type` facet; a recursive model is followed once.
    """
    defs = schema.get("$defs", {})
    fields: dict[str, dict[str, list[Any]]] = {}

    def variants(node: Any, seen: frozenset[str]) -> Iterator[tuple[Mapping[str, Any], frozenset[str]]]:
        if not isinstance(node, Mapping):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            target = ref.rsplit("/", 1)[-1]
            if target not in seen and isinstance(defs.get(target), Mapping):
                yield from variants(defs[target], seen | {target})
        yield node, seen
        for key in ("anyOf", "oneOf", "allOf"):
            for option in node.get(key, ()):
                yield from variants(option, seen)

    def walk(node: Any, path: str, seen: frozenset[str], required: bool | None) -> None:
        facets: dict[str, set[str]] = {}
        children: list[tuple[str, Any, frozenset[str], bool | None]] = []
        for part, part_seen in variants(node, seen):
            for key, value in part.items():
                if key not in _STRUCTURE:
                    facets.setdefault(key, set()).add(canonical_bytes(value).decode())
            needed = set(part.get("required", ()))
            for prop, sub in (part.get("properties") or {}).items():
                children.append((f"{path}.{prop}" if path else prop, sub, part_seen, prop in needed))
            if isinstance(part.get("items"), Mapping):
                children.append((f"{path}[]", part["items"], part_seen, None))
        if path:
            entry = {k: sorted(vs) for k, vs in facets.items()}
            if required is not None:
                entry["required"] = [json.dumps(required)]
            fields[path] = entry
        for child_path, sub, child_seen, child_required in children:
            if child_path not in fields:
                walk(sub, child_path, child_seen, child_required)

    walk(schema, "", frozenset(), None)
    return fields


# --- scopes and roles -------------------------------------------------------------------------

def _scopes(old: Mapping[str, str], new: Mapping[str, str]) -> Iterator[Change]:
    for scope in sorted(new.keys() - old.keys()):
        yield Change(Risk.LOW, False, f"scope {scope}", "scope_added", f"new scope: {new[scope]}")
    for scope in sorted(old.keys() - new.keys()):
        yield Change(Risk.LOW, False, f"scope {scope}", "scope_removed", "scope removed")
    for scope in sorted(old.keys() & new.keys()):
        if old[scope] != new[scope]:
            yield Change(Risk.LOW, False, f"scope {scope}", "scope_description_changed",
                         _text_change(old[scope], new[scope]))


def _roles(old: Mapping[str, list[str]], new: Mapping[str, list[str]]) -> Iterator[Change]:
    for role in sorted(new.keys() - old.keys()):
        yield Change(Risk.MEDIUM, True, f"role {role}", "role_added", f"new role with {_names(new[role])}")
    for role in sorted(old.keys() - new.keys()):
        yield Change(Risk.LOW, False, f"role {role}", "role_removed", "role removed")
    for role in sorted(old.keys() & new.keys()):
        for scope in sorted(set(new[role]) - set(old[role])):
            yield Change(Risk.HIGH if scope.startswith("pii:") else Risk.MEDIUM, True, f"role {role}",
                         "role_gained_scope", f"gains scope {scope}")
        for scope in sorted(set(old[role]) - set(new[role])):
            yield Change(Risk.LOW, False, f"role {role}", "role_lost_scope", f"loses scope {scope}")


# --- wording ----------------------------------------------------------------------------------

def _names(names: list[str]) -> str:
    return ", ".join(names) if names else "no role"


def _one(values: list[str]) -> Any:
    """A facet for display: its one value, or the list of its values across variants."""
    decoded = [json.loads(v) for v in values]
    return decoded[0] if len(decoded) == 1 else decoded if decoded else _MISSING


def _members(values: list[str]) -> set[str]:
    """The members of every `enum` of a facet, as canonical JSON."""
    return {canonical_bytes(m).decode() for v in values for m in json.loads(v)}


def _show(value: Any) -> str:
    if value is _MISSING:
        return "absent"
    text = json.dumps(value, ensure_ascii=True, sort_keys=True)
    return text if len(text) <= 120 else text[:119] + "…"


def _text_change(old: str, new: str) -> str:
    """The changed words only, e.g. `'orders' -> 'orders and payment cards'`; invisible characters shown."""
    a, b = old.split(" "), new.split(" ")
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            parts.append(f"{_quote(' '.join(a[i1:i2]))} -> {_quote(' '.join(b[j1:j2]))}")
    if not parts:
        return "whitespace changed"
    shown = "; ".join(parts[:3])
    return shown + (f"; and {len(parts) - 3} more" if len(parts) > 3 else "")


def _quote(text: str) -> str:
    shown = visible(text)
    return json.dumps(shown if len(shown) <= 60 else shown[:59] + "…", ensure_ascii=False)
