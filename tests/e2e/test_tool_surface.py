"""What a model reads - the served tools and the answers - says what is true, through a real MCP client.

Reason codes are `enum`s of each tool's own policy list (and follow the policy into the manifest);
`get_policy` answers per tool; an answer never says "allowed" when nothing ran, and every non-`ok`
answer says what to do next; a tool declares only the control arguments it uses; the agent reads back
what it wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from deskgate.config import packaged
from deskgate.server.manifest import lock
from deskgate.server.manifest.lock import RELEASE_LOCK, ManifestMismatch
from tests.e2e.conftest import Deployment, call, deployed
from tests.e2e.test_scenarios import policy_file
from tests.e2e.test_schemas import served

pytestmark = pytest.mark.anyio
PLAIN_WORDS = {"other"}  # a code that is also an everyday word ("other") says nothing about another tool


def _texts(node: Any) -> list[str]:
    """Every description and title in a schema, at any depth."""
    if isinstance(node, dict):
        own = [v for k, v in node.items() if k in ("description", "title") and isinstance(v, str)]
        return own + [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


# --- 4. reason codes are in the schema ---------------------------------------------------------------

async def test_each_reason_code_is_an_enum_of_its_own_policy_list_and_no_text_shows_another_tools_code(
        deployment: Deployment) -> None:
    """tools/list serves each `reason_code` as an enum of exactly the tool's policy list; no description or
    title of any tool names a code only another tool may use; a client validator and the server both refuse
    a code outside the list (the server saying which codes are allowed), and the manifest serves the same."""
    policy = deployment.runtime.policy
    lists = {name: set(policy.vocabulary(name).get("reason_code", ())) for name in policy.tools}
    every_code = set().union(*lists.values())
    async with deployment.client(deployment.token("supervisor")) as client:
        tools = await served(client)
        with_codes = {name for name, tool in tools.items() if "reason_code" in tool.input_schema["properties"]}
        assert with_codes == {"issue_refund", "apply_account_credit", "cancel_subscription"}
        for name, tool in tools.items():
            own = lists.get(name, set())
            if name in with_codes:
                enum = tool.input_schema["properties"]["reason_code"]["enum"]
                assert enum == list(policy.vocabulary(name)["reason_code"]) and set(enum) == own
                assert deployment.runtime.manifest["tools"][name]["input_schema"] == tool.input_schema
            shown = " ".join([tool.description or "", *_texts(tool.input_schema), *_texts(tool.output_schema)])
            foreign = {code for code in every_code - own - PLAIN_WORDS
                       if re.search(rf"(?<![a-z_]){code}(?![a-z_])", shown)}
            assert not foreign, (name, foreign)
        order = deployment.demo.delivered_order
        wrong = {"order_id": order, "amount": "5.00", "reason_code": "goodwill"}  # a credit's code, not a refund's
        assert not Draft202012Validator(tools["issue_refund"].input_schema).is_valid(wrong)
        answer = await call(client, "issue_refund", **wrong)
        assert (answer["status"], answer["code"]) == ("error", "invalid_arguments")
        assert "damaged_item" in answer["reason"]


async def test_a_policy_that_changes_a_reason_code_list_changes_tools_list_and_the_manifest_which_must_be_repinned(
        home: Path, engine: str | None, tmp_path: Path) -> None:
    """A deployment's policy with one more refund code serves it in the enum (and accepts it), its manifest
    differs from the released lock by exactly that widening, so `deskgate serve` refuses it until pinned."""
    home.mkdir(parents=True, exist_ok=True)
    policy_file(home, ('refund = ["damaged_item",', 'refund = ["damaged_item", "price_match",'))
    async with deployed(home, engine) as deployment:
        async with deployment.client(deployment.token("billing-agent")) as client:
            tools = await served(client)
            assert "price_match" in tools["issue_refund"].input_schema["properties"]["reason_code"]["enum"]
            answer = await call(client, "issue_refund", order_id=deployment.demo.delivered_order, amount="5.00",
                                reason_code="price_match")
            assert answer["status"] == "confirmation_required", answer
        manifest = deployment.runtime.manifest
        assert "price_match" in manifest["tools"]["issue_refund"]["input_schema"]["properties"]["reason_code"]["enum"]
        with pytest.raises(ManifestMismatch) as refused:
            lock.check(manifest, packaged(RELEASE_LOCK))
        kinds = {(c.subject, c.kind) for c in refused.value.changes}
        assert ("issue_refund", "enum_widened") in kinds and ("issue_refund", "policy_list_widened") in kinds
        assert all(c.subject == "issue_refund" for c in refused.value.changes), json.dumps(
            [c.detail for c in refused.value.changes])


# --- 5. get_policy answers per tool ------------------------------------------------------------------

async def test_get_policy_answers_per_tool_and_the_examples_of_its_description_work_for_every_role(
        deployment: Deployment) -> None:
    """`topic` = a tool name gives that tool's rules alone (a write's tier, reason codes, gates, limits, and
    what else binds it; a read: automate, read-only); each `e.g.` example of the served description answers
    `ok` for every shipped role; a tool the session cannot use is an unknown topic that lists what is."""
    for role in ("tier1-agent", "billing-agent", "supervisor"):
        async with deployment.client(deployment.token(role, max_refund="80.00")) as client:
            tools = await served(client)
            described = tools["get_policy"].input_schema["properties"]["topic"]["description"]
            examples = re.findall(r"e\.g\. ([a-z_]+)", described)
            assert len(examples) == 2, described
            for example in examples:
                answer = await call(client, "get_policy", topic=example)
                assert (answer["status"], answer["data"]["topic"]) == ("ok", example), (role, answer)
            address = (await call(client, "get_policy", topic="change_shipping_address"))["data"]["rules"]
            assert address["tier"] == "automate" and address["undo_window_seconds"] == 3600
            assert address["gates"][0]["requires"] == "identity_verified_in_session"
            read = (await call(client, "get_policy", topic="get_order"))["data"]["rules"]
            assert read == {"tier": "automate", "read_only": True}
            refund = await call(client, "get_policy", topic="issue_refund")
            if role == "tier1-agent":
                assert (refund["status"], refund["code"]) == ("error", "unknown_topic")
                assert "change_shipping_address" in refund["reason"] and "money_breaker" in refund["reason"]
                continue
            rules = refund["data"]["rules"]
            assert rules["reason_codes"] == tools["issue_refund"].input_schema["properties"]["reason_code"]["enum"]
            assert [t["above"] for t in rules["thresholds"]] == ["50.00", "500.00"]
            assert rules["confirmation"] == "agent" and rules["confirmation_ttl_seconds"] == 120
            assert rules["money_breaker_per_hour"] == "1500.00" and rules["session_max_refund"] == "80.00"


# --- 7. only the arguments a tool uses ---------------------------------------------------------------

CONTROLS = ("idempotency_key", "confirmation_token", "customer_code")


async def test_control_arguments_appear_only_on_the_tools_where_they_apply(deployment: Deployment) -> None:
    """A confirmation token only where the policy confirms, a customer code only where the customer does, an
    idempotency key only on writes that would act again; a read takes none. One that does not apply is
    refused as an invalid argument, and nothing happens."""
    expected = {"initiate_password_reset": {"idempotency_key"}, "apply_account_credit": {"idempotency_key"},
                "add_ticket_note": {"idempotency_key"}, "escalate_to_human": {"idempotency_key"},
                "reply_to_customer": {"idempotency_key"},
                "undo_action": {"idempotency_key"}, "issue_refund": {"idempotency_key", "confirmation_token"},
                "cancel_subscription": set(CONTROLS)}
    async with deployment.client(deployment.token("supervisor")) as client:
        tools = await served(client)
        for name, tool in tools.items():
            given = {c for c in CONTROLS if c in tool.input_schema["properties"]}
            assert given == expected.get(name, set()), name
        note = await call(client, "add_ticket_note", ticket_id=deployment.demo.pii_ticket, body="Checked.",
                          confirmation_token="x" * 40)
        assert (note["status"], note["code"]) == ("error", "invalid_arguments")
    assert deployment.rows("SELECT COUNT(*) FROM ticket_notes WHERE body = ?", ("Checked.",)) == [(0,)]


async def test_a_retry_with_the_idempotency_key_but_no_token_returns_the_first_result_not_a_new_preview(
        deployment: Deployment) -> None:
    """Preview with a key, confirm with the key and the token, then retry with the key alone (as an agent that
    lost the answer would): the retry answers the refund that ran, and nothing is refunded twice."""
    arguments = {"order_id": deployment.demo.delivered_order, "amount": "7.00", "reason_code": "damaged_item",
                 "idempotency_key": "refund-retry-0001"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        preview = await call(client, "issue_refund", **arguments)
        assert preview["status"] == "confirmation_required"
        done = await call(client, "issue_refund", **arguments, confirmation_token=preview["confirmation_token"])
        assert done["status"] == "ok"
        retry = await call(client, "issue_refund", **arguments)
        assert (retry["status"], retry["data"]) == ("ok", done["data"]), retry
        assert "confirmation_token" not in retry
    assert deployment.rows("SELECT COUNT(*) FROM refunds WHERE order_id = ?", (arguments["order_id"],)) == [(1,)]


# --- 6. answers say what happened and what to do next ------------------------------------------------

ONE_SENTENCE = re.compile(r"^[A-Z][^.!?]*(?:\.[a-z_(][^.!?]*)*[.!]$")  # "get_action_status" etc. inside, one end


def _assert_told(answer: dict[str, Any]) -> None:
    """A non-ok answer: a code that is not "allowed", a reason that is not "Within policy", one next step."""
    assert answer["status"] != "ok"
    assert answer["code"] not in (None, "allowed") and "Within policy" not in answer["reason"], answer
    assert ONE_SENTENCE.match(answer.get("next_step", "")), answer


async def test_an_approval_or_escalation_by_the_tools_own_tier_never_reads_allowed(
        home: Path, engine: str | None) -> None:
    """A tool whose base tier is assist answers pending_approval with code tier_assist, one whose tier is
    escalate answers escalated with tier_escalate - never "allowed" / "Within policy." - and each says what
    to do next."""
    home.mkdir(parents=True, exist_ok=True)
    policy_file(home, ('[tools.add_ticket_note]\ntier = "automate"', '[tools.add_ticket_note]\ntier = "assist"'),
                ('[tools.update_email_preferences]\ntier = "automate"',
                 '[tools.update_email_preferences]\ntier = "escalate"'))
    async with deployed(home, engine) as deployment:
        demo = deployment.demo
        async with deployment.client(deployment.token("billing-agent")) as client:
            held = await call(client, "add_ticket_note", ticket_id=demo.pii_ticket, body="Checked.")
            assert (held["status"], held["code"]) == ("pending_approval", "tier_assist")
            _assert_told(held)
            handed = await call(client, "update_email_preferences", customer_id=demo.customer_id, marketing=False)
            assert (handed["status"], handed["code"]) == ("escalated", "tier_escalate")
            _assert_told(handed)


async def test_every_non_ok_answer_says_the_next_step_in_one_sentence_and_a_denial_gives_one_reason(
        deployment: Deployment) -> None:
    """Unknown tool, bad arguments, unknown order, preview, bad token, approval, escalation, gate denial,
    idempotency conflict, unknown policy topic and a bound session's foreign object: each answer names its
    next step in one sentence; a cancellation failing two rules (not an admin, open invoices) is denied
    with the deciding rule's reason alone."""
    demo = deployment.demo
    order = demo.delivered_order
    refund = {"order_id": order, "reason_code": "damaged_item"}
    answers: list[dict[str, Any]] = []
    async with deployment.client(deployment.token("billing-agent")) as client:
        answers.append(await call(client, "delete_everything"))
        answers.append(await call(client, "get_order", order_id="x"))
        answers.append(await call(client, "get_order", order_id="O-999999"))
        answers.append(await call(client, "issue_refund", **refund, amount="5.00"))
        answers.append(await call(client, "issue_refund", **refund, amount="5.00", confirmation_token="x" * 30))
        answers.append(await call(client, "issue_refund", **refund, amount="120.00"))
        answers.append(await call(client, "issue_refund", **refund, amount="800.00"))
        answers.append(await call(client, "initiate_password_reset", customer_id=demo.customer_id))
        key = {"ticket_id": demo.pii_ticket, "idempotency_key": "note-next-step-1"}
        assert (await call(client, "add_ticket_note", **key, body="one"))["status"] == "ok"
        answers.append(await call(client, "add_ticket_note", **key, body="two"))
        answers.append(await call(client, "get_policy", topic="nothing_like_it"))
        # The requester is established first (verify_identity), so the cancellation reaches its policy.
        verified = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode",
                              value=demo.postcode)
        assert verified["status"] == "ok", verified
        mixed = await call(client, "cancel_subscription", subscription_id=demo.invoice_subscription_id,
                           requester_id=demo.customer_id, reason_code="not_using")
        assert (mixed["status"], mixed["code"]) == ("denied", "gate_requester_is_account_admin")
        assert mixed["reason"] == "Only an admin of the account can cancel its subscription.", mixed
        answers.append(mixed)
    async with deployment.client(deployment.token("tier1-agent", customer=demo.customer_id)) as bound:
        answers.append(await call(bound, "get_customer", customer_id=demo.account_admin))
    codes = [a["code"] for a in answers]
    assert codes == ["unknown_tool", "invalid_arguments", "not_found", "confirmation_required",
                     "confirmation_invalid", "threshold", "threshold", "gate_identity_verified_in_session",
                     "idempotency_conflict", "unknown_topic", "gate_requester_is_account_admin", "binding"], codes
    for answer in answers:
        _assert_told(answer)


