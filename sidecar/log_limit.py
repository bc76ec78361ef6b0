"""How both front doors log a failed call: rate-limited, and with the failure's frames let go after."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sidecar.domain.errors import TurnoutError


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


def log_failure(logger: logging.Logger, limiter: LogLimiter, exc: BaseException, what: str) -> None:
    """Log a failed call's error if it is ours, then drop its tracebacks.

    A client's mistake (a TurnoutError) is the client's to read in its answer: no line. Ours get one
    line with the traceback, as the limiter allows. Then the tracebacks go: they hold every frame
    the failure passed through, and a frame that still holds the exception closes a reference
    cycle with the whole request in it, freed only by a full garbage collection
    (docs/decisions/002-soak.md).
    """
    if not isinstance(exc, TurnoutError) and (dropped := limiter.take()) is not None:
        held = f" ({dropped} similar lines suppressed)" if dropped else ""
        logger.error("%s failed unexpectedly: %s%s", what, type(exc).__name__, held, exc_info=exc)
    drop_tracebacks(exc)


def drop_tracebacks(exc: BaseException) -> None:
    """Clear `__traceback__` on `exc` and everything chained to it (cause, context, group members)."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
