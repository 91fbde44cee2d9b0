"""The canonical argument digest: what confirmations and approvals bind a call to."""

from __future__ import annotations

import pytest

from deskgate.server.errors import InvalidArguments
from deskgate.server.policy.canonical import argument_digest, call_arguments


def test_ten_ten_point_zero_and_the_string_ten_are_three_different_calls() -> None:
    """JCS alone would merge 10 and 10.0; typed pairs keep all three apart."""
    digests = {argument_digest({"amount": v}) for v in (10, 10.0, "10")}
    assert len(digests) == 3


def test_key_order_and_control_fields_do_not_change_the_digest() -> None:
    """The repeat carries a token and a key the first call did not; it is still the same call."""
    first = argument_digest({"order_id": "O-1", "amount": "42.10"})
    repeat = argument_digest({"amount": "42.10", "order_id": "O-1", "confirmation_token": "x",
                              "idempotency_key": "key-12345", "customer_code": "123456"})
    assert first == repeat


def test_an_extra_field_a_bool_for_an_int_or_a_nested_change_changes_the_digest() -> None:
    """Any change of value or type anywhere in the raw JSON is another call."""
    base = {"order_id": "O-1", "flags": [1, {"a": None}]}
    variants = [{**base, "extra": None}, {**base, "flags": [True, {"a": None}]},
                {**base, "flags": [1, {"a": 0}]}, {**base, "flags": [1, {"a": None}, 2]}]
    assert argument_digest(base) not in {argument_digest(v) for v in variants}
    assert len({argument_digest(v) for v in variants}) == len(variants)


def test_call_arguments_strip_only_top_level_control_fields() -> None:
    """A nested field named like a control field is data and stays."""
    raw = {"confirmation_token": "t", "body": {"confirmation_token": "kept"}}
    assert call_arguments(raw) == {"body": {"confirmation_token": "kept"}}


@pytest.mark.parametrize("bad", [{"amount": float("nan")}, {"amount": float("inf")}, {"x": b"bytes"},
                                 {"x": {1: "non-string key"}}, {"x": "\ud800"}])
def test_values_that_are_not_plain_json_are_refused_with_a_structured_error(bad: dict) -> None:
    """NaN, bytes, non-string keys and lone surrogates cannot be canonicalised: InvalidArguments."""
    with pytest.raises(InvalidArguments):
        argument_digest(bad)


def test_arguments_nested_too_deeply_are_refused() -> None:
    """A bound on depth keeps the digest from recursing without end."""
    deep: dict = {}
    for _ in range(40):
        deep = {"x": deep}
    with pytest.raises(InvalidArguments) as err:
        argument_digest(deep)
    assert err.value.code == "arguments_too_deep"
