"""A retry (or hedge) budget per provider, so extra attempts cannot multiply load during an incident.

Finagle-style: every first attempt deposits, every retry or hedge withdraws, over a sliding window.
An extra attempt is allowed while

    extras in the window < ratio * first attempts in the window + min_per_s * window_s

so at steady state extras add at most `ratio` (10 %) to the load, plus a small floor that lets
a quiet provider still retry. When a provider starts failing every request, retries stop at that
share instead of doubling or tripling the traffic it is failing under; once the window has moved
past the incident, the budget is whole again.

Each provider keeps two deques of timestamps (first attempts, extras), pruned from the left on
access: every timestamp is appended and removed once, so calls are O(1) amortised, and memory is
bounded by the request rate times the window. Single-threaded asyncio use only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class _Window:
    __slots__ = ("extras", "firsts")

    def __init__(self) -> None:
        self.firsts: deque[float] = deque()
        self.extras: deque[float] = deque()


class Budget:
    def __init__(
        self,
        *,
        ratio: float = 0.1,
        min_per_s: float = 1.0,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or min_per_s < 0:
            raise ValueError(f"ratio and min_per_s must not be negative, not {ratio} and {min_per_s}")
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self._ratio = ratio
        self._floor = min_per_s * window_s
        self._window_s = window_s
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def record_request(self, provider: str) -> None:
        """A first attempt: deposits `ratio` of an extra attempt into the provider's budget."""
        now = self._clock()
        self._pruned(provider, now).firsts.append(now)

    def try_spend(self, provider: str) -> bool:
        """A retry or a hedge: withdraws one extra attempt if the budget allows, else refuses."""
        now = self._clock()
        w = self._pruned(provider, now)
        if len(w.extras) < self._ratio * len(w.firsts) + self._floor:
            w.extras.append(now)
            return True
        return False

    def extra_share(self, provider: str) -> float:
        """Extra attempts per first attempt in the window (for metrics); extras alone if none."""
        w = self._pruned(provider, self._clock())
        return len(w.extras) / max(len(w.firsts), 1)

    def _pruned(self, provider: str, now: float) -> _Window:
        w = self._windows.get(provider)
        if w is None:
            w = self._windows[provider] = _Window()
        horizon = now - self._window_s  # an event counts while now - t < window_s
        for q in (w.firsts, w.extras):
            while q and q[0] <= horizon:
                q.popleft()
        return w
