"""One race engine for fallback, hedging and retries over a stage's candidates.

A fallback is a hedge whose delay is "until the current attempt fails":

    - candidates start in plan order; the first one at once;
    - a failure another candidate may not share starts the next candidate at once (fallback);
    - no answer after the hedge delay starts the next candidate beside the running one (a hedge),
      when the provider's hedge budget allows;
    - a retryable failure may also schedule the same candidate again after a backoff that honours
      Retry-After (a retry), when the retry budget allows; it competes like any other attempt;
    - the first acceptable answer wins; every other attempt is cancelled, which closes its HTTP
      request, and awaited before the race returns. Answers that come in the same event-loop
      wake-up go to the earliest-started attempt; the others are handed to `discard`, the caller's
      to record as cancelled (they were not used);
    - a failure that no other candidate can fix (a bad request) ends the race at once.

The race knows nothing of providers, breakers or validation: `start` runs one attempt and raises
ProviderError on failure; `on_failure` says what a failure means for the rest of the race. Every
task it creates it owns, and none outlives it.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sidecar.domain.outcome import ProviderError
from sidecar.domain.plan import Candidate

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt started: its number (1-based, in start order), candidate and role."""

    number: int
    candidate: Candidate
    hedged: bool = False
    retry_of: int = 0  # the number of the attempt this retries, 0 if none
    variant: str = ""  # e.g. "stricter": an invalid-output retry told what was wrong
    tries: int = 1  # 1 for a candidate's first attempt, 2 for its first retry, ...
    after: str = ""  # for a fallback or a retry: the failure class of the failure that caused it


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    """What one failure means for the race."""

    final: bool = False  # no other candidate can do better: end the race now
    retry_in_s: float | None = None  # run the same candidate again after this long
    retry_variant: str = ""
    skip: Callable[[Candidate], bool] | None = None  # drop queued candidates that would fail alike
    hold: bool = False  # let the retry run before any fallback (e.g. an invalid-output retry)


class RaceLost(Exception):
    """Every attempt failed, or a final failure ended the race; `errors` in the order they came."""

    def __init__(self, errors: list[ProviderError]) -> None:
        super().__init__(f"{len(errors)} attempt(s) failed")
        self.errors = errors


