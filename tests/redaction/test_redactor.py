"""Schema-driven redaction of tool results: per class and scope, and the result still fits its model."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from pydantic import BaseModel

from deskgate.server.errors import ConfigError
from deskgate.server.redaction.classes import PiiClass
from deskgate.server.redaction.envelope import CLOSE, OPEN
from deskgate.server.redaction.fingerprint import FingerprintKey
from deskgate.server.redaction.masks import HIDDEN
from deskgate.server.redaction.policy import RedactionConfig, VisibilityPolicy
from deskgate.server.redaction.redactor import Redactor, supplied_values
from deskgate.tools.spec import ToolSpec, pii


class Order(BaseModel):
    order_id: str = pii(PiiClass.NONE)
    customer_id: str = pii(PiiClass.NONE)
    card_last4: str | None = pii(PiiClass.CARD)
    status: str = pii(PiiClass.NONE)


class Message(BaseModel):
    author: str = pii(PiiClass.NAME)
    body: str = pii(PiiClass.FREE_TEXT)


class CustomerView(BaseModel):
    customer_id: str = pii(PiiClass.NONE)
    name: str = pii(PiiClass.NAME)
    email: str = pii(PiiClass.EMAIL)
    phone: str | None = pii(PiiClass.PHONE)
    address: str = pii(PiiClass.ADDRESS)
    dob: str = pii(PiiClass.DOB)
    iban: str = pii(PiiClass.IBAN)
    last_ip: str = pii(PiiClass.IP)
    tags: list[str] = pii(PiiClass.NONE)
    orders: list[Order]
    messages: list[Message]
    lifetime_orders: int


class _Args(BaseModel):
    customer_id: str


async def _handler(ctx: Any, args: _Args) -> CustomerView:
    raise AssertionError("never called: only the spec's metadata is read")


SPEC = ToolSpec(
    name="get_customer", title="Get customer", description="Read one customer.", input_model=_Args,
    output_model=CustomerView, handler=_handler, scope="customers:read", read_only=True,
)
PII_MAP = SPEC.pii_classes()

CUSTOMER = CustomerView(
    customer_id="C-1042",
    name="Jane Doe",
    email="jane.doe@example.com",
    phone="+44 7700 900123",
    address="221B Baker Street, London NW1 6XE, United Kingdom",
    dob="1985-04-12",
    iban="DE89 3704 0044 0532 0130 00",
    last_ip="203.0.113.7",
    tags=["vip", "contact me at jane.doe@example.com"],
    orders=[
        Order(order_id="O-5531", customer_id="C-1042", card_last4="4242", status="shipped"),
        Order(order_id="O-5532", customer_id="C-1042", card_last4=None, status="card 4111 1111 1111 1111 declined"),
    ],
    messages=[
        Message(author="Jane Doe", body="Refund O-5531 to 4111 1111 1111 1111 please, call +44 7700 900123."),
        Message(author="Agent Smith", body=""),
    ],
    lifetime_orders=2,
).model_dump(mode="json")

TIER1 = frozenset({"customers:read"})


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(VisibilityPolicy.load(), FingerprintKey(secrets.token_bytes(32)))


def test_the_pii_map_comes_from_the_output_model_and_walks_lists():
    """Dotted paths reach into list items (orders.card_last4 applies to every order)."""
    assert PII_MAP["orders.card_last4"] is PiiClass.CARD
    assert PII_MAP["messages.body"] is PiiClass.FREE_TEXT


def test_a_tier1_session_gets_every_declared_field_masked(redactor):
    """Without pii scopes each class is masked in its documented format."""
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1)
    assert out["name"] == "J*** D***"
    assert out["email"] == "j***@example.com"
    assert out["phone"] == "+44 •••• ••• 123"
    assert out["address"] == "•••, United Kingdom"
    assert out["dob"] == "1985-••-••"
    assert out["iban"] == "DE•• •••• 3000"
    assert out["last_ip"] == "203.0.•••.•••"
    assert [o["card_last4"] for o in out["orders"]] == ["•••• 4242", None]


def test_the_redacted_result_still_validates_against_the_output_model(redactor):
    """str stays str, None stays None, lists keep their length, ints are untouched."""
    for scopes in (TIER1, TIER1 | {"pii:contact", "pii:address", "pii:identity"}):
        out = redactor.redact_output(CUSTOMER, PII_MAP, scopes)
        model = CustomerView.model_validate(out)
        assert len(model.orders) == 2 and len(model.messages) == 2 and len(model.tags) == 2
        assert model.lifetime_orders == 2 and model.orders[1].card_last4 is None


def test_ids_and_statuses_survive_untouched(redactor):
    """Fields declared NONE keep their ids; the detectors do not mistake C-1042 or O-5531 for PII."""
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1)
    assert out["customer_id"] == "C-1042"
    assert [o["order_id"] for o in out["orders"]] == ["O-5531", "O-5532"]
    assert out["orders"][0]["status"] == "shipped"


def test_the_contact_scope_sees_email_and_phone_in_clear_but_not_the_rest(redactor):
    """pii:contact clears exactly the contact classes."""
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1 | {"pii:contact"})
    assert out["email"] == "jane.doe@example.com"
    assert out["phone"] == "+44 7700 900123"
    assert out["name"] == "J*** D***"
    assert out["iban"] == "DE•• •••• 3000"


def test_detectors_catch_pii_in_fields_declared_none(redactor):
    """Defence in depth: an email inside a NONE field, a card inside a status, are still masked."""
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1)
    assert out["tags"] == ["vip", "contact me at j***@example.com"]
    assert out["orders"][1]["status"] == "card •••• 1111 declined"


def test_detected_values_follow_the_session_visibility_of_their_class(redactor):
    """With pii:contact an email in free text stays clear, while a card in the same text is masked."""
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1 | {"pii:contact"})
    assert out["tags"][1] == "contact me at jane.doe@example.com"
    assert "4111 1111" not in out["orders"][1]["status"]


def test_free_text_is_scanned_and_marked_as_customer_supplied(redactor):
    """A FREE_TEXT field is masked by the detectors and wrapped in the untrusted-text envelope."""
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1)
    body = out["messages"][0]["body"]
    assert body == f"{OPEN}\nRefund O-5531 to •••• 1111 please, call +44 •••• ••• 123.\n{CLOSE}"
    assert out["messages"][1]["body"] == ""


def test_a_hidden_class_becomes_the_fixed_marker_everywhere(redactor):
    """Hidden fields and hidden values inside text both become the marker string."""
    hidden = {"default": "hidden"}
    config = RedactionConfig.model_validate({"classes": {"email": hidden, "card": hidden}})
    hiding = Redactor(VisibilityPolicy(config), FingerprintKey(secrets.token_bytes(32)))
    out = hiding.redact_output(CUSTOMER, PII_MAP, TIER1)
    assert out["email"] == HIDDEN
    assert out["tags"][1] == f"contact me at {HIDDEN}"
    assert out["orders"][0]["card_last4"] == HIDDEN
    CustomerView.model_validate(out)


def test_the_input_is_not_modified(redactor):
    """Redaction returns a new structure; the caller's data is left as it was."""
    before = repr(CUSTOMER)
    redactor.redact_output(CUSTOMER, PII_MAP, TIER1)
    assert repr(CUSTOMER) == before


