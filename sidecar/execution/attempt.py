"""One attempt through the resilience layers: the same stack for unary calls and streams.

For each launch of a race, outermost first:

    admission (concurrency, priority queue, rate limits)              admission.Admission
      -> the request's deadline: outside the breaker, because a
         caller's tight deadline says nothing about the endpoint
        -> the endpoint's circuit breaker: a guard for a unary call;
           for a stream a deferred guard, settled when it ends          breaker.BreakerSet
          -> the attempt's own timeout: inside the breaker, so
             hitting it counts against the endpoint
            -> the call: a whole answer, or a stream up to its first token

and around them what every attempt shares: its start for the ledger, the request counts the hedge
and retry budgets are shares of, and the ledger's record of how it ended (running out of time is a
TIMEOUT failure). What a failure means for the rest of the race (retry, fall back, stop) is
decided here too. The executor (unary) and streaming.py (streams) bring only the call itself.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import AttemptCause, AttemptStart, FailureClass, ProviderError
from sidecar.domain.plan import Candidate, Plan
from sidecar.domain.request import ChatRequest
from sidecar.execution.admission import Admission
from sidecar.execution.backoff import RETRYABLE, retry_delay_s
from sidecar.execution.breaker import Alternatives, BreakerSet, DeferredGuard
from sidecar.execution.budget import Budget
from sidecar.execution.ledger import Ledger
from sidecar.execution.race import FailureVerdict, Launch, Race
from sidecar.policy.health import HealthTracker
from sidecar.providers.base import ProviderAdapter

T = TypeVar("T")
A = TypeVar("A")
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Resilience:
    """The shared, long-lived parts: they outlive a request, and a config reload keeps them."""

    breakers: BreakerSet
    hedge_budget: Budget
    retry_budget: Budget
    admission: Admission

    @staticmethod
    def default() -> Resilience:
        return Resilience(BreakerSet(), Budget(), Budget(), Admission({}))


class AttemptStack:
    """The providers and the resilience layers in front of them, shared by every request."""

    def __init__(
        self,
        adapters: Mapping[str, ProviderAdapter],
        providers: Mapping[str, ProviderSpec],
        resilience: Resilience,
        *,
        health: HealthTracker | None,
        clock: Clock,
        rng: random.Random,
    ) -> None:
        self.adapters = adapters
        self.providers = providers
        self.resilience = resilience
        self.health = health
        self.clock = clock
        self.rng = rng

    def race_scope(
        self,
        candidates: Sequence[Candidate],
        plan: Plan,
        deadline: float,
        ledger: Ledger,
        stage: int = 0,
    ) -> RaceScope:
        """The stack for one race of one request (`stage`: its 0-based cascade stage)."""
        return RaceScope(self, candidates, plan, deadline, ledger, stage)


class RaceScope:
    """One race of one request: its candidates' attempts, each through the stack, and the race."""

    __slots__ = ("_among", "_deadline", "_ledger", "_plan", "_stack", "candidates", "stage")

    def __init__(
        self,
        stack: AttemptStack,
        candidates: Sequence[Candidate],
        plan: Plan,
        deadline: float,
        ledger: Ledger,
        stage: int,
    ) -> None:
        self._stack = stack
        self.candidates = candidates
        self._plan = plan
        self._deadline = deadline
        self._ledger = ledger
        self.stage = stage
        self._among = Alternatives([c.model.name for c in candidates])

    # --- the race ----------------------------------------------------------------------------

    def race(
        self,
        start: Callable[[Launch], Awaitable[T]],
        discard: Callable[[Launch, T], Awaitable[None]],
        on_failure: Callable[[Launch, ProviderError], FailureVerdict] | None = None,
    ) -> Race[T]:
        """A race over the candidates with this stack's hedging and budgets.

        Hedges spend the budget of the provider whose requests they hedge (the race's first
        choice): extra attempts are bounded as a share of the traffic that causes them.
        """
        x, policy = self._stack, self._plan.execution
        primary = self.candidates[0].model.provider if self.candidates else ""
        hedge_budget = x.resilience.hedge_budget
        return Race(
            self.candidates,
            start,
            on_failure or self.verdict,
            hedge_delay=self._hedge_delay if policy.hedging else _never,
            may_hedge=lambda c: hedge_budget.try_spend(primary),
            clock=x.clock,
            numbering=self._ledger.reserve,
            discard=discard,
        )

    def verdict(self, launch: Launch, error: ProviderError) -> FailureVerdict:
        """What one failed attempt means for the rest of the race."""
        cls = error.failure_class
        if not cls.tries_next_candidate:
            return FailureVerdict(final=True)
        if cls is FailureClass.CONTEXT_TOO_LONG:
            window = launch.candidate.model.context_window
            return FailureVerdict(skip=lambda c: c.model.context_window <= window)
        policy = self._plan.execution
        if cls is FailureClass.INVALID_OUTPUT:
            if policy.invalid_output == "retry" and not launch.variant:
                return FailureVerdict(retry_in_s=0.0, retry_variant="stricter", hold=True)
            return FailureVerdict()
        x, retries = self._stack, launch.tries - 1
        budget, provider = x.resilience.retry_budget, launch.candidate.model.provider
        if cls in RETRYABLE and retries < policy.max_retries and budget.try_spend(provider):
            delay = retry_delay_s(
                retries + 1,
                base_s=policy.backoff_base_s,
                max_s=policy.backoff_max_s,
                retry_after_s=error.retry_after_s,
                rng=x.rng,
            )
            if x.clock() + delay < self._deadline:  # a retry due after the deadline would only wait
                return FailureVerdict(retry_in_s=delay)
        return FailureVerdict()

    def _hedge_delay(self, candidate: Candidate) -> float | None:
        policy, health = self._plan.execution, self._stack.health
        if policy.hedge_delay_s is not None:
            return policy.hedge_delay_s
        stats = health.stats(candidate.model.name) if health else None
        if stats is not None and stats.latency_p95_s is not None:
            return stats.latency_p95_s
        return 1.5 * candidate.model.typical_latency_s

    # --- one attempt -------------------------------------------------------------------------

    def begin(self, launch: Launch, request: ChatRequest) -> float:
        """Record the attempt's start; return how long its provider call may take, in seconds."""
        x, model = self._stack, launch.candidate.model
        self._ledger.start(self.attempt_start(launch, request))
        if not launch.hedged and not launch.retry_of:
            x.resilience.hedge_budget.record_request(model.provider)
            x.resilience.retry_budget.record_request(model.provider)
        limits = [self._deadline - x.clock(), x.providers[model.provider].request_timeout_s]
        policy = self._plan.execution
        if policy.attempt_timeout_s is not None:
            limits.append(policy.attempt_timeout_s)
        return max(0.0, min(limits))

    def deferred_guard(self, launch: Launch) -> DeferredGuard:
        """The breaker guard for a stream: it settles when the stream ends, not when it opens."""
        breakers = self._stack.resilience.breakers
        return breakers.deferred_guard(launch.candidate.model.name, self._panic(launch))

    async def run(
        self,
        launch: Launch,
        request: ChatRequest,
        limit: float,
        work: Callable[[A], Awaitable[T]],
        arg: A,
        *,
        breaker: DeferredGuard | None = None,
        close: Callable[[], Awaitable[object]] | None = None,
        waited_for: str = "answer",
    ) -> T:
        """`work(arg)` through the stack's layers within `limit` seconds; the ledger records a failure.

        `close` releases what the work holds (an open stream) before a failure is recorded.
        """
        x, ledger, model = self._stack, self._ledger, launch.candidate.model
        own, by_deadline = self._split(limit)
        r = x.resilience
        guard = r.breakers.guard(model.name, self._panic(launch)) if breaker is None else breaker
        try:
            tokens = self._plan.estimated_input_tokens + (request.params.max_output_tokens or 0)
            queued_at = x.clock()
            async with (
                r.admission.admit(
                    model.provider,
                    model.name,
                    priority=request.hints.priority,
                    tokens=tokens,
                    deadline=self._deadline,
                ),
                asyncio.timeout(by_deadline),
                guard,
                asyncio.timeout(own),
            ):
                ledger.queued(launch.number, x.clock() - queued_at)
                return await work(arg)
        except TimeoutError:
            if close is not None:
                await close()
            error = ProviderError(FailureClass.TIMEOUT, f"no {waited_for} within {limit:.3f}s")
            ledger.failed(launch.number, error)
            raise error from None
        except ProviderError as error:
            if close is not None:
                await close()
            ledger.failed(launch.number, error)
            raise
        except asyncio.CancelledError:
            if close is not None:
                await close()
            ledger.cancelled(launch.number)
            raise

    def attempt_start(self, launch: Launch, request: ChatRequest) -> AttemptStart:
        """What start hooks see of an attempt about to begin."""
        model = launch.candidate.model
        if launch.retry_of:
            cause = AttemptCause.RETRY
        elif launch.hedged:
            cause = AttemptCause.HEDGE
        elif launch.after:
            cause = AttemptCause.FALLBACK
        elif self.stage > 0:
            cause = AttemptCause.ESCALATION
        else:
            cause = AttemptCause.PRIMARY
        x = self._stack
        return AttemptStart(
            number=launch.number,
            model=model,
            endpoint=x.providers.get(model.provider),
            request=request,
            cause=cause,
            hedged=launch.hedged,
            retry_of=launch.retry_of,
            stage=self.stage,
            after=launch.after,
            breaker_state=x.resilience.breakers.state(model.name),
        )

    def _panic(self, launch: Launch) -> Alternatives | None:
        """Panic mode is for a candidate's first try; a retry's first try had its chance."""
        return None if launch.retry_of else self._among

    def _split(self, limit: float) -> tuple[float | None, float | None]:
        """(the attempt's own limit, the request's deadline): whichever binds, the other is None."""
        if limit < self._deadline - self._stack.clock():
            return limit, None
        return None, limit


def _never(candidate: Candidate) -> float | None:
    return None
