"""The one shape every tool result has on the wire: a status, a reason, and the tool's data.

Clients validate `structuredContent` against a tool's output schema, so the schema of every tool
is this envelope (with `data` typed as that tool's own output model): a denial or a pending
approval is then as valid a result as a success.
"""

from __future__ import annotations

import json
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from deskgate.server.errors import DeskgateError


class Status(StrEnum):
    OK = "ok"
    DENIED = "denied"
    CONFIRMATION_REQUIRED = "confirmation_required"
    PENDING_APPROVAL = "pending_approval"
    ESCALATED = "escalated"
    ERROR = "error"


class Outcome(BaseModel):
    """What a tool call answers. `reason` is set whenever `status` is not `ok`."""

    model_config = ConfigDict(extra="forbid")

    status: Status
    reason: str | None = None
    code: str | None = Field(default=None, description="Machine-readable reason code when not ok.")
    next_step: str | None = Field(default=None, description="What to do now, in one sentence, when not ok.")
    data: dict[str, Any] | None = Field(default=None, description="The tool's result when status is ok.")
    confirmation_token: str | None = None
    preview: str | None = None
    approval_id: str | None = None
    escalation_id: str | None = None
    audit_seq: int | None = Field(default=None, description="Sequence number of this call's audit record.")

    @classmethod
    def from_error(cls, exc: DeskgateError) -> Outcome:
        return cls(status=exc.status, reason=exc.reason, code=exc.code, next_step=exc.next_step, **exc.extras)

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


@cache
def _outcome_schema() -> str:
    """Generated once per process (every tool's output schema embeds it); text, so each caller's dict is new."""
    return json.dumps(Outcome.model_json_schema())


def envelope_schema(data_schema: dict[str, Any]) -> dict[str, Any]:
    """JSON schema of `Outcome` with `data` narrowed to one tool's output schema."""
    schema: dict[str, Any] = json.loads(_outcome_schema())
    defs = dict(schema.pop("$defs", {}))
    defs.update(data_schema.pop("$defs", {}))
    schema["properties"]["data"] = {"anyOf": [data_schema, {"type": "null"}], "default": None}
    if defs:
        schema["$defs"] = defs
    return schema
