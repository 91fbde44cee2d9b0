"""Served schemas are standard JSON Schema 2020-12, and a strict validator and the server agree on values.

`STRICT` is the 2020-12 meta-schema with `unevaluatedProperties: false` at every level (its
`$dynamicAnchor` takes the place of the standard one in the recursion), so any keyword outside the
2020-12 vocabularies (`x-pii`, pydantic's `gt`, `decimal_places`, ...) is an error, as in strict Ajv.
Values are compared as exact decimals (JSON numbers parsed as `Decimal`, schema and instance alike):
JSON Schema's numbers are mathematical values, and `multipleOf: 0.01` is exact only that way.
"""

from __future__ import annotations

import json
from decimal import Decimal, localcontext
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema_specifications import REGISTRY
from mcp import Client
from pydantic import ValidationError
from referencing.jsonschema import DRAFT202012

from deskgate.server.mcp_app import META_PII
from deskgate.tools.spec import ToolSpec
from tests.e2e.conftest import Deployment, call

sqlite_only = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # what is served does not depend on it

STRICT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://deskgate.test/strict-2020-12",
    "$dynamicAnchor": "meta",
    "$ref": "https://json-schema.org/draft/2020-12/schema",
    "unevaluatedProperties": False,
}
STRICT_META = Draft202012Validator(STRICT, registry=REGISTRY.with_resource(STRICT["$id"],
                                                                           DRAFT202012.create_resource(STRICT)))

# One valid value per argument name: the catalogue shares one vocabulary (DESIGN.md).
VALID: dict[str, Any] = {
    "customer_id": "C-1", "order_id": "O-2", "subscription_id": "S-1", "ticket_id": "T-1", "account_id": "A-1",
    "action_id": "ACT-1", "requester_id": "C-2", "amount": "5.00", "reason_code": "damaged", "email":
    "maria.schneider@example.com", "phone": "+4915112345678", "method": "postcode", "value": "10115",
    "body": "a note", "summary": "needs help", "tried": "looked it up", "proposed_action": "call back",
    "priority": "normal", "topic": "refunds", "status": None, "limit": 5, "marketing": True,
    "product_updates": None, "newsletter": None, "idempotency_key": None, "confirmation_token": None,
    "customer_code": None, "address": {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"},
}
# Exactly one of these is given in a valid call (the others are left out).
ALTERNATIVES = {"find_customer": ("email", "phone", "order_id"), "list_invoices": ("customer_id", "account_id"),
                "undo_action": ("customer_id", "account_id")}
CANDIDATES: list[Any] = [
    "", "abc", "C-1", "O-1", "T-1", "ACT-1", "-5", "0", "0.00", "1.1", "0.07", "05.00", "1000000", "1000000.00",
    "1000000.01", "1e3", " 5", "5 ", "\uff15", "1_0", "+4915112345678", "0049 151 1234 5678", "(+49) 30-1234567",
    "abcdefg", "not-an-email", "a@b.c", "card_last4", "4242", "42a2", "urgent", "delivered", "refunds",
    "Refunds", "x" * 5000,
    0, -5, 5, 1.1, 0.07, 0.001, 1000000, 1000000.01, 1e300, 50, 51,
    True, False, None, [], {}, ["C-1"],
    {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE"},
    {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "de"},
    {"line1": "1 Main St", "city": "Berlin", "postcode": "10115"},
    {"line1": "1 Main St", "city": "Berlin", "postcode": "10115", "country": "DE", "extra": 1},
]
# Tools whose rules across fields the server enforces and their schemas do not state: none (each input model
# states its rule in `oneOf`/`anyOf`, tools/read.py `one_of_given`), so a client's validator enforces them too.
CROSS_FIELD: set[str] = set()


def exact(value: Any) -> Any:
    """JSON as a strict validator should read it: numbers as exact decimals."""
    return json.loads(json.dumps(value), parse_float=Decimal)


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json, parse_float=Decimal))


def schema_accepts(schema: dict[str, Any], value: Any) -> bool:
    """Built once per distinct schema (the test checks ~10,000 values against a few dozen schemas)."""
    with localcontext() as context:
        context.prec = 1000  # enough digits for `1e300 % 0.01` to be exact
        return _validator(json.dumps(schema, sort_keys=True)).is_valid(exact(value))


def model_level_refusal(spec: ToolSpec, arguments: dict[str, Any]) -> bool:
    """True when the input model refuses only by a rule across fields (an error with no field location)."""
    try:
        spec.input_model.model_validate(arguments)
    except ValidationError as exc:
        return all(error["loc"] == () for error in exc.errors())
    return False


