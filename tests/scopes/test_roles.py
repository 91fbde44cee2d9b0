"""Roles: bundles of catalogue scopes, checked when the file is loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from deskgate.scopes.catalogue import SCOPES
from deskgate.scopes.roles import load_roles
from deskgate.server.errors import ConfigError, InvalidArguments

READS = {s for s in SCOPES if s.endswith(":read")}
TIER1 = READS | {"identity:verify", "preferences:write", "address:write", "password:reset", "notes:write",
                 "escalations:write", "actions:undo", "replies:write", "tickets:status"}


def test_tier1_agent_reads_everything_and_makes_only_small_changes() -> None:
    """tier1-agent: all reads, identity, preferences, address, password reset, notes, replies, ticket status,
    escalate, undo."""
    assert load_roles().scopes_of("tier1-agent") == TIER1


def test_billing_agent_is_tier1_plus_money_and_cancellations() -> None:
    """billing-agent adds refunds, credits and subscription cancellation - and nothing else."""
    assert load_roles().scopes_of("billing-agent") == TIER1 | {"refunds:write", "credits:write",
                                                               "subscriptions:cancel"}


def test_supervisor_has_every_scope_including_pii() -> None:
    """supervisor holds the whole catalogue, pii:* included."""
    assert load_roles().scopes_of("supervisor") == set(SCOPES)


def test_no_shipped_role_below_supervisor_sees_pii_in_clear() -> None:
    """PII in clear is a supervisor privilege."""
    roles = load_roles()
    for role in ("tier1-agent", "billing-agent"):
        assert not {s for s in roles.scopes_of(role) if s.startswith("pii:")}


def test_an_unknown_role_is_invalid_arguments_naming_the_known_ones() -> None:
    """Asking for a role that does not exist is a clear error, not an empty grant."""
    with pytest.raises(InvalidArguments, match="tier1-agent"):
        load_roles().scopes_of("admin")


def test_an_unknown_scope_stops_loading_with_file_and_line(tmp_path: Path) -> None:
    """A typo in a scope name is caught at start-up, naming the file and the line."""
    path = tmp_path / "roles.toml"
    path.write_text('[roles.tier1-agent]\ndescription = "x"\nscopes = ["orders:read", "oders:write"]\n')
    with pytest.raises(ConfigError, match="oders:write") as refusal:
        load_roles(path)
    assert refusal.value.file == str(path) and refusal.value.line == 3


@pytest.mark.parametrize("text, message", [
    ('[roles.a-role]\ndescription = "x"\nincludes = ["ghost"]\n', "unknown role 'ghost'"),
    ('[roles.aa]\ndescription = "x"\nincludes = ["bb"]\n[roles.bb]\ndescription = "y"\nincludes = ["aa"]\n',
     "cycle"),
    ('[roles.empty]\ndescription = "x"\n', "grants no scope"),
    ('[roles.aa]\ndescription = "x"\nscopes = ["orders:read"]\npowers = ["all"]\n', "powers"),
    ('[roles.Bad_Name]\ndescription = "x"\nscopes = ["orders:read"]\n', "roles"),
])
def test_a_malformed_roles_file_is_a_config_error(tmp_path: Path, text: str, message: str) -> None:
    """Unknown includes, cycles, empty roles, unknown keys and bad names all stop loading."""
    path = tmp_path / "roles.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_roles(path)
