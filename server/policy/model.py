"""Policy as data: the schema of `config/policy.toml`, its start-up checks and its version.

A policy is validated twice when the server starts, and either failure stops it with the file and
line: first on its own (`Policy`: unknown keys, bad tiers, unordered thresholds, unknown facts),
then as a whole against the tool catalogue (`load_policy`): every write tool
must have rules (deny by default), every rule must name a real write tool and an existing
reason-code list, amounts only on money tools, an undo window exactly on reversible tools, a
confirmation on every irreversible tool, and each gate's fact must be computable from the
tool's arguments.

`policy_version` is the SHA-256 of the canonical JSON of the *effective* policy (durations in
seconds, amounts with two decimals), so two files that mean the same thing have the same version.

What a session is offered: a tool switched off (`enabled = false`), every write tool of a deployment
set `read_only = true`, and a tool outside its `rollout` share of sessions are not offered - gone
from `tools/list`, answered like an unknown tool. The share is decided by a hash of the tool and the
session id, which the issuer draws at random and signs: the same session gets the same answer on
every call and every process, and no caller can choose where it falls. `[roles.<role>.tools.<tool>]`
overrides keys of a tool's rules for the sessions that hold every scope of that role.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import rfc8785
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from deskgate.config import line_of, load_model, packaged, read_toml
from deskgate.scopes.catalogue import SCOPES
from deskgate.scopes.roles import load_roles
from deskgate.scopes.session import Session
from deskgate.server.errors import ConfigError
from deskgate.server.policy.facts import CUSTOMER_ARGUMENTS, FACTS
from deskgate.server.settings import parse_duration
from deskgate.tools.spec import ToolSpec

if TYPE_CHECKING:
    from deskgate.tools.backend.base import SupportBackend

Tier = Literal["automate", "assist", "escalate"]
GateOutcome = Literal["deny", "assist", "escalate"]
ConfirmationKind = Literal["none", "agent", "customer"]
LimitSubject = Literal["session", "customer", "tool"]

# Strictness order: a threshold, a gate or a breaker can only move a call up this list.
TIER_RANK: dict[str, int] = {"automate": 0, "assist": 1, "escalate": 2, "deny": 3}
MAX_CONFIRMATION_TTL = 300
MAX_LIVE_CODE_TTL = 3600           # a customer's code in a chat or a phone call
MAX_CUSTOMER_CODE_TTL = 48 * 3600  # a customer's code in an e-mail ticket
_CENT = Decimal("0.01")
_SHARE_SCALE = 2**64
# The keys a read tool's table may hold: reads have no tier, gates or limits, only whether they are offered.
_OFFER_KEYS = frozenset({"enabled", "rollout"})


def _seconds(value: Any) -> Any:
    return parse_duration(value) if isinstance(value, str) else value


def _amount(value: Any) -> Any:
    # A TOML float is binary: 0.1 + 0.2 is not 0.3. Money is written as a string or a whole number.
    if isinstance(value, float):
        raise ValueError('write amounts as strings, e.g. "50.00"')
    if isinstance(value, bool):
        raise ValueError("not an amount")
    amount = Decimal(str(value))
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]  # finite checked first
        raise ValueError("an amount has at most two decimals")
    return amount.quantize(_CENT)


def _share(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a share of sessions is a number above 0 and at most 1, e.g. 0.05")
    return value


def session_share(tool: str, sid: str) -> float:
    """Where a session falls in [0, 1) for a tool's rollout: fixed by the signed, randomly drawn sid."""
    digest = hashlib.sha256(f"deskgate-rollout\x00{tool}\x00{sid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SHARE_SCALE


Seconds = Annotated[int, BeforeValidator(_seconds), Field(gt=0, le=366 * 86400)]
Share = Annotated[float, BeforeValidator(_share), Field(gt=0, le=1)]
PolicyAmount = Annotated[Decimal, BeforeValidator(_amount), Field(gt=0)]
ReasonCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Strict):
    above: PolicyAmount
    tier: Tier


