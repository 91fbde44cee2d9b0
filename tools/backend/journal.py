"""`ActionJournal`: the record of reversible actions that `undo_action` reverses.

Reversible actions cross domains (an address is commerce's, preferences identity's, a credit
billing's); the journal is kept in one place, the embedded demo database, whatever systems act.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from deskgate.tools.models import ActionOwner, ActionUndone, ReversibleAction, ReversibleTool

Reverser = Callable[[ReversibleAction], Awaitable[None]]  # reverses an action in the system that carried it out


class ActionJournal(Protocol):
    async def get_action(self, action_id: str) -> ReversibleAction: ...

    async def record_action(self, tool: ReversibleTool, owner: ActionOwner, object_id: str, before: dict[str, Any],
                            after: dict[str, Any], *, actor: str, now: int, reversible_until: int) -> str:
        """Journal a reversible action another system carried out; returns its action id."""
        ...

    async def undo_action(self, action_id: str, owner: ActionOwner, *, actor: str, now: int,
                          external: Mapping[str, Reverser] | None = None) -> ActionUndone:
        """Reverse a recorded action of `owner` before its `reversible_until`, if nothing changed it
        since. An action of another owner is `NotFound`, exactly like an unknown one. A tool in
        `external` was carried out by another system: its reverser undoes it there first."""
        ...
