"""`Remote`: how deskgate calls an external support system - bounded, explicit, and behind a breaker.

Every call to a remote system (Stripe, a helpdesk) goes through `Remote.call`:

1. the breaker: after `failures` consecutive failures the system is cut off for `cooldown` seconds
   and calls fail at once (`backend_unavailable`), then one trial call decides whether it closes;
2. the call runs in a worker thread under the configured timeout: a system that hangs never holds
   a tool call longer than that (the thread is abandoned, its result ignored);
3. failures are mapped by the adapter's `classify` to deskgate's errors: unavailability (timeouts,
   5xx, 429, refused connections, bad credentials) becomes `BackendUnavailable`, a refusal a
   `DomainError`; the provider's own text never reaches a reason (it may carry data).

Nothing is retried here: a read that fails, fails; a write is repeated only by its caller with the
same intent (so the provider sees the same idempotency key and deskgate looks the object up first).
The breaker is per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import anyio
import anyio.to_thread

from deskgate.server.errors import BackendUnavailable, DeskgateError

logger = logging.getLogger("deskgate.backend")
T = TypeVar("T")
Failure = Literal["unavailable", "refused"]


@dataclass
class Breaker:
    failures: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    consecutive: int = 0
    open_until: float = 0.0
    trial_running: bool = field(default=False)

    def admit(self) -> bool:
        """May a call go out now? While open: no; once the cooldown ends: one trial call at a time."""
        if self.consecutive < self.failures:
            return True
        if self.clock() < self.open_until or self.trial_running:
            return False
        self.trial_running = True
        return True

    def succeeded(self) -> None:
        self.consecutive, self.trial_running = 0, False

    def failed(self) -> None:
        self.consecutive += 1
        self.trial_running = False
        if self.consecutive >= self.failures:
            self.open_until = self.clock() + self.cooldown

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self.consecutive < self.failures:
            return "closed"
        return "open" if self.clock() < self.open_until else "half_open"


class Remote:
    """One external system: its name (for reasons and logs), timeout and breaker."""

    def __init__(self, name: str, *, timeout: float, failures: int, cooldown: float,
                 classify: Callable[[BaseException], DeskgateError | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.timeout = timeout
        self.breaker = Breaker(failures, cooldown, clock)
        self._classify = classify

    async def call(self, fn: Callable[[], T]) -> T:
        if not self.breaker.admit():
            raise BackendUnavailable(f"{self.name} is unavailable (circuit breaker open); nothing was done")
        try:
            with anyio.fail_after(self.timeout):
                result = await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        except TimeoutError:
            self.breaker.failed()
            logger.warning("%s: no answer within %ss", self.name, self.timeout)
            raise BackendUnavailable(f"{self.name} did not answer in time") from None
        except Exception as exc:
            mapped = self._classify(exc)
            if mapped is None:
                self.breaker.failed()
                logger.error("%s: unexpected failure %s", self.name, type(exc).__name__)
                raise BackendUnavailable(f"{self.name} failed") from None
            if isinstance(mapped, BackendUnavailable):
                self.breaker.failed()
                logger.warning("%s: unavailable (%s)", self.name, type(exc).__name__)
            else:
                self.breaker.succeeded()  # the system answered: it is up, it refused
            raise mapped from None
        self.breaker.succeeded()
        return result

    def call_sync(self, fn: Callable[[], T]) -> T:
        """The same, for start-up work outside an event loop (recovery): no breaker trial, same mapping."""
        try:
            return fn()
        except Exception as exc:
            mapped = self._classify(exc)
            raise (mapped or BackendUnavailable(f"{self.name} failed")) from None