class Limit(_Strict):
    """At most `max` executed actions per `window` and subject (see `server/policy/engine.py`)."""

    per: LimitSubject  # session: this agent session; customer: the customer acted on; tool: everyone
    max: int = Field(ge=1, le=1_000_000)
    window: Seconds


class Gate(_Strict):
    fact: str
    must_be: bool | None = None                      # a flag fact must be this
    at_most: int | None = Field(default=None, ge=0)  # a number fact must be at most this
    if_absent: Literal["pass", "fail"] = "fail"      # a fact with no value for the call (fail: otherwise applies)
    otherwise: GateOutcome
    reason: str = Field(min_length=1, max_length=200)

    @field_validator("fact")
    @classmethod
    def _known_fact(cls, fact: str) -> str:
        if fact not in FACTS:
            raise ValueError(f"unknown fact {fact!r}; known: {', '.join(sorted(FACTS))}")
        return fact

    @model_validator(mode="after")
    def _one_test_of_the_facts_kind(self) -> Gate:
        if FACTS[self.fact].number:
            if self.at_most is None or self.must_be is not None:
                raise ValueError(f"{self.fact!r} is a number: test it with `at_most`")
        elif self.must_be is None or self.at_most is not None:
            raise ValueError(f"{self.fact!r} is true or false: test it with `must_be`")
        return self

    def passes(self, value: bool | int | None) -> bool:
        """Whether the fact's value for a call lets it through this gate."""
        if value is None:
            return self.if_absent == "pass"
        if self.at_most is not None:
            return value <= self.at_most
        return value == self.must_be

    def requirement(self) -> str:
        """The gate's test in words, for `get_policy`."""
        if self.at_most is not None:
            return f"{self.fact} <= {self.at_most}"
        return self.fact if self.must_be else f"not {self.fact}"


class ToolRules(_Strict):
    tier: Tier = "automate"  # a write tool must write it (load_policy checks); a read tool has none
    enabled: bool = True     # false: not offered to anyone, and gone from the manifest
    rollout: Share = 1.0     # the share of sessions the tool is offered to (0.05: one session in twenty)
    confirmation: ConfirmationKind = "none"
    thresholds: tuple[Threshold, ...] = ()
    limits: tuple[Limit, ...] = ()
    gates: tuple[Gate, ...] = ()
    reason_codes: str | None = None  # the name of a list in [reason_codes]
    undo_window: Seconds | None = None

    @model_validator(mode="after")
    def _thresholds_climb(self) -> ToolRules:
        bounds = [t.above for t in self.thresholds]
        if bounds != sorted(set(bounds)):
            raise ValueError("thresholds must have strictly increasing `above` amounts")
        ranks = [TIER_RANK[self.tier]] + [TIER_RANK[t.tier] for t in self.thresholds]
        if any(b <= a for a, b in pairwise(ranks)):
            raise ValueError("each threshold must move the call to a stricter tier than the one below it")
        return self

    def offered_to(self, tool: str, sid: str) -> bool:
        return self.enabled and (self.rollout >= 1 or session_share(tool, sid) < self.rollout)

    def tier_for(self, amount: Decimal | None) -> tuple[Tier, Threshold | None]:
        """The tier for an amount: the highest threshold the amount is above, else the base tier."""
        passed = [t for t in self.thresholds if amount is not None and amount > t.above]
        return (passed[-1].tier, passed[-1]) if passed else (self.tier, None)


class CustomerCodeRules(_Strict):
    """How long a customer's one-time code lives, by the channel of the ticket the session is bound to; a
    session bound to no ticket, or to one whose system records no channel, gets `default`."""

    chat: Seconds = 600
    phone: Seconds = 600
    email: Seconds = 48 * 3600
    default: Seconds = 600

    @model_validator(mode="after")
    def _fits_the_channel(self) -> CustomerCodeRules:
        if max(self.chat, self.phone) > MAX_LIVE_CODE_TTL:
            raise ValueError("a code read back in a chat or a call lives at most 1h")
        if max(self.email, self.default) > MAX_CUSTOMER_CODE_TTL:
            raise ValueError("a customer's code lives at most 48h")
        return self

    def ttl_for(self, channel: str | None) -> int:
        return {"chat": self.chat, "phone": self.phone, "email": self.email}.get(channel or "", self.default)


