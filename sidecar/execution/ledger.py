"""The record of one request's attempts: numbering, timing, cost, and what the call's observer sees.

Every attempt, whatever became of it, becomes one AttemptRecord, in start order, returned with
the answer or the error. The call's observer (domain/observe.py) sees each attempt start, and
its record as it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from sidecar.domain.errors import AllCandidatesFailed, DeadlineExceeded, ResourceExhausted, TurnoutError
from sidecar.domain.model import ModelSpec
from sidecar.domain.observe import QUIET, AttemptEnded, CallObserver
from sidecar.domain.outcome import (
    AttemptOutcome,
    AttemptRecord,
    AttemptStart,
    FailureClass,
    ProviderError,
)
from sidecar.domain.response import Completion, Usage


class _Open:
    __slots__ = ("queue_wait_s", "start", "started_at")

    def __init__(self, start: AttemptStart, started_at: float) -> None:
        self.start = start
        self.started_at = started_at
        self.queue_wait_s = 0.0


class Ledger:
    def __init__(self, clock: Callable[[], float], call: CallObserver = QUIET) -> None:
        self._call = call
        self._clock = clock
        self.records: list[AttemptRecord] = []
        self._started = 0
        self._open: dict[int, _Open] = {}

    def reserve(self) -> int:
        """The next attempt number (1-based, in start order, across every stage of the request)."""
        self._started += 1
        return self._started

    def start(self, start: AttemptStart) -> None:
        self._call.attempt_started(start)
        self._open[start.number] = _Open(start, self._clock())

    def queued(self, number: int, wait_s: float) -> None:
        """How long the attempt waited for admission before its call went out."""
        self._open[number].queue_wait_s = wait_s

    def succeeded(self, number: int, completion: Completion, ttft_s: float | None = None) -> None:
        self._end(number, AttemptOutcome.SUCCESS, completion=completion, ttft_s=ttft_s)

    def failed(self, number: int, error: ProviderError, ttft_s: float | None = None) -> None:
        self._end(number, AttemptOutcome.FAILURE, error=error, ttft_s=ttft_s)

    def cancelled(
        self, number: int, ttft_s: float | None = None, completion: Completion | None = None
    ) -> None:
        """Stopped, or its answer not used: `completion` is one that came but lost (it was billed)."""
        self._end(number, AttemptOutcome.CANCELLED, completion=completion, ttft_s=ttft_s)

    def escalated(self, number: int, reason: str) -> None:
        """Mark a successful attempt whose answer a cascade passed over."""
        for i, r in enumerate(self.records):
            if r.number == number:
                self.records[i] = replace(r, escalated=reason)

    def _end(
        self,
        number: int,
        outcome: AttemptOutcome,
        *,
        completion: Completion | None = None,
        error: ProviderError | None = None,
        ttft_s: float | None = None,
    ) -> None:
        opened = self._open.pop(number)
        start: AttemptStart = opened.start
        model: ModelSpec = start.model
        usage = completion.usage if completion else Usage()
        record = AttemptRecord(
            number=number,
            model=model.name,
            provider=model.provider,
            outcome=outcome,
            latency_s=self._clock() - opened.started_at,
            failure_class=error.failure_class if error else None,
            error_message=error.detail if error else "",
            time_to_first_token_s=ttft_s,
            hedged=start.hedged,
            usage=usage,
            cost_usd_nanos=model.price.cost_usd_nanos(usage),
            finish_reason=completion.finish_reason if completion else None,
            retry_after_s=error.retry_after_s if error else None,
            retry_of=start.retry_of,
            cause=start.cause.value,
            response_model=completion.response_model if completion else "",
            queue_wait_s=opened.queue_wait_s,
        )
        self.records.append(record)
        if len(self.records) > 1 and self.records[-2].number > number:  # ended out of start order
            self.records.sort(key=lambda r: r.number)
        self._call.attempt_ended(AttemptEnded(start, record, completion))

    def close_open(self) -> None:
        """Attempts still open when the request ends (the deadline hit) are recorded as cancelled."""
        for number in list(self._open):
            self.cancelled(number)

    def final_error(self, deadline: float) -> TurnoutError:
        """The error that ends the request, naming every attempt."""
        attempts = tuple(self.records)
        if self._clock() >= deadline:
            return DeadlineExceeded("the request's deadline passed before an answer", attempts)
        if attempts and all(a.failure_class is FailureClass.NOT_ADMITTED for a in attempts):
            waits = [a.retry_after_s for a in attempts if a.retry_after_s is not None]
            return ResourceExhausted(
                "no capacity for this request within its wait bound: "
                + "; ".join(f"{a.model}: {a.error_message}" for a in attempts),
                min(waits) if waits else 1.0,
            )
        return AllCandidatesFailed(attempts)


def loop_clock() -> float:
    """The event loop's clock (monotonic; virtual in tests that run on a looptime loop)."""
    return asyncio.get_running_loop().time()
