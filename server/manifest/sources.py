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
    from deskgate.server.policy.model import Policy
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
    def policy_for(name: str) -> dict[str, Any]:
        """The tool's rules as the engine applies them, with the shared settings that bind it."""
        rules = policy.tools.get(name)
        if rules is None:
            return {}
        entry = rules.model_dump(mode="json")
        if rules.reason_codes is not None:
            entry["allowed_reason_codes"] = sorted(policy.allowed_reason_codes(name))
        spec = catalogue.get(name)
        if spec is not None and spec.money:
            entry["money_breaker_per_hour"] = str(policy.money_breaker.per_hour)
            if policy.approvals.two_person_above is not None:
                entry["two_person_approval_above"] = str(policy.approvals.two_person_above)
        if rules.confirmation != "none":
            entry["confirmation_ttl"] = policy.confirmation.ttl
        return entry

    grants = {role: sorted(scopes) for role, scopes in roles.grants().items()}
    return build_manifest(catalogue, policy_for=policy_for, roles=grants, scopes=SCOPES)


def served_manifest() -> dict[str, Any]:
    """The manifest `deskgate serve` would serve here: the catalogue, the roles, and the deployment's
    policy (`$DESKGATE_HOME/policy.toml`) when it has one, else the shipped policy."""
    from deskgate.scopes.roles import load_roles
    from deskgate.server.policy.model import load_policy
    from deskgate.server.settings import Paths
    from deskgate.tools.catalogue import build_catalogue

    catalogue = build_catalogue()
    policy = load_policy(catalogue, Paths.from_env().policy_file())
    return build_served_manifest(served_catalogue(catalogue, policy), policy, load_roles())
