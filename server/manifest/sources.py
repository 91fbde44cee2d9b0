"""Where the served manifest's inputs come from: the shipped catalogue, policy, roles and scopes.

`build_served_manifest` turns the loaded objects into the plain inputs `build_manifest` takes (the
runtime calls it with what it has already loaded and validated); `served_manifest` loads them the
way `deskgate serve` does, for the CLI. The policy modules are imported lazily so that importing the
manifest package stays cheap and free of cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deskgate.scopes.catalogue import SCOPES
from deskgate.server.manifest.build import build_manifest

if TYPE_CHECKING:
    from deskgate.scopes.roles import Roles
    from deskgate.server.policy.model import Policy, ToolRules
    from deskgate.tools.spec import Catalogue, ToolSpec


def served_catalogue(catalogue: Catalogue, policy: Policy) -> Catalogue:
    """The catalogue as served under `policy`, in `tools/list`, in the manifest and in the input models that
    validate calls - so a policy change is a manifest change, reviewed and pinned like any other:

    - each argument the policy lists values for (a `reason_code`) is an `enum` of them;
    - a write takes the control arguments that apply to it, and no other: `idempotency_key` when repeating
      it would act again (not `idempotent`), `confirmation_token` when the policy asks for a confirmation,
      `customer_code` when the customer confirms.
    """
    from deskgate.tools.models import control_field

    def controls(spec: ToolSpec) -> dict[str, tuple[Any, Any]]:
        rules = policy.tools.get(spec.name)
        if spec.read_only or rules is None:
            return {}
        names = [] if spec.idempotent else ["idempotency_key"]
        names += [] if rules.confirmation == "none" else ["confirmation_token"]
        names += ["customer_code"] if rules.confirmation == "customer" else []
        return {name: control_field(name) for name in names}

    return catalogue.served(lambda spec: policy.vocabulary(spec.name), controls)


def build_served_manifest(catalogue: Catalogue, policy: Policy, roles: Roles) -> dict[str, Any]:
    """The manifest of the tools the policy serves: a tool switched off, or every write tool of a read-only
    deployment, is not in it; a rollout share, and each role's own rules, are in the tool's policy entry."""

    def entry_of(name: str, rules: ToolRules) -> dict[str, Any]:
        """Rules as the engine applies them, with the shared settings that bind them. `enabled` is implied
        (a tool switched off is not listed), a rollout shown only when partial."""
        entry = rules.model_dump(mode="json", exclude={"enabled", "rollout"})
        if not rules.enabled:  # only a tool some role still has: off for everyone else
            entry["enabled"] = False
        if rules.rollout < 1:
            entry["rollout"] = rules.rollout
        if rules.reason_codes is not None:
            entry["allowed_reason_codes"] = sorted(policy.reason_codes.get(rules.reason_codes, ()))
        spec = catalogue.get(name)
        if spec is not None and spec.money:
            entry["money_breaker_per_hour"] = str(policy.money_breaker.per_hour)
            if policy.approvals.two_person_above is not None:
                entry["two_person_approval_above"] = str(policy.approvals.two_person_above)
        if rules.confirmation != "none":
            entry["confirmation_ttl"] = policy.confirmation.ttl
        return entry

    def policy_for(name: str) -> dict[str, Any]:
        rules = policy.tools.get(name)
        if rules is None:
            return {}
        entry = entry_of(name, rules)
        by_role = {role: entry_of(name, own) for role, own in sorted(policy.role_rules(name).items())}
        if by_role:
            entry["by_role"] = by_role
        return entry

    grants = {role: sorted(scopes) for role, scopes in roles.grants().items()}
    served = [spec for spec in catalogue if policy.serves(spec)]
    shared = {"approvals_ttl": policy.approvals.ttl, "actions": policy.actions.model_dump(mode="json")}
    return build_manifest(served, policy_for=policy_for, roles=grants, scopes=SCOPES, policy=shared)


def served_manifest() -> dict[str, Any]:
    """The manifest `deskgate serve` would serve here: the catalogue, and the deployment's policy and
    roles (`$DESKGATE_HOME/policy.toml`, `roles.toml`) where it has its own, else the shipped ones."""
    from deskgate.scopes.roles import load_roles
    from deskgate.server.policy.model import load_policy
    from deskgate.server.settings import Paths
    from deskgate.tools.catalogue import build_catalogue

    paths = Paths.from_env()
    catalogue, roles = build_catalogue(), load_roles(paths.roles_file())
    policy = load_policy(catalogue, paths.policy_file(), roles.grants())
    return build_served_manifest(served_catalogue(catalogue, policy), policy, roles)
