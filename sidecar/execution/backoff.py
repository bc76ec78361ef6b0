"""When to retry: which failures are worth retrying on the same endpoint, and how long to wait first.

Pure functions; the caller passes the random source, so tests are deterministic with a seeded one.
Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
the delay is uniform in [0, min(max_s, base_s * 2**(attempt - 1))], which spreads the retries of
many clients instead of bunching them at the same instants.

A provider's Retry-After (or retry-after-ms) is honoured: the delay is at least what it asked for.
It is capped at RETRY_AFTER_CAP_S, a sanity cap against a bogus or hostile header (an hour, a date
misread as seconds); the request's deadline bounds the wait anyway, so the cap only keeps a retry
from being scheduled far past any deadline Turnout serves.
"""

from __future__ import annotations

import random

from sidecar.domain.outcome import FailureClass

# Failures that may well not recur on the same endpoint a moment later.
RETRYABLE: frozenset[FailureClass] = frozenset(
    {
        FailureClass.RATE_LIMITED,
        FailureClass.OVERLOADED,
        FailureClass.SERVER_ERROR,
        FailureClass.TIMEOUT,
        FailureClass.CONNECTION,
        FailureClass.MALFORMED_RESPONSE,
        FailureClass.STREAM_INTERRUPTED,
    }
)

RETRY_AFTER_CAP_S = 60.0
_MAX_DOUBLINGS = 60  # 2**60 * any sane base is past any max_s; keeps the float from overflowing


def retry_delay_s(
    attempt: int,
    *,
    base_s: float = 0.2,
    max_s: float = 5.0,
    retry_after_s: float | None = None,
    rng: random.Random,
) -> float:
    """The wait before retry number `attempt` (1-based: 1 is the first retry)."""
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, not {attempt}")
    ceiling = min(max_s, base_s * 2.0 ** min(attempt - 1, _MAX_DOUBLINGS))
    delay = rng.uniform(0.0, ceiling)
    if retry_after_s is not None and retry_after_s > 0:  # NaN and negative hints are ignored
        delay = max(delay, min(retry_after_s, RETRY_AFTER_CAP_S))
    return delay
