"""Arbitrary JSON thrown at every tool through a real client: always a structured answer, never a crash."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Deployment, call

pytestmark = pytest.mark.anyio

TOOLS = ["find_customer", "get_customer", "get_order", "list_orders", "get_subscription", "list_invoices",
         "get_ticket", "list_tickets", "get_policy", "check_refund_eligibility", "get_action_status",
         "verify_identity", "update_email_preferences", "change_shipping_address", "initiate_password_reset",
         "issue_refund", "apply_account_credit", "cancel_subscription", "add_ticket_note", "escalate_to_human",
         "undo_action", "no_such_tool"]
KEYS = ["customer_id", "order_id", "account_id", "ticket_id", "subscription_id", "amount", "reason_code", "email",
        "phone", "requester_id", "action_id", "body", "confirmation_token", "idempotency_key", "customer_code",
        "address", "method", "value", "limit", "status", "__proto__", "", "x" * 300]
TRICKY = st.sampled_from(["C-1", "O-1", "O-\uff11", "C-1\u200b", "A-1", "T-1", "S-1", "ACT-1", "AP-ABCDEF012345",
                          "10", "10.0", "1e309", "-5", "NaN", "\u202eO-1", "O-1\n", "' OR 1=1 --", "\x00",
                          "damaged_item", "+4915112345678", "maria.schneider@example.com"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                    st.text(string.printable, max_size=40), st.text(max_size=20), TRICKY)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(KEYS), inner, max_size=3), max_leaves=8)
ARGUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the chain is engine-agnostic; one is enough here
async def test_any_json_to_any_tool_gets_a_structured_answer_and_no_internal_error(deployment: Deployment) -> None:
    """Hundreds of random calls (wrong types, unicode tricks, huge ints, nested junk, unknown keys and tools):
    every answer validates, has a known status, and none is an internal error."""
    token = deployment.token("supervisor")
    seen: list[dict[str, Any]] = []

    async with deployment.client(token) as client:

        @settings(max_examples=250, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
        @given(tool=st.sampled_from(TOOLS), arguments=ARGUMENTS)
        def examples(tool: str, arguments: dict[str, Any]) -> None:
            seen.append({"tool": tool, "arguments": arguments})

        examples()
        for example in seen:
            result = await call(client, example["tool"], **example["arguments"])
            assert result["status"] in {"ok", "denied", "error", "confirmation_required", "pending_approval",
                                        "escalated"}, (example, result)
            assert result.get("code") != "internal_error", (example, result)
            if result["status"] != "ok":
                assert result["reason"], (example, result)
    assert len(seen) == 250
