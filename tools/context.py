"""What a tool handler receives besides its arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    now: int                     # unix seconds, one clock reading per call
    policy_view: dict[str, Any]  # the policy rules that apply to this session (for get_policy)
