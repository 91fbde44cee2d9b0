"""The curated catalogue: all tools, in a fixed order, with consistent security metadata."""

from __future__ import annotations

from typing import get_args

from deskgate.scopes.catalogue import SCOPES
from deskgate.server.manifest.sources import served_catalogue
from deskgate.server.policy.model import load_policy
from deskgate.server.redaction.classes import PiiClass
from deskgate.tools.catalogue import build_catalogue
from deskgate.tools.models import ReversibleTool, WriteInput
from deskgate.tools.spec import OBJECT_ARGUMENTS

ORDER = [
    "find_customer", "get_customer", "get_account", "get_order", "list_orders", "get_subscription", "list_invoices",
    "get_ticket", "list_tickets", "get_policy", "check_refund_eligibility", "get_action_status",
    "verify_identity", "update_email_preferences", "change_shipping_address", "initiate_password_reset",
    "issue_refund", "apply_account_credit", "cancel_subscription", "add_ticket_note", "reply_to_customer",
    "set_ticket_status", "escalate_to_human",
    "undo_action",
]


def test_build_catalogue_registers_all_24_tools_in_a_fixed_order() -> None:
    """Reads first, then writes; two builds agree exactly."""
    assert [t.name for t in build_catalogue()] == ORDER
    assert [t.name for t in build_catalogue()] == ORDER


def test_every_tool_requires_a_known_scope_and_reads_are_separated_from_writes() -> None:
    """Scopes come from the scope catalogue; write tools take `WriteInput`, read tools do not."""
    for spec in build_catalogue():
        assert spec.scope in SCOPES, spec.name
        assert issubclass(spec.input_model, WriteInput) is not spec.read_only, spec.name
        assert spec.input_model.model_config.get("extra") == "forbid", spec.name


def test_risk_metadata_matches_the_domain() -> None:
    """Refunds and cancellations are irreversible with previews; money tools and reversible tools are exactly
    the ones the domain says."""
    catalogue = build_catalogue()
    by_name = {t.name: t for t in catalogue}
    assert {t.name for t in catalogue if t.irreversible} == {"issue_refund", "cancel_subscription"}
    assert all(by_name[n].preview is not None for n in ("issue_refund", "cancel_subscription"))
    assert {t.name for t in catalogue if t.money} == {"issue_refund", "apply_account_credit"}
    reversible = {t.name for t in catalogue if t.reversible_by == "undo_action"}
    assert reversible == set(get_args(ReversibleTool))
    assert by_name["issue_refund"].annotations().destructive_hint
    assert not by_name["apply_account_credit"].annotations().destructive_hint


def test_object_arguments_use_the_shared_vocabulary() -> None:
    """Tools acting on an object name it by the vocabulary, so the chain can check bindings generically."""
    by_name = {t.name: t for t in build_catalogue()}
    assert by_name["issue_refund"].object_arguments() == ("order_id",)
    assert by_name["apply_account_credit"].object_arguments() == ("account_id",)
    assert by_name["cancel_subscription"].object_arguments() == ("subscription_id",)
    assert by_name["undo_action"].object_arguments() == ("customer_id", "account_id")
    assert set(by_name["escalate_to_human"].object_arguments()) == {"customer_id", "ticket_id"}
    for spec in by_name.values():
        if spec.name not in ("get_policy", "get_action_status", "find_customer"):
            assert spec.object_arguments(), spec.name
        assert set(spec.object_arguments()) <= set(OBJECT_ARGUMENTS)


def test_inputs_carrying_personal_data_or_secrets_declare_it() -> None:
    """Redaction of audit records reads these classes from the input models."""
    by_name = {t.name: t for t in build_catalogue()}
    assert by_name["find_customer"].input_pii_classes()["email"] == PiiClass.EMAIL
    assert by_name["find_customer"].input_pii_classes()["phone"] == PiiClass.PHONE
    assert by_name["verify_identity"].input_pii_classes()["value"] == PiiClass.SECRET
    address = by_name["change_shipping_address"].input_pii_classes()
    assert {address[f"address.{f}"] for f in ("line1", "line2", "city", "postcode", "country")} == {PiiClass.ADDRESS}
    catalogue = build_catalogue()
    for spec in served_catalogue(catalogue, load_policy(catalogue)):
        classes = spec.input_pii_classes()
        for control in ("confirmation_token", "customer_code"):
            assert classes.get(control, PiiClass.SECRET) == PiiClass.SECRET, spec.name
    assert by_name["cancel_subscription"].input_pii_classes().get("customer_code") is None  # served, not declared


def test_customer_owned_outputs_carry_the_customer_id() -> None:
    """The chain checks a bound session's results by their customer_id fields."""
    for spec in build_catalogue():
        if spec.name in ("get_policy", "list_invoices", "apply_account_credit"):
            continue
        paths = spec.pii_classes()
        assert any(p == "customer_id" or p.endswith(".customer_id") for p in paths), spec.name


def test_every_tool_has_json_schemas_for_mcp_and_its_pii_classes_beside_them() -> None:
    """Input and output models render to JSON schema; the PII classes are carried beside, not in, them."""
    for spec in build_catalogue():
        assert spec.input_schema()["type"] == "object"
        assert "x-pii" not in str(spec.input_schema()) + str(spec.output_schema())
        assert spec.pii_annotation()["outputs"] or spec.name == "verify_identity"
