"""The latency model: seeded, centred on the profile's medians, with a heavy tail and a time scale."""

from __future__ import annotations

import random
import statistics

import pytest
from turnout_simulator import ModelProfile
from turnout_simulator.latency import LatencyModel

PROFILE = ModelProfile(ttft_ms=500, tokens_per_second=50, jitter=0.3, tail_probability=0.0)


def test_medians_match_the_profile() -> None:
    model = LatencyModel(random.Random(1), time_scale=1.0)
    draws = [model.draw(PROFILE) for _ in range(4001)]

    assert statistics.median(d.ttft_s for d in draws) == pytest.approx(0.5, rel=0.05)
    assert statistics.median(d.per_token_s for d in draws) == pytest.approx(0.02, rel=0.05)


def test_same_seed_same_draws() -> None:
    first = LatencyModel(random.Random(3), 1.0)
    second = LatencyModel(random.Random(3), 1.0)

    assert [first.draw(PROFILE) for _ in range(20)] == [second.draw(PROFILE) for _ in range(20)]


def test_tail_and_slow_factor_multiply_and_time_scale_zero_is_instant() -> None:
    no_noise = PROFILE.model_copy(update={"jitter": 0.0})
    always_tail = no_noise.model_copy(update={"tail_probability": 1.0, "tail_multiplier": 4.0})

    assert LatencyModel(random.Random(0), 1.0).draw(no_noise).ttft_s == pytest.approx(0.5)
    assert LatencyModel(random.Random(0), 1.0).draw(always_tail).ttft_s == pytest.approx(2.0)
    slow = LatencyModel(random.Random(0), 0.5).draw(no_noise, slow_factor=3.0)
    assert (slow.ttft_s, slow.per_token_s) == pytest.approx((0.75, 0.03))
    instant = LatencyModel(random.Random(0), 0.0).draw(always_tail)
    assert (instant.ttft_s, instant.per_token_s) == (0.0, 0.0)
