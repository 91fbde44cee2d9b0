"""What a tool handler receives besides its arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deskgate.tools.backend.kinds import Intent

if TYPE_CHECKING:
    from deskgate.scopes.session import Session
    from deskgate.server.store.state import StateStore
    from deskgate.tools.backend.base import SupportBackend


@dataclass(frozen=True, slots=True)
class ToolContext:
    backend: SupportBackend
    session: Session
    state: StateStore
    request_id: str
    now: int                                     # unix seconds, one clock reading per call
    policy_view: Callable[[], dict[str, Any]]    # the rules that apply to this session (built on demand)
    mask_text: Callable[[str], str]              # every PII detection in a text masked (what the customer may read)
    undo_windows: Mapping[str, int] = field(default_factory=dict)  # seconds, per reversible tool
    # Whether this session may see (and undo) an action started by session `sid` of subject `sub`: its own,
    # or others' where policy says so (`[actions]`). Denies everything unless the chain supplies it.
    may_see: Callable[[str, str], bool] = lambda sid, sub: False
    intent_seq: int | None = None           # a write's audit intent record (set once it is durable)
    idempotency_scope: str | None = None    # the call's session-scoped idempotency key, when it has one

    def intent(self) -> Intent | None:
        """The audit intent this write carries out, for a backend that must act exactly once: named by the
        call's idempotency key when it has one (its retry is the same intent), else by the request id.
        None outside the chain (no intent record was written)."""
        if self.intent_seq is None:
            return None
        return Intent(key=self.idempotency_scope or self.request_id, request_id=self.request_id, seq=self.intent_seq)

    def undo_deadline(self, tool: str) -> int:
        """Until when an action of `tool` taken now can be undone; no window in the policy means none."""
        return self.now + max(0, self.undo_windows.get(tool, 0))