class Race(Generic[T]):
    def __init__(
        self,
        candidates: Sequence[Candidate],
        start: Callable[[Launch], Awaitable[T]],
        on_failure: Callable[[Launch, ProviderError], FailureVerdict],
        *,
        hedge_delay: Callable[[Candidate], float | None],
        may_hedge: Callable[[Candidate], bool],
        clock: Callable[[], float],
        numbering: Callable[[], int],
        discard: Callable[[Launch, T], Awaitable[None]] | None = None,
    ) -> None:
        self._numbering = numbering
        # Releases an answer that came but lost (records it as cancelled, closes an open stream).
        self._discard = discard
        self._queue = list(candidates)
        self._start = start
        self._on_failure = on_failure
        self._hedge_delay = hedge_delay
        self._may_hedge = may_hedge
        self._clock = clock
        self._running: dict[asyncio.Task[T], Launch] = {}
        # Scheduled retries: (due, tiebreak, the failed launch, variant, failure class), a heap on
        # the due time.
        self._retries: list[tuple[float, int, Launch, str, str]] = []
        self._hedge_at: float | None = None
        self._errors: list[ProviderError] = []

    async def run(self) -> tuple[Launch, T]:
        try:
            return await self._loop()
        finally:
            await self._cancel_all()

    async def _loop(self) -> tuple[Launch, T]:
        if self._may_run_beside(self._queue[0]):
            self._launch_next(hedged=False)
        else:
            # Nothing could run beside the first attempt (no hedge): await it in place. A task and
            # asyncio.wait cost two more event-loop turns and their futures, on every request
            # (the HTTP door's added latency at concurrency 1, decision 040). A failure goes on
            # as in the loop: a retry or the fallback is launched, and the loop takes over.
            launch = Launch(self._numbering(), self._queue.pop(0))
            try:
                return launch, await self._start(launch)
            except ProviderError as failure:
                self._failed(launch, failure)
        while True:
            if not self._running:
                if self._queue:
                    self._launch_next(hedged=False)
                    continue
                if not self._retries:
                    raise RaceLost(self._errors)
                await asyncio.sleep(max(0.0, self._retries[0][0] - self._clock()))
                self._launch_due_retries()
                continue
            done, _ = await asyncio.wait(
                self._running, timeout=self._wake_in(), return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                self._on_timer()
                continue
            # Attempts that ended in the same wake-up, in start order: `done` is a set, and its
            # order would otherwise pick the winner among answers that came together.
            ended = sorted(((self._running.pop(t), t) for t in done), key=_start_order)
            winner = next((pair for pair in ended if _answered(pair[1])), None)
            if winner is not None:  # an answer in hand beats any failure that came with it
                await self._release([pair for pair in ended if pair is not winner])
                return winner[0], winner[1].result()
            for launch, task in ended:
                error = task.exception()  # not None: none of them answered
                if isinstance(error, ProviderError):
                    self._failed(launch, error)
                elif error is not None:
                    raise error

    def _failed(self, launch: Launch, error: ProviderError) -> None:
        self._errors.append(error)
        verdict = self._on_failure(launch, error)
        if verdict.final:
            raise RaceLost(self._errors)
        if verdict.skip is not None:
            self._queue = [c for c in self._queue if not verdict.skip(c)]
        if verdict.retry_in_s is not None and verdict.retry_in_s <= 0:
            self._launch(
                launch.candidate,
                retry_of=launch.number,
                variant=verdict.retry_variant,
                tries=launch.tries + 1,
                after=error.failure_class.value,
            )
        elif verdict.retry_in_s is not None:
            due = self._clock() + verdict.retry_in_s
            entry = (due, len(self._errors), launch, verdict.retry_variant, error.failure_class.value)
            heapq.heappush(self._retries, entry)
        # Fallback, at once; but only for a candidate's first failure (its retries already have
        # one running) and not while a retry is meant to go first.
        if self._queue and not verdict.hold and launch.retry_of == 0:
            self._launch_next(hedged=False)

    def _on_timer(self) -> None:
        now = self._clock()
        self._launch_due_retries()
        if self._hedge_at is not None and now >= self._hedge_at:
            self._hedge_at = None
            if self._queue and self._may_hedge(self._queue[0]):
                self._launch_next(hedged=True)

    def _launch_due_retries(self) -> None:
        now = self._clock()
        while self._retries and self._retries[0][0] <= now:
            _, _, failed, variant, after = heapq.heappop(self._retries)
            self._launch(
                failed.candidate, retry_of=failed.number, variant=variant, tries=failed.tries + 1, after=after
            )

    def _launch_next(self, *, hedged: bool) -> None:
        after = "" if hedged or not self._errors else self._errors[-1].failure_class.value
        self._launch(self._queue.pop(0), hedged=hedged, after=after)

    def _launch(
        self,
        candidate: Candidate,
        *,
        hedged: bool = False,
        retry_of: int = 0,
        variant: str = "",
        tries: int = 1,
        after: str = "",
    ) -> None:
        launch = Launch(self._numbering(), candidate, hedged, retry_of, variant, tries, after)
        self._running[asyncio.ensure_future(self._start(launch))] = launch
        delay = self._hedge_delay(candidate) if self._queue else None
        self._hedge_at = None if delay is None else self._clock() + delay

    def _may_run_beside(self, first: Candidate) -> bool:
        """Whether a hedge could start while `first` runs: another candidate waits behind it and
        the route hedges it."""
        return len(self._queue) > 1 and self._hedge_delay(first) is not None

    def _wake_in(self) -> float | None:
        times = [t for t in (self._hedge_at, self._retries[0][0] if self._retries else None) if t is not None]
        return max(0.0, min(times) - self._clock()) if times else None

    async def _release(self, ended: list[tuple[Launch, asyncio.Task[T]]]) -> None:
        """Attempts that ended beside the winner: the ones that answered too are handed to `discard`."""
        for launch, task in ended:
            if self._discard is not None and _answered(task):
                await self._discard(launch, task.result())

    async def _cancel_all(self) -> None:
        tasks = list(self._running)
        self._running.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _start_order(pair: tuple[Launch, asyncio.Task[T]]) -> int:
    return pair[0].number


def _answered(task: asyncio.Task[T]) -> bool:
    return not task.cancelled() and task.exception() is None
