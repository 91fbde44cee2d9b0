"""The manifest: what it holds, that it is deterministic, and that every reviewed detail is in its hash."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import create_model

from deskgate.server.errors import ConfigError
from deskgate.server.manifest.build import HASH_KEY, build_manifest, canonical_bytes, manifest_hash
from deskgate.server.redaction.classes import PiiClass
from deskgate.tools.spec import ToolSpec, pii

CONFTEST = Path(__file__).with_name("conftest.py")


def test_each_tool_entry_holds_exactly_what_tools_list_serves(manifest_of: Any, specs: list[ToolSpec]) -> None:
    """Title, description, both schemas and the annotations are those of the `tools/list` listing."""
    from deskgate.server.mcp_app import tool_listing  # the server's own listing, not a copy of it

    manifest = manifest_of()
    for spec in specs:
        served = tool_listing(spec).model_dump(mode="json", by_alias=True, exclude_none=True)
        entry = manifest["tools"][spec.name]
        assert canonical_bytes(entry["input_schema"]) == canonical_bytes(served["inputSchema"])
        assert canonical_bytes(entry["output_schema"]) == canonical_bytes(served["outputSchema"])
        assert entry["annotations"] == served["annotations"]
        assert (entry["title"], entry["description"]) == (served["title"], served["description"])


def test_a_tool_entry_carries_its_controls_pii_and_the_roles_that_reach_it(manifest_of: Any) -> None:
    """Scope, risk, policy (decimals as exact strings), PII of inputs and outputs, and reaching roles."""
    refund = manifest_of()["tools"]["issue_refund"]
    assert (refund["scope"], refund["risk"], refund["read_only"], refund["irreversible"], refund["money"]) == (
        "refunds:write", "critical", False, True, True)
    assert refund["annotations"]["destructiveHint"] is True
    assert refund["policy"]["thresholds"][0] == {"above": "50.00", "tier": "assist"}
    assert refund["pii"] == {"outputs": {"card_last4": "card", "refund_id": "none"},
                             "inputs": {"order_id": "none", "reason_code": "none"}}
    assert refund["roles"] == ["billing", "supervisor"]
    assert refund["flags"] == []


def test_the_manifest_carries_the_scope_and_role_catalogues(manifest_of: Any) -> None:
    """Scopes with their descriptions and roles with their sorted scopes are part of what is reviewed."""
    manifest = manifest_of(roles={"agent": ["orders:read", "customers:read", "orders:read"]})
    assert manifest["roles"] == {"agent": ["customers:read", "orders:read"]}
    assert manifest["scopes"]["refunds:write"] == "Refund an order (irreversible)."


def test_the_hash_is_sha256_of_the_canonical_manifest_without_the_hash(manifest_of: Any) -> None:
    """Anyone can recompute `manifest_hash` from the JSON with a stock SHA-256 and RFC 8785."""
    manifest = manifest_of()
    body = {k: v for k, v in manifest.items() if k != HASH_KEY}
    assert manifest[HASH_KEY] == hashlib.sha256(canonical_bytes(body)).hexdigest() == manifest_hash(manifest)


def test_identical_inputs_give_identical_bytes(manifest_of: Any, specs: list[ToolSpec]) -> None:
    """Building twice, with roles and policy given in another order, gives the same bytes."""
    first = manifest_of()
    reordered = manifest_of(list(reversed(specs)),
                            roles={r: list(reversed(s)) for r, s in reversed(list(manifest_of()["roles"].items()))})
    assert canonical_bytes(first) == canonical_bytes(reordered)


@pytest.mark.parametrize("script", ["sample", "shipped"])
def test_two_processes_with_different_hash_seeds_produce_the_same_bytes(script: str) -> None:
    """Set and dict iteration order never leaks into the output (PYTHONHASHSEED varies)."""
    code = (
        f"import runpy; runpy.run_path({str(CONFTEST)!r}, run_name='__main__')" if script == "sample" else
        "import sys; from deskgate.server.manifest.sources import served_manifest; "
        "from deskgate.server.manifest.build import canonical_bytes; "
        "sys.stdout.buffer.write(canonical_bytes(served_manifest()))"
    )
    outputs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("0", "4242")
    ]
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith(b"{")


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("issue_refund", {"description": "Refund part or all of an order. Irreversible: the first call returns a "
                                         "preview now."}),
        ("find_customer", {"title": "Find customers"}),
        ("add_note", {"scope": "orders:read"}),
        ("add_note", {"idempotent": True}),
    ],
)
def test_one_changed_word_or_scope_changes_the_hash(
    manifest_of: Any, spec_changes: Any, name: str, change: dict[str, Any]
) -> None:
    """A single word of a description, a title or the required scope is enough."""
    assert manifest_of(spec_changes(name, **change))[HASH_KEY] != manifest_of()[HASH_KEY]


def test_one_schema_field_changes_the_hash(manifest_of: Any, specs: list[ToolSpec], spec_changes: Any) -> None:
    """A field added to an input model changes the hash."""
    refund = next(s for s in specs if s.name == "issue_refund")
    wider = create_model("RefundIn", __base__=refund.input_model,
                         note=(str, pii(PiiClass.FREE_TEXT, default="", description="Shown to the customer")))
    assert manifest_of(spec_changes("issue_refund", input_model=wider))[HASH_KEY] != manifest_of()[HASH_KEY]


def test_one_tier_or_one_role_changes_the_hash(manifest_of: Any, sample: Any) -> None:
    """The policy entry and the role catalogue are inside the hash too."""
    base = manifest_of()[HASH_KEY]
    raised = {**sample.policy, "issue_refund": {**sample.policy["issue_refund"], "tier": "assist"}}
    assert manifest_of(policy=raised)[HASH_KEY] != base
    assert manifest_of(roles={**sample.roles, "agent": [*sample.roles["agent"], "refunds:write"]})[HASH_KEY] != base


def test_a_tool_requiring_a_scope_outside_the_catalogue_is_refused(manifest_of: Any, spec_changes: Any) -> None:
    """Deny by default: a scope nobody defined cannot be reviewed, so the manifest is not built."""
    with pytest.raises(ConfigError) as caught:
        manifest_of(spec_changes("add_note", scope="notes:admin"))
    assert caught.value.code == "config_invalid"
    assert "notes:admin" in caught.value.reason


def test_a_role_granting_an_unknown_scope_is_refused(manifest_of: Any) -> None:
    """A role is a bundle of catalogue scopes and nothing else."""
    with pytest.raises(ConfigError, match="everything:write"):
        manifest_of(roles={"agent": ["orders:read", "everything:write"]})


def test_a_role_given_as_one_string_is_refused(manifest_of: Any) -> None:
    """`"orders:read"` is not iterated into letters."""
    with pytest.raises(ConfigError, match="list of names"):
        manifest_of(roles={"agent": "orders:read"})


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ({"tier": "automate", "cap": float("nan")}, "not finite"),
        ({"tier": "automate", "cap": Decimal("Infinity")}, "not finite"),
        ({"tier": "automate", "when": object()}, "not plain JSON"),
        ({"tier": "automate", 3: "three"}, "not a string"),
    ],
)
def test_a_policy_entry_that_is_not_plain_json_is_refused(manifest_of: Any, entry: dict[Any, Any], why: str) -> None:
    """No guessing at how to serialise a value: the build fails, naming the tool."""
    with pytest.raises(ConfigError, match=why) as caught:
        manifest_of(policy={"add_note": entry})
    assert "add_note" in caught.value.reason


def test_a_policy_lookup_that_returns_no_table_is_refused(specs: list[ToolSpec], sample: Any) -> None:
    """`policy_for` must answer with a mapping for every tool."""
    with pytest.raises(ConfigError, match="must be a table"):
        build_manifest(sample.catalogue(specs), policy_for=lambda name: ["automate"],  # type: ignore[arg-type,return-value]
                       roles=sample.roles, scopes=sample.scopes)


def test_the_shipped_catalogue_builds_with_every_tool_reviewed_and_unflagged() -> None:
    """The real catalogue, policy and roles give a manifest whose tools all carry a scope, risk and no flag."""
    from deskgate.server.manifest.sources import served_manifest
    from deskgate.tools.catalogue import build_catalogue

    manifest = served_manifest()
    assert sorted(manifest["tools"]) == sorted(spec.name for spec in build_catalogue())
    for tool in manifest["tools"].values():
        assert tool["scope"] in manifest["scopes"] and tool["risk"] and tool["flags"] == []
        assert tool["read_only"] or tool["policy"]["tier"] in ("automate", "assist", "escalate")