class ConfirmationRules(_Strict):
    ttl: Seconds = 120  # the agent's confirmation token
    customer_code: CustomerCodeRules = CustomerCodeRules()

    @field_validator("ttl")
    @classmethod
    def _short(cls, ttl: int) -> int:
        if ttl > MAX_CONFIRMATION_TTL:
            raise ValueError("a confirmation token lives at most 5m")
        return ttl


class ApprovalRules(_Strict):
    ttl: Seconds = 4 * 3600
    two_person_above: PolicyAmount | None = None  # above this amount two different approvers must approve


class AttemptLimit(_Strict):
    """Every write call of one session that reaches the policy stage - previews, refusals, repeats -
    counts; past `max` in `window` the session is refused (a runaway agent), except a call a human
    approved. Apart from the tools' `limits`, which count executed actions only."""

    max: int = Field(200, ge=1, le=1_000_000)
    window: Seconds = 3600


class MoneyBreaker(_Strict):
    per_hour: PolicyAmount  # refunds + credits paid out per clock hour and per currency, across all sessions


class ActionRules(_Strict):
    """Who may see (`get_action_status`) and undo (`undo_action`) an action, a hand-off or an approval."""

    shared_with: Literal["session", "subject"] = "session"  # subject: every session of the same `sub`
    supervisor_scope: str = "actions:supervise"              # a session with this scope: any action

    @field_validator("supervisor_scope")
    @classmethod
    def _known_scope(cls, scope: str) -> str:
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        return scope

    def allows(self, session: Session, sid: str, sub: str) -> bool:
        """May `session` see or act on what the session `sid` of subject `sub` started?"""
        if session.has_scope(self.supervisor_scope) or session.sid == sid:
            return True
        return self.shared_with == "subject" and session.sub == sub


class RolePolicy(_Strict):
    """Keys of a tool's rules that differ for one role (checked whole, merged onto the tool's table)."""

    tools: dict[str, dict[str, Any]] = {}


class Policy(_Strict):
    read_only: bool = False  # true: no write tool is offered (nor in the manifest); reads only
    confirmation: ConfirmationRules = ConfirmationRules()
    approvals: ApprovalRules = ApprovalRules()
    attempts: AttemptLimit = AttemptLimit()  # absent from older policy files: the default applies
    money_breaker: MoneyBreaker
    actions: ActionRules = ActionRules()
    reason_codes: dict[str, tuple[ReasonCode, ...]] = {}
    tools: dict[str, ToolRules]
    roles: dict[str, RolePolicy] = {}
    # Set by `load_policy`: (role, scopes it grants) of every role with overrides, most scopes first,
    # and each override merged onto its tool's rules.
    _overridden: tuple[tuple[str, frozenset[str]], ...] = PrivateAttr(default=())
    _by_role: dict[tuple[str, str], ToolRules] = PrivateAttr(default_factory=dict)

    def rules_for(self, tool: str, scopes: frozenset[str]) -> ToolRules | None:
        """A tool's rules for a session: those of the most specific role whose every scope it holds and
        that overrides this tool, else the tool's own table (None: no table)."""
        for role, granted in self._overridden:
            if granted <= scopes and (role, tool) in self._by_role:
                return self._by_role[(role, tool)]
        return self.tools.get(tool)

    def role_rules(self, tool: str) -> dict[str, ToolRules]:
        """Every role's own rules for `tool` (for the manifest)."""
        return {role: rules for (role, name), rules in self._by_role.items() if name == tool}

    def offers(self, spec: ToolSpec, session: Session) -> bool:
        """Is the tool offered to this session at all (read-only deployment, switched off, rollout)?"""
        if self.read_only and not spec.read_only:
            return False
        rules = self.rules_for(spec.name, session.scopes)
        return rules is None or rules.offered_to(spec.name, session.sid)

    def serves(self, spec: ToolSpec) -> bool:
        """Is the tool served to anyone - by its own rules or a role's (and so in the manifest)?"""
        if self.read_only and not spec.read_only:
            return False
        rules = self.tools.get(spec.name)
        return rules is None or rules.enabled or any(r.enabled for r in self.role_rules(spec.name).values())

    def allowed_reason_codes(self, tool: str) -> frozenset[str]:
        rules = self.tools.get(tool)
        if rules is None or rules.reason_codes is None:
            return frozenset()
        return frozenset(self.reason_codes.get(rules.reason_codes, ()))

    def vocabulary(self, tool: str) -> dict[str, tuple[str, ...]]:
        """The arguments of `tool` whose values this policy lists (its `reason_code`), in the policy's order:
        served as an `enum` in the tool's schema and enforced by its input model."""
        rules = self.tools.get(tool)
        if rules is None or rules.reason_codes is None:
            return {}
        return {"reason_code": self.reason_codes.get(rules.reason_codes, ())}


