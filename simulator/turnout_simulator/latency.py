"""The latency model: draws each request's time to first token and time per token from a seeded RNG.

Both are lognormal around the profile's medians (a lognormal with mu=0 has median 1, so `ttft_ms` really
is the median). The heavy tail applies to the time to first token only: real providers' slow requests
are mostly queueing before the first token, while decoding speed stays fairly steady.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from turnout_simulator.config import ModelProfile


@dataclass(frozen=True, slots=True)
class Latency:
    ttft_s: float
    per_token_s: float


class LatencyModel:
    def __init__(self, rng: random.Random, time_scale: float) -> None:
        self._rng = rng
        self._time_scale = time_scale

    def draw(self, profile: ModelProfile, slow_factor: float = 1.0) -> Latency:
        """One request's delays, already multiplied by the slow factor and the time scale."""
        scale = self._time_scale * slow_factor
        noise = self._rng.lognormvariate(0.0, profile.jitter)
        tail = profile.tail_multiplier if self._rng.random() < profile.tail_probability else 1.0
        decode_noise = self._rng.lognormvariate(0.0, profile.jitter / 2)
        return Latency(
            ttft_s=profile.ttft_ms / 1000.0 * noise * tail * scale,
            per_token_s=decode_noise / profile.tokens_per_second * scale,
        )
