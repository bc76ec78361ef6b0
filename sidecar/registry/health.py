"""Live health per model, learnt from attempt records: EWMA error rate and latency, last failure.

An observer of AttemptRecords (the executor reports them; nothing here calls back into the flow).
Single-threaded asyncio access only: updates are plain attribute writes without awaits.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass

ALPHA = 0.2  # weight of the newest sample: about the last ten attempts dominate
DEGRADED_AT = 0.1
UNHEALTHY_AT = 0.5


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
    attempts: int = 0
    last_failure: FailureClass | None = None


class _Stats:
    __slots__ = ("attempts", "error_rate", "last_failure", "latency_ewma_s")

    def __init__(self) -> None:
        self.attempts = 0
        self.error_rate = 0.0
        self.latency_ewma_s: float | None = None
        self.last_failure: FailureClass | None = None


class HealthTracker:
    """Keeps per-model statistics; `observe` is registered as an attempt observer."""

    def __init__(self) -> None:
        self._stats: dict[str, _Stats] = {}

    def observe(self, record: AttemptRecord) -> None:
        if record.outcome is AttemptOutcome.CANCELLED:
            return  # a lost hedge or an abandoned request says nothing about the model
        stats = self._stats.setdefault(record.model, _Stats())
        stats.attempts += 1
        failed = 1.0 if record.outcome is AttemptOutcome.FAILURE else 0.0
        # From a prior of zero: one failure in a fresh start reads as degraded, not unhealthy.
        stats.error_rate = (1 - ALPHA) * stats.error_rate + ALPHA * failed
        if failed:
            stats.last_failure = record.failure_class
        elif stats.latency_ewma_s is None:
            stats.latency_ewma_s = record.latency_s
        else:
            stats.latency_ewma_s = (1 - ALPHA) * stats.latency_ewma_s + ALPHA * record.latency_s

    def snapshot(self, model: str) -> HealthSnapshot:
        stats = self._stats.get(model)
        if stats is None:
            return HealthSnapshot()
        if stats.error_rate >= UNHEALTHY_AT:
            state = HealthState.UNHEALTHY
        elif stats.error_rate >= DEGRADED_AT:
            state = HealthState.DEGRADED
        else:
            state = HealthState.HEALTHY
        return HealthSnapshot(
            state=state,
            error_rate=stats.error_rate,
            latency_ewma_s=stats.latency_ewma_s,
            attempts=stats.attempts,
            last_failure=stats.last_failure,
        )