def policy_version(policy: Policy) -> str:
    return hashlib.sha256(rfc8785.dumps(policy.model_dump(mode="json"))).hexdigest()


def load_policy(tools: Iterable[ToolSpec], path: Path | None = None,
                roles: Mapping[str, frozenset[str]] | None = None, text: str | None = None, *,
                backend: SupportBackend | None = None) -> Policy:
    """Load, validate and cross-check the policy (default: the packaged `config/policy.toml`; or `text`
    said to come from `path`) against the catalogue and the roles (`role -> the scopes it grants`;
    default: the packaged roles), and, given the deployment's backend, that it can report every fact a
    gate tests."""
    path = path or packaged("policy.toml")
    policy = load_model(path, Policy, text=text)
    if roles is None:
        roles = load_roles().grants()
    problem = (_problem(policy, list(tools)) or _compile_roles(policy, list(tools), roles)
               or (None if backend is None else _unreported(policy, backend)))
    if problem is not None:
        loc, message = problem
        _, text = read_toml(path, text)
        raise ConfigError(f"{'.'.join(loc)}: {message}", file=str(path), line=line_of(text, loc))
    return policy


def _unreported(policy: Policy, backend: SupportBackend) -> tuple[tuple[str, ...], str] | None:
    """The first gate on a fact whose data the configured backend does not keep (never silently false)."""
    for name, rules in policy.tools.items():
        for gate in rules.gates:
            source = FACTS[gate.fact].source
            if source is not None and not backend.reports(source):
                return (("tools", name, "gates"), f"fact {gate.fact!r} needs a backend that reports "
                        f"{source.__name__}; the configured backend does not")
    return None


def _compile_roles(policy: Policy, specs: list[ToolSpec],
                   roles: Mapping[str, frozenset[str]]) -> tuple[tuple[str, ...], str] | None:
    """Check each role's overrides and merge them onto the tool's rules; the roles that override must
    each include the scopes of the next (a session holding two unrelated ones would be ambiguous)."""
    by_name = {s.name: s for s in specs}
    merged: dict[tuple[str, str], ToolRules] = {}
    for role, overrides in policy.roles.items():
        if role not in roles:
            return ("roles", role), f"unknown role {role!r}; known: {', '.join(sorted(roles))}"
        for name, keys in overrides.tools.items():
            where = ("roles", role, "tools", name)
            base, spec = policy.tools.get(name), by_name.get(name)
            if base is None or spec is None:
                return where, f"{name!r} has no table in [tools] to override"
            try:
                rules = ToolRules.model_validate({**base.model_dump(exclude_unset=True), **keys})
            except ValidationError as exc:
                first = exc.errors()[0]
                return (*where, *(str(p) for p in first["loc"])), first["msg"]
            for shaped in ("confirmation", "reason_codes"):  # they shape the tool's arguments, served to every role
                if getattr(rules, shaped) != getattr(base, shaped):
                    return (*where, shaped), f"a role cannot change {shaped}: it shapes the tool's arguments"
            if rules.enabled and not spec.read_only:
                if "tier" not in rules.model_fields_set:
                    return (*where, "tier"), f"write tool {name!r} needs a tier where it is enabled"
                problem = _tool_problem(policy, name, rules, spec, where)
                if problem is not None:
                    return problem
            merged[(role, name)] = rules
    chain = sorted(((r, roles[r]) for r in policy.roles), key=lambda item: (-len(item[1]), item[0]))
    for (wider, wide), (narrower, narrow) in pairwise(chain):
        if not narrow <= wide:
            return ("roles", narrower), (f"roles {wider!r} and {narrower!r} both have overrides but neither holds "
                                         "every scope of the other: a session holding both would be ambiguous")
    policy._overridden = tuple(chain)
    policy._by_role = merged
    return None


