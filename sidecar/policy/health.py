"""Live statistics per model, learnt from attempt records: error rate, latency EWMA and p95, state.

A subscriber to every call's attempt records (domain/observe.py; nothing here calls back into
the flow).
The policy reads `stats(model)` on every decision, so reads are plain attribute loads and the p95
is recomputed on write (a sorted window of recent latencies), not on read. `version` changes when
a model's health state or breaker changes, which is what invalidates cached routing decisions;
EWMA drift alone does not (cached decisions expire by TTL instead).

Single-threaded asyncio access only: updates are plain attribute writes without awaits.
"""

from __future__ import annotations

import bisect
import enum
from collections import deque
from dataclasses import dataclass

from sidecar.domain.observe import AttemptEnded, Quiet
from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass

ALPHA = 0.2  # weight of the newest sample: about the last ten attempts dominate
DEGRADED_AT = 0.1
UNHEALTHY_AT = 0.5
WINDOW = 100  # recent successful latencies kept for the p95
MIN_P95_SAMPLES = 20  # below this the p95 is too noisy to act on; the EWMA is used instead


class HealthState(enum.StrEnum):
    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    state: HealthState = HealthState.UNKNOWN
    error_rate: float = 0.0
    latency_ewma_s: float | None = None
    latency_p95_s: float | None = None
    attempts: int = 0
    last_failure: FailureClass | None = None
    breaker_open: bool = False


class ModelStats:
    """Mutable per-model statistics; the policy only reads them."""

    __slots__ = (
        "_recent",
        "_sorted",
        "attempts",
        "breaker_open",
        "breaker_opened",
        "error_rate",
        "last_failure",
        "latency_ewma_s",
        "latency_p95_s",
        "plan_latency_s",
        "state",
    )

    def __init__(self) -> None:
        self.attempts = 0
        self.error_rate = 0.0
        self.latency_ewma_s: float | None = None
        self.latency_p95_s: float | None = None
        self.last_failure: FailureClass | None = None
        self.breaker_open = False
        # While open: when it opened, as a count of openings (lower opened earlier; the policy's
        # panic mode tries the model open longest). 0 while closed.
        self.breaker_opened = 0
        self.state = HealthState.UNKNOWN
        # The latency to plan with: the p95 once there are enough samples, else the EWMA. A plain
        # attribute, updated on write, because the policy reads it for every model on every decision.
        self.plan_latency_s: float | None = None
        self._recent: deque[float] = deque()
        self._sorted: list[float] = []

    def _add_latency(self, latency_s: float) -> None:
        ewma = self.latency_ewma_s
        self.latency_ewma_s = latency_s if ewma is None else (1 - ALPHA) * ewma + ALPHA * latency_s
        self._recent.append(latency_s)
        bisect.insort(self._sorted, latency_s)
        if len(self._recent) > WINDOW:
            old = self._recent.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]
        n = len(self._sorted)
        self.latency_p95_s = self._sorted[min(n - 1, int(0.95 * n))] if n >= MIN_P95_SAMPLES else None
        self.plan_latency_s = self.latency_p95_s if self.latency_p95_s is not None else self.latency_ewma_s


class HealthTracker(Quiet):
    """Keeps per-model statistics from every attempt's record (an Observer of calls, stateless per
    call: it is its own call observer)."""

    def __init__(self) -> None:
        self._stats: dict[str, ModelStats] = {}
        self.version = 0
        self._openings = 0

    def attempt_ended(self, event: AttemptEnded) -> None:
        self.observe(event.record)

    def observe(self, record: AttemptRecord) -> None:
        if record.outcome is AttemptOutcome.CANCELLED:
            return  # a lost hedge or an abandoned request says nothing about the model
        stats = self.stats_for(record.model)
        stats.attempts += 1
        failed = record.outcome is AttemptOutcome.FAILURE
        # From a prior of zero: one failure in a fresh start reads as degraded, not unhealthy.
        stats.error_rate = (1 - ALPHA) * stats.error_rate + (ALPHA if failed else 0.0)
        if failed:
            stats.last_failure = record.failure_class
        else:
            stats._add_latency(record.latency_s)
        state = _state(stats.error_rate)
        if state is not stats.state:
            stats.state = state
            self.version += 1

    def set_breaker(self, model: str, is_open: bool) -> None:
        """Called by the execution layer's circuit breakers on a state change."""
        stats = self.stats_for(model)
        if stats.breaker_open is not is_open:
            stats.breaker_open = is_open
            self._openings += is_open
            stats.breaker_opened = self._openings if is_open else 0
            self.version += 1

    def stats(self, model: str) -> ModelStats | None:
        return self._stats.get(model)

    def stats_for(self, model: str) -> ModelStats:
        """The live statistics object for a model, created empty if need be; the policy keeps it."""
        stats = self._stats.get(model)
        if stats is None:
            stats = self._stats[model] = ModelStats()
        return stats

    def snapshot(self, model: str) -> HealthSnapshot:
        s = self._stats.get(model)
        if s is None or (s.attempts == 0 and not s.breaker_open):
            return HealthSnapshot()
        return HealthSnapshot(
            state=s.state,
            error_rate=s.error_rate,
            latency_ewma_s=s.latency_ewma_s,
            latency_p95_s=s.latency_p95_s,
            attempts=s.attempts,
            last_failure=s.last_failure,
            breaker_open=s.breaker_open,
        )


def _state(error_rate: float) -> HealthState:
    if error_rate >= UNHEALTHY_AT:
        return HealthState.UNHEALTHY
    if error_rate >= DEGRADED_AT:
        return HealthState.DEGRADED
    return HealthState.HEALTHY
