"""The canonical digest of a call's arguments: what confirmations, approvals and idempotency bind to.

A call is bound by its meaning, not by its JSON spelling: the digest is taken over the arguments
*after* the tool's input model validated them (`normalised`), so `"amount": 5`, `5.0` and `"5.00"`
are one call, while any change of what the call does - another amount, order or reason - is
another. Normalised: control fields and unset optional fields left out, every decimal with two
places (or, with more, its shortest exact spelling), everything else as the model holds it.

Over that JSON, RFC 8785 (JCS) alone would make `10` and `10.0` the same number; every value is
first encoded as a typed pair - `["i", "10"]`, `["f", 10.0]`, `["s", "10"]` - and the pairs are
canonicalised, so two values the model keeps apart (an int and a float field) never collide.

The control fields the guard chain consumes (`CONTROL_ARGUMENTS`) are left out: the repeat of a
call carries a confirmation token the first call did not, and must still be the same call.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import rfc8785
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from deskgate.server.errors import InvalidArguments

CONTROL_ARGUMENTS = frozenset({"confirmation_token", "idempotency_key", "customer_code"})
_MAX_DEPTH = 32
_CENT = Decimal("0.01")


def _typed(value: Any, depth: int) -> list[Any]:
    if depth > _MAX_DEPTH:
        raise InvalidArguments("arguments are nested too deeply", code="arguments_too_deep")
    # bool before int: in Python a bool is an int, in JSON it is not.
    if value is None:
        return ["n", None]
    if isinstance(value, bool):
        return ["b", value]
    if isinstance(value, int):
        return ["i", str(value)]  # as text: JCS numbers stop at 2**53
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArguments("arguments contain a number that is not finite", code="arguments_not_json")
        return ["f", value]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, list | tuple):
        return ["a", [_typed(v, depth + 1) for v in value]]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise InvalidArguments("argument names must be strings", code="arguments_not_json")
        return ["o", {k: _typed(v, depth + 1) for k, v in value.items()}]
    raise InvalidArguments("arguments must be plain JSON", code="arguments_not_json")


def normalised(args: BaseModel) -> dict[str, Any]:
    """The validated arguments as plain JSON that says what the call means (see the module docstring)."""
    values = args.model_dump(mode="python", exclude=set(CONTROL_ARGUMENTS), exclude_none=True)
    return {k: _plain(v) for k, v in values.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value.quantize(_CENT)}" if value == value.quantize(_CENT) else f"{value.normalize():f}"
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return to_jsonable_python(value)


def call_arguments(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments that define a call: the raw JSON minus the control fields."""
    return {k: v for k, v in raw.items() if k not in CONTROL_ARGUMENTS}


def argument_digest(raw: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the typed canonical form of `raw` without its control fields."""
    try:
        canonical = rfc8785.dumps(_typed(call_arguments(raw), 0))
    except rfc8785.CanonicalizationError:
        raise InvalidArguments("arguments cannot be canonicalised", code="arguments_not_json") from None
    return hashlib.sha256(canonical).hexdigest()