# --- 8. the agent reads back what it wrote; authors and "not found" are said truthfully -------------

async def test_the_agent_reads_back_the_address_it_just_wrote_and_it_stays_masked_everywhere_else(
        deployment: Deployment) -> None:
    """A billing agent (no pii:address) changes an order's address: the answer shows the fields it supplied
    in clear, so it can confirm them to the customer; get_order, and the same address on another answer,
    stay masked."""
    demo = deployment.demo
    address = {"line1": "Unter den Linden 77", "city": "Berlin", "postcode": "10117", "country": "DE"}
    async with deployment.client(deployment.token("billing-agent")) as client:
        verified = await call(client, "verify_identity", customer_id=demo.customer_id, method="postcode",
                              value=demo.postcode)
        assert verified["data"]["verified"] is True
        changed = await call(client, "change_shipping_address", order_id=demo.pending_order, address=address)
        assert changed["status"] == "ok", changed
        shown = changed["data"]["shipping_address"]
        for name, value in address.items():
            assert value in shown[name], (name, shown)
        order = (await call(client, "get_order", order_id=demo.pending_order))["data"]["shipping_address"]
        assert all(value not in order[name] for name, value in address.items()), order


async def test_agent_and_system_messages_are_labelled_by_their_author(deployment: Deployment) -> None:
    """In a ticket, the customer's text is customer-supplied, the agent's agent-supplied, and the message the
    system writes when a case is handed to a human system-supplied."""
    demo = deployment.demo
    async with deployment.client(deployment.token("billing-agent")) as client:
        handed = await call(client, "escalate_to_human", ticket_id=demo.pii_ticket, summary="Refund question",
                            tried="Read the ticket", proposed_action="Call the customer back")
        assert handed["status"] == "ok", handed
        messages = (await call(client, "get_ticket", ticket_id=demo.pii_ticket))["data"]["messages"]
    assert {m["author"] for m in messages} == {"customer", "agent", "system"}
    for message in messages:
        assert message["body"].startswith(f"\u00ab{message['author']}-supplied text"), message


async def test_a_missing_order_answers_order_not_found_on_every_tool_that_takes_one(deployment: Deployment) -> None:
    """Reads, the refund check, the refund and the address change alike: `not_found`, "order O-999999 not
    found" - never a customer that cannot be found."""
    missing = "O-999999"
    address = {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"}
    calls = {"find_customer": {"order_id": missing}, "get_order": {"order_id": missing},
             "check_refund_eligibility": {"order_id": missing},
             "issue_refund": {"order_id": missing, "amount": "5.00", "reason_code": "damaged_item"},
             "change_shipping_address": {"order_id": missing, "address": address}}
    async with deployment.client(deployment.token("billing-agent")) as client:
        tools = await served(client)
        assert {n for n, t in tools.items() if "order_id" in t.input_schema["properties"]} == set(calls)
        for name, arguments in calls.items():
            answer = await call(client, name, **arguments)
            assert (answer["status"], answer["code"], answer["reason"]) == (
                "error", "not_found", f"order {missing} not found"), (name, answer)