def test_a_pii_class_on_a_non_text_value_fails_closed(redactor):
    """A declared class on a number cannot be masked and keep its type: a ConfigError, not a leak."""
    with pytest.raises(ConfigError, match="only text fields"):
        redactor.redact_output({"dob": 19850412}, {"dob": PiiClass.DOB}, TIER1)


def test_a_clear_non_text_value_passes(redactor):
    """When the session may see the class in clear, the value's type does not matter."""
    out = redactor.redact_output({"dob": 19850412}, {"dob": PiiClass.DOB}, frozenset({"pii:identity"}))
    assert out == {"dob": 19850412}


def test_a_pii_map_changed_in_place_is_honoured_on_the_next_call(redactor):
    """Walk plans are compiled once per map, but a map edited after use never leaves a field unmasked."""
    pii_map = {"contact": PiiClass.NONE}
    assert redactor.redact_output({"contact": "Jane Doe"}, pii_map, TIER1) == {"contact": "Jane Doe"}
    pii_map["contact"] = PiiClass.NAME
    assert redactor.redact_output({"contact": "Jane Doe"}, pii_map, TIER1) == {"contact": "J*** D***"}


def test_a_key_holding_a_dot_does_not_pass_for_a_nested_declared_path(redactor):
    """Paths are matched key by key: {"a.b": ...} is not the field b inside a."""
    pii_map = {"customer.email": PiiClass.EMAIL}
    out = redactor.redact_output({"customer": {"email": "jane@example.com"}, "customer.email": "x"}, pii_map, TIER1)
    assert out == {"customer": {"email": "j***@example.com"}, "customer.email": "x"}


