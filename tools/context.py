"""What a tool handler receives besides its arguments."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deskgate.server.policy.model import ActionRules

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
    undo_windows: Mapping[str, int] = field(default_factory=dict)  # seconds, per reversible tool
    actions: ActionRules = field(default_factory=ActionRules)    # who sees the actions others started

    def undo_deadline(self, tool: str) -> int:
        """Until when an action of `tool` taken now can be undone; no window in the policy means none."""
        return self.now + max(0, self.undo_windows.get(tool, 0))
