"""`Breaker`: opens after N consecutive failures, lets one trial through after the cooldown, closes on success."""

from __future__ import annotations

from deskgate.tools.backend.remote import Breaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_admits_one_trial_after_the_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(failures=2, cooldown=30, clock=clock)
    breaker.failed()
    assert breaker.admit() and breaker.state == "closed"
    breaker.failed()
    assert not breaker.admit() and breaker.state == "open"
    clock.now = 31
    assert breaker.admit() and breaker.state == "half_open"
    assert not breaker.admit()  # one trial at a time
    breaker.failed()
    assert not breaker.admit() and breaker.state == "open"  # the trial failed: another cooldown
    clock.now = 62
    assert breaker.admit()
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.admit() and breaker.admit()


def test_a_success_in_between_resets_the_count() -> None:
    breaker = Breaker(failures=2, cooldown=30, clock=Clock())
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.state == "closed"
