"""Fault injection for the crash tests: `deskgate` with the process SIGKILLed right after one side effect.

    python -m tests.e2e.die_after EFFECT serve --transport http --port N --dev

runs the real CLI; the method that causes EFFECT runs for real (its transaction commits), and the
moment it returns the process kills itself, before the call's own audit record can be written -
the crash the chain's intent records exist for.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from deskgate.server.cli import main
from deskgate.server.policy.approvals import Approvals
from deskgate.tools.backend.sql import SqlSupportBackend

# effect -> (class, method) whose completion is the side effect
EFFECTS: dict[str, tuple[type, str]] = {
    "handoff": (SqlSupportBackend, "create_handoff"),
    "approval": (Approvals, "create"),
    "customer_code": (SqlSupportBackend, "send_customer_email"),
    "tool": (SqlSupportBackend, "issue_refund"),
}


def die_after(owner: type, name: str) -> None:
    effect: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def then_die(*args: Any, **kwargs: Any) -> Any:
        result = await effect(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, then_die)


if __name__ == "__main__":
    die_after(*EFFECTS[sys.argv[1]])
    sys.argv = ["deskgate", *sys.argv[2:]]
    main()