def bases(spec: ToolSpec) -> list[dict[str, Any]]:
    schema = spec.input_schema()
    required = set(schema.get("required", []))
    base = {name: VALID[name] for name in schema["properties"] if name in required}
    if "reason_code" in base:  # the policy's list of this tool: its first code
        base["reason_code"] = schema["properties"]["reason_code"]["enum"][0]
    if spec.name == "verify_identity":
        base["value"] = "10115"
    if spec.name in ("update_email_preferences",):
        base["marketing"] = True
    if spec.name == "escalate_to_human":
        base["ticket_id"] = "T-1"
    if spec.name == "set_ticket_status":
        base["status"] = "pending"  # `status` is optional elsewhere (list_tickets), required here
    if spec.name in ALTERNATIVES:
        return [{**base, name: VALID[name]} for name in ALTERNATIVES[spec.name]]
    return [base]


async def served(client: Client) -> dict[str, Any]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


@pytest.mark.anyio
@sqlite_only
async def test_every_served_schema_is_strict_json_schema_2020_12_and_pii_classes_are_in_meta(
        deployment: Deployment) -> None:
    """Every input and output schema passes `check_schema` and the strict meta-schema; no `x-` keyword remains;
    each tool's PII classes are in its `_meta` and equal to the manifest's."""
    manifest = deployment.runtime.manifest["tools"]
    async with deployment.client(deployment.token("supervisor")) as client:
        tools = await served(client)
    assert set(tools) == set(manifest)
    for name, tool in tools.items():
        for schema in (tool.input_schema, tool.output_schema):
            assert schema is not None
            Draft202012Validator.check_schema(schema)
            problems = [e.message for e in STRICT_META.iter_errors(schema)]
            assert not problems, (name, problems)
            assert '"x-' not in json.dumps(schema)
        assert tool.meta is not None and tool.meta[META_PII] == manifest[name]["pii"]


def test_the_strict_meta_schema_refuses_what_deskgate_used_to_serve() -> None:
    """The check has teeth: yesterday's `x-pii` and pydantic's decimal keywords are refused at any depth."""
    for schema in ({"type": "string", "x-pii": "email"},
                   {"properties": {"amount": {"anyOf": [{"type": "number"}], "gt": 0, "decimal_places": 2}}},
                   {"$defs": {"A": {"properties": {"a": {"type": "string", "max_digits": 9}}}}}):
        assert list(STRICT_META.iter_errors(schema)), schema


@pytest.mark.anyio
@sqlite_only
async def test_a_strict_validator_and_the_server_agree_on_good_and_bad_values(deployment: Deployment) -> None:
    """Every argument of every tool, one at a time, gets ~60 good and bad values (amount spellings, ids, types,
    bounds, nested addresses): the schema accepts exactly what the server accepts, and every answer
    validates against the tool's output schema."""
    disagreements: list[tuple[str, str, Any, bool, bool]] = []
    cross_field: set[str] = set()
    catalogue = {spec.name: spec for spec in deployment.runtime.chain.catalogue}
    async with deployment.client(deployment.token("supervisor")) as client:
        tools = await served(client)
        for name, tool in tools.items():
            spec = catalogue[name]
            for base in bases(spec):
                assert schema_accepts(tool.input_schema, base), (name, base)
                for field in tool.input_schema["properties"]:
                    for value in CANDIDATES:
                        arguments = {**base, field: value}
                        result = await client.call_tool(name, arguments)
                        answer = result.structured_content
                        assert answer is not None
                        assert schema_accepts(tool.output_schema, answer), (name, answer)
                        by_server = answer.get("code") != "invalid_arguments"
                        by_schema = schema_accepts(tool.input_schema, arguments)
                        if by_server == by_schema:
                            continue
                        if name in CROSS_FIELD and by_schema and model_level_refusal(spec, arguments):
                            cross_field.add(name)
                            continue
                        disagreements.append((name, field, value, by_schema, by_server))
    assert not disagreements, disagreements[:20]
    assert cross_field == CROSS_FIELD  # each rule across fields was met, and none elsewhere


@pytest.mark.anyio
@sqlite_only
async def test_the_good_answers_of_every_read_tool_validate_against_its_strict_output_schema(
        deployment: Deployment) -> None:
    """Real data (with decimals, dates, masked PII) in `ok` answers matches the served output schemas."""
    demo = deployment.demo
    reads = {"get_customer": {"customer_id": demo.customer_id}, "get_order": {"order_id": demo.delivered_order},
             "list_orders": {"customer_id": demo.customer_id}, "get_subscription": {"subscription_id": "S-1"},
             "list_invoices": {"account_id": demo.invoice_account_id}, "get_ticket": {"ticket_id": demo.pii_ticket},
             "list_tickets": {"customer_id": demo.customer_id}, "get_policy": {},
             "check_refund_eligibility": {"order_id": demo.delivered_order, "amount": 1.1},
             "find_customer": {"email": demo.customer_email}}
    for role in ("tier1-agent", "supervisor"):
        async with deployment.client(deployment.token(role)) as client:
            tools = await served(client)
            for name, arguments in reads.items():
                if name not in tools:
                    continue
                answer = await call(client, name, **arguments)
                assert answer["status"] == "ok", (name, answer)
                assert schema_accepts(tools[name].output_schema, answer), (name, answer)
