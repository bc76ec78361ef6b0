"""The retry/hedge budget on an injected clock: the ratio, the floor, refusals and the sliding window."""

from __future__ import annotations

import pytest

from sidecar.execution.budget import Budget


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def spend_all(budget: Budget, provider: str = "p", limit: int = 10_000) -> int:
    """How many extras the budget allows right now."""
    n = 0
    while n < limit and budget.try_spend(provider):
        n += 1
    return n


@pytest.mark.parametrize(
    ("ratio", "min_per_s", "firsts", "allowed"),
    [
        (0.1, 1.0, 0, 10),  # the floor alone: min_per_s * window_s
        (0.1, 1.0, 50, 15),
        (0.1, 1.0, 1000, 110),  # ~ratio of the first attempts, plus the floor
        (0.2, 0.0, 1000, 200),
        (0.1, 0.0, 5, 1),  # 0.5 of an extra: one is allowed while fewer than 0.5 are spent
        (0.0, 0.0, 1000, 0),
    ],
)
def test_allows_ratio_of_first_attempts_plus_the_floor(
    ratio: float, min_per_s: float, firsts: int, allowed: int
) -> None:
    clock = Clock()
    budget = Budget(ratio=ratio, min_per_s=min_per_s, window_s=10.0, clock=clock)
    for _ in range(firsts):
        budget.record_request("p")
    assert spend_all(budget) == allowed
    assert not budget.try_spend("p")  # refused beyond, and refusing spends nothing
    assert spend_all(budget) == 0


def test_deposits_as_requests_come_in() -> None:
    clock = Clock()
    budget = Budget(ratio=0.1, min_per_s=0.0, window_s=10.0, clock=clock)
    granted = 0
    for i in range(100):  # 10 requests a second, each failing and asking for a retry
        clock.t = i / 10
        budget.record_request("p")
        granted += budget.try_spend("p")
    assert granted == 10  # a retry storm adds 10 % to the load, not 100 %
    assert budget.extra_share("p") == pytest.approx(0.1)


def test_recovers_after_the_window() -> None:
    clock = Clock()
    budget = Budget(ratio=0.1, min_per_s=1.0, window_s=10.0, clock=clock)
    for _ in range(1000):
        budget.record_request("p")
    clock.t = 5.0
    assert spend_all(budget) == 110
    clock.t = 9.999
    assert not budget.try_spend("p")
    clock.t = 10.0  # the first attempts left the window; the 110 extras at t=5 are still in it
    assert not budget.try_spend("p")
    assert budget.extra_share("p") == 110.0
    clock.t = 15.0  # the extras left it too: the floor is back
    assert budget.extra_share("p") == 0.0
    assert spend_all(budget) == 10


def test_providers_are_isolated() -> None:
    budget = Budget(ratio=0.1, min_per_s=0.1, window_s=10.0, clock=Clock())
    assert spend_all(budget, "a") == 1
    assert not budget.try_spend("a")
    assert budget.try_spend("b")


def test_extra_share() -> None:
    budget = Budget(ratio=0.5, min_per_s=0.0, window_s=10.0, clock=Clock())
    assert budget.extra_share("p") == 0.0
    for _ in range(40):
        budget.record_request("p")
    for _ in range(10):
        assert budget.try_spend("p")
    assert budget.extra_share("p") == pytest.approx(0.25)


@pytest.mark.parametrize(
    "kwargs", [{"ratio": -0.1}, {"min_per_s": -1.0}, {"window_s": 0.0}, {"window_s": -5.0}]
)
def test_rejects_nonsense_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Budget(**kwargs)
