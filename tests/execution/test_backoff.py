"""Backoff: which failures retry, exponential growth with full jitter, Retry-After, determinism."""

from __future__ import annotations

import math
import random

import pytest

from sidecar.domain.outcome import FailureClass
from sidecar.execution.backoff import RETRY_AFTER_CAP_S, RETRYABLE, retry_delay_s

SAMPLES = 500


def test_retryable_classes() -> None:
    assert {
        FailureClass.RATE_LIMITED,
        FailureClass.OVERLOADED,
        FailureClass.SERVER_ERROR,
        FailureClass.TIMEOUT,
        FailureClass.CONNECTION,
        FailureClass.MALFORMED_RESPONSE,
        FailureClass.STREAM_INTERRUPTED,
    } == RETRYABLE
    # Failures that would recur on the same endpoint, or that never reached it, are not retried.
    assert FailureClass.CIRCUIT_OPEN not in RETRYABLE
    assert FailureClass.BAD_REQUEST not in RETRYABLE


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 3.2), (6, 5.0), (7, 5.0), (100, 5.0), (100_000, 5.0)],
)
def test_grows_exponentially_with_full_jitter_up_to_max(attempt: int, ceiling: float) -> None:
    rng = random.Random(7)
    delays = [retry_delay_s(attempt, base_s=0.2, max_s=5.0, rng=rng) for _ in range(SAMPLES)]
    assert all(0.0 <= d <= ceiling for d in delays)
    assert max(delays) > 0.95 * ceiling  # full jitter: the whole range is used
    assert min(delays) < 0.05 * ceiling
    assert len(set(delays)) == SAMPLES  # jittered, not a fixed schedule
    assert sum(delays) / SAMPLES == pytest.approx(ceiling / 2, rel=0.1)


def test_deterministic_with_a_seeded_rng() -> None:
    def schedule(seed: int) -> list[float]:
        rng = random.Random(seed)
        return [retry_delay_s(a, rng=rng) for a in range(1, 10)]

    assert schedule(42) == schedule(42)
    assert schedule(42) != schedule(43)


@pytest.mark.parametrize(
    ("attempt", "retry_after_s", "low", "high"),
    [
        (1, 2.0, 2.0, 2.0),  # longer than the backoff ceiling (0.2 s): exactly what was asked
        (6, 0.5, 0.5, 5.0),  # shorter than the backoff: at least what was asked
        (1, 0.001, 0.001, 0.2),
        (1, 3600.0, RETRY_AFTER_CAP_S, RETRY_AFTER_CAP_S),  # a bogus hint is capped
        (1, 0.0, 0.0, 0.2),  # a zero, negative or NaN hint is ignored
        (1, -3.0, 0.0, 0.2),
        (1, math.nan, 0.0, 0.2),
        (1, None, 0.0, 0.2),
    ],
)
def test_honours_retry_after(attempt: int, retry_after_s: float | None, low: float, high: float) -> None:
    rng = random.Random(1)
    for _ in range(100):
        delay = retry_delay_s(attempt, retry_after_s=retry_after_s, rng=rng)
        assert low <= delay <= high


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_is_one_based(attempt: int) -> None:
    with pytest.raises(ValueError, match="1-based"):
        retry_delay_s(attempt, rng=random.Random(0))
