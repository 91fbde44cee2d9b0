"""`ActionJournal`: the record of reversible actions that `undo_action` reverses.

Reversible actions cross domains (an address is commerce's, preferences identity's, a credit
billing's); the journal is kept in one place, the embedded demo database, whatever systems act.
"""

from __future__ import annotations

from typing import Protocol

from deskgate.tools.models import ActionOwner, ActionUndone, ReversibleAction


class ActionJournal(Protocol):
    async def get_action(self, action_id: str) -> ReversibleAction: ...

    async def undo_action(self, action_id: str, owner: ActionOwner, *, actor: str, now: int) -> ActionUndone:
        """Reverse a recorded action of `owner` before its `reversible_until`, if nothing changed it
        since. An action of another owner is `NotFound`, exactly like an unknown one."""
        ...