class _Text(str):
    """A str subclass: not the exact type the walk looks for first."""


def test_mappings_sequences_and_strings_of_other_types_are_redacted_like_dicts_lists_and_strs(redactor):
    """The walk's shortcut for exact dicts, lists and strs changes nothing for mappings, tuples, str subclasses."""
    from types import MappingProxyType

    def disguised(value: Any) -> Any:
        if isinstance(value, dict):
            return MappingProxyType({k: disguised(v) for k, v in value.items()})
        if isinstance(value, list):
            return tuple(disguised(v) for v in value)
        return _Text(value) if isinstance(value, str) else value

    for scopes in (TIER1, TIER1 | {"pii:contact", "pii:address", "pii:identity"}):
        expected = redactor.redact_output(CUSTOMER, PII_MAP, scopes)
        assert redactor.redact_output(disguised(CUSTOMER), PII_MAP, scopes) == expected


def test_every_field_a_customer_or_agent_can_write_is_enveloped_with_its_author(redactor):
    """Names, address lines, ticket subjects and messages (author from the message), agent notes: each shown
    text field someone can write is marked as data written by that someone; ids and statuses are not."""
    from deskgate.server.redaction.envelope import markers
    from deskgate.tools.catalogue import build_catalogue

    spec = build_catalogue().get("get_ticket")
    assert spec is not None
    ticket = {"ticket_id": "T-1", "customer_id": "C-1", "subject": "Where is my parcel", "status": "open",
              "priority": "normal", "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
              "messages": [{"author": "customer", "body": "hello", "created_at": "2026-01-01T00:00:00Z"},
                           {"author": "agent", "body": "on it", "created_at": "2026-01-01T00:00:00Z"},
                           {"author": "system", "body": "escalated", "created_at": "2026-01-01T00:00:00Z"},
                           {"author": "bogus", "body": "who?", "created_at": "2026-01-01T00:00:00Z"}],
              "notes": [{"note_id": "N-1", "body": "called back", "author": "agent-7",
                         "created_at": "2026-01-01T00:00:00Z"}]}
    out = redactor.redact_output(ticket, spec.pii_classes(), TIER1)
    assert out["subject"] == f"{markers('customer')[0]}\nWhere is my parcel\n{markers('customer')[1]}"
    assert [m["body"].split("\n")[0] for m in out["messages"]] == [
        markers("customer")[0], markers("agent")[0], markers("system")[0], markers("customer")[0]]
    assert out["notes"][0]["body"].startswith(markers("agent")[0])
    assert out["ticket_id"] == "T-1" and out["notes"][0]["author"] == "agent-7"


def test_only_values_the_caller_supplied_under_the_same_class_and_name_are_shown(redactor):
    """`supplied` shows the email the caller gave (same class, same field name, same value); the name, a
    different email and a secret the caller gave are never echoed."""
    arguments = {"email": "jane.doe@example.com", "code": "123456", "note": "hi"}
    classes = {"email": PiiClass.EMAIL, "code": PiiClass.SECRET, "note": PiiClass.FREE_TEXT}
    supplied = supplied_values(arguments, classes)
    assert supplied == {(PiiClass.EMAIL, "email"): frozenset({"jane.doe@example.com"})}
    out = redactor.redact_output(CUSTOMER, PII_MAP, TIER1, supplied=supplied)
    assert out["email"] == "jane.doe@example.com" and out["name"] == "J*** D***"
    other = redactor.redact_output({**CUSTOMER, "email": "john@example.com"}, PII_MAP, TIER1, supplied=supplied)
    assert other["email"] == "j***@example.com"
