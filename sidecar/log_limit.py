"""A token bucket for log lines, so that a burst of failures cannot flood the log (both front doors)."""

from __future__ import annotations

import time
from collections.abc import Callable


class LogLimiter:
    """A token bucket for log lines: `burst` at once, then `per_second`; a line let through after
    some were held back says how many ("12 similar lines suppressed"). A burst of 4,000 bad
    requests once wrote 26,500 lines of tracebacks; the log must stay readable and cheap."""

    def __init__(
        self, per_second: float = 1.0, burst: int = 10, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()
        self.suppressed = 0

    def take(self) -> int | None:
        """None: drop this line. Otherwise how many lines were dropped since the last one let through."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            self.suppressed += 1
            return None
        self._tokens -= 1
        dropped, self.suppressed = self.suppressed, 0
        return dropped