def _problem(policy: Policy, specs: list[ToolSpec]) -> tuple[tuple[str, ...], str] | None:
    """The first rule that names something missing, as (location, message)."""
    by_name = {s.name: s for s in specs}
    for spec in specs:
        if not spec.read_only and spec.name not in policy.tools:
            return ("tools",), f"write tool {spec.name!r} has no rules (every write tool needs a tier)"
    for name, rules in policy.tools.items():
        spec = by_name.get(name)
        where = ("tools", name)
        if spec is None:
            return where, f"{name!r} is not a tool of the catalogue"
        if spec.read_only:
            extra = sorted(rules.model_fields_set - _OFFER_KEYS)
            if extra:
                return (*where, extra[0]), f"a read tool's table holds only {' and '.join(sorted(_OFFER_KEYS))}"
            continue
        if not rules.enabled:  # switched off: never served, so `{ enabled = false }` is its whole table
            continue
        if "tier" not in rules.model_fields_set:
            return (*where, "tier"), f"write tool {name!r} needs a tier (or enabled = false)"
        problem = _tool_problem(policy, name, rules, spec, where)
        if problem is not None:
            return problem
    return None


def _tool_problem(policy: Policy, name: str, rules: ToolRules, spec: ToolSpec,
                  where: tuple[str, ...]) -> tuple[tuple[str, ...], str] | None:
    """What is wrong with one write tool's rules, as (location, message)."""
    if rules.reason_codes is not None and rules.reason_codes not in policy.reason_codes:
        return (*where, "reason_codes"), f"no list {rules.reason_codes!r} in [reason_codes]"
    if rules.reason_codes is not None and not policy.reason_codes[rules.reason_codes]:
        return (*where, "reason_codes"), f"the list {rules.reason_codes!r} is empty"
    fields = set(spec.input_model.model_fields)
    if ("reason_code" in fields) != (rules.reason_codes is not None):
        return (*where, "reason_codes"), "a tool with a reason_code argument needs `reason_codes`, and only it"
    if rules.reason_codes is None and any(g.fact == "reason_code_allowed" for g in rules.gates):
        return (*where, "gates"), "the reason_code_allowed gate needs `reason_codes`"
    if rules.thresholds and not (spec.money and "amount" in fields):
        return (*where, "thresholds"), "thresholds apply only to tools that pay out an amount"
    if (rules.undo_window is None) != (spec.reversible_by is None):
        return (*where, "undo_window"), "an undo window is required on reversible tools and only there"
    if spec.irreversible and rules.confirmation == "none":
        return (*where, "confirmation"), "an irreversible tool needs a confirmation (agent or customer)"
    if rules.confirmation == "customer" and not fields.intersection(("requester_id", *CUSTOMER_ARGUMENTS)):
        return (*where, "confirmation"), "a customer confirmation needs an argument naming the customer"
    for gate in rules.gates:
        missing = FACTS[gate.fact].missing(fields)
        if missing:
            return (*where, "gates"), f"fact {gate.fact!r} needs the argument {missing}"
    return None
