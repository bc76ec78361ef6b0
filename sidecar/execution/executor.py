"""Runs a plan against providers: the only code that loops over attempts (through the race engine).

The resilience layers, outermost first, written down once:

    total deadline (gRPC deadline and the latency budget)            Executor.run / stream
      -> cascade stage (escalate on failure, or on length /
         refusal / low confidence of a stage's answer)                Executor.run
        -> race over the stage's candidates: fallback on failure,
           hedge on slowness, retries after backoff; hedges and
           retries gated by per-provider budgets                      race.Race
          -> admission (concurrency, priority queue, rate limits)     admission.Admission
            -> per-endpoint circuit breaker (every candidate's
               open: the one open longest probes at once)             breaker.BreakerSet
              -> per-attempt timeout                                  Executor._attempt
                -> adapter (pure codec + HTTP)                        providers
                  -> output validation (JSON / JSON Schema)           validation
                    -> failure classification (ProviderError.failure_class)

Every attempt, whatever became of it, becomes an AttemptRecord for the observers and the response
(ledger.Ledger); the final error names every candidate tried and why it failed.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import AttemptCause, AttemptHook, AttemptStart, FailureClass, ProviderError
from sidecar.domain.plan import Candidate, ExecutionPolicy, Plan, Stage
from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.domain.response import Completion, FinishReason, StreamChunk
from sidecar.execution.admission import Admission
from sidecar.execution.agreement import tally
from sidecar.execution.backoff import RETRYABLE, retry_delay_s
from sidecar.execution.breaker import Alternatives, BreakerSet
from sidecar.execution.budget import Budget
from sidecar.execution.ledger import Ledger, Observer, loop_clock
from sidecar.execution.race import FailureVerdict, Launch, Race, RaceLost
from sidecar.policy.regex import Matcher, compile_linear
from sidecar.providers.base import ProviderAdapter, ProviderCall
from sidecar.registry.health import HealthTracker
from sidecar.validation.json_output import check_completion

Clock = Callable[[], float]
T = TypeVar("T")
DEADLINE_GRACE_S = 0.01


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    completion: Completion
    candidate: Candidate
    attempts: tuple[Any, ...]  # AttemptRecord, in start order
    parsed_json: Any | None = None
    winner: int = 0  # the number of the attempt that answered
    agreement: str = ""  # a consensus stage's tally when it accepted, e.g. "2 of 2 agreed on 'B'"

    @property
    def cost_usd_nanos(self) -> int:
        return next((a.cost_usd_nanos for a in self.attempts if a.number == self.winner), 0)

    @property
    def total_cost_usd_nanos(self) -> int:
        return sum(a.cost_usd_nanos for a in self.attempts)


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


class Executor:
    def __init__(
        self,
        adapters: Mapping[str, ProviderAdapter],
        providers: Mapping[str, ProviderSpec],
        observers: Sequence[Observer] = (),
        *,
        attempt_hooks: Sequence[AttemptHook] = (),
        resilience: Resilience | None = None,
        health: HealthTracker | None = None,
        clock: Clock = loop_clock,
        rng: random.Random | None = None,
    ) -> None:
        self._adapters = adapters
        self._providers = providers
        self._observers = tuple(observers)
        self._hooks = tuple(attempt_hooks)
        self._r = resilience or Resilience.default()
        self._health = health
        self._clock = clock
        self._rng = rng or random.Random()

    @property
    def admission(self) -> Admission:
        return self._r.admission

    # --- unary --------------------------------------------------------------------------------

    async def run(self, plan: Plan, request: ChatRequest, deadline: float) -> ExecutionResult:
        """Run the stages in turn until one answers acceptably; raise with every attempt otherwise."""
        ledger = self.ledger()
        last_answer: tuple[Launch, Completion, Any] | None = None
        try:
            # Attempts time out at the deadline themselves (and are recorded as timeouts); this
            # outer bound is the safety net that ends anything else a moment later.
            async with asyncio.timeout_at(deadline + DEADLINE_GRACE_S):
                for index, stage in enumerate(plan.stages):
                    final = index == len(plan.stages) - 1
                    if stage.consensus is not None and not final:
                        voted = await self._vote(plan, index, request, deadline, ledger)
                        if isinstance(voted, ExecutionResult):
                            return voted
                        if voted:  # every voter failed for a reason no other model can help
                            break
                        continue  # a rejected vote is never returned, even if every later stage fails
                    try:
                        launch, (completion, parsed) = await self._race(
                            plan, index, request, deadline, ledger
                        )
                    except RaceLost as lost:
                        if _is_final(lost) or final:
                            break
                        continue
                    reason = "" if final else _escalation(completion, stage, plan.execution)
                    if not reason:
                        return _result(completion, launch, ledger, parsed)
                    ledger.escalated(launch.number, reason)
                    last_answer = (launch, completion, parsed)
        except TimeoutError:
            pass
        finally:
            ledger.close_open()
        if last_answer is not None:  # every later stage failed: the escalated answer is still an answer
            return _result(last_answer[1], last_answer[0], ledger, last_answer[2])
        raise ledger.final_error(deadline)

    def ledger(self) -> Ledger:
        """A new ledger for one request, reporting to this executor's observers and hooks."""
        return Ledger(self._observers, self._clock, self._hooks)

    def attempt_start(self, launch: Launch, request: ChatRequest, stage: int = 0) -> AttemptStart:
        """What start hooks see of an attempt about to begin."""
        model = launch.candidate.model
        if launch.retry_of:
            cause = AttemptCause.RETRY
        elif launch.hedged:
            cause = AttemptCause.HEDGE
        elif launch.after:
            cause = AttemptCause.FALLBACK
        elif stage > 0:
            cause = AttemptCause.ESCALATION
        else:
            cause = AttemptCause.PRIMARY
        return AttemptStart(
            number=launch.number,
            model=model,
            endpoint=self._providers.get(model.provider),
            request=request,
            cause=cause,
            hedged=launch.hedged,
            retry_of=launch.retry_of,
            stage=stage,
            after=launch.after,
            breaker_state=self._r.breakers.state(model.name),
        )

    async def _vote(
        self, plan: Plan, stage_index: int, request: ChatRequest, deadline: float, ledger: Ledger
    ) -> ExecutionResult | bool:
        """A consensus stage: every candidate answers at once; the result when enough agree.

        Else marks every answer escalated with the tally and returns whether the request should
        stop (every voter failed with a final error). An answer the stage's own escalation rules
        pass over (refusal, length, low confidence) counts as no vote.
        """
        stage = plan.stages[stage_index]
        consensus = stage.consensus
        assert consensus is not None
        voters = stage.candidates

        async def one(c: Candidate) -> tuple[Launch, tuple[Completion, Any]] | RaceLost:
            try:
                return await self._race(plan, stage_index, request, deadline, ledger, (c,))
            except RaceLost as lost:
                return lost

        async with asyncio.TaskGroup() as tasks:
            running = [tasks.create_task(one(c)) for c in voters]
        outcomes = [t.result() for t in running]
        answers = [
            (
                c.model.name,
                None
                if isinstance(o, RaceLost) or _escalation(o[1][0], stage, plan.execution)
                else o[1][0].text,
            )
            for c, o in zip(voters, outcomes, strict=True)
        ]
        verdict = tally(answers, consensus.agree, consensus.need)
        if verdict.accepted is not None:
            won = outcomes[verdict.accepted]
            assert not isinstance(won, RaceLost)
            launch, (completion, parsed) = won
            return replace(_result(completion, launch, ledger, parsed), agreement=verdict.reason)
        for o in outcomes:
            if not isinstance(o, RaceLost):
                ledger.escalated(o[0].number, verdict.reason)
        return all(isinstance(o, RaceLost) and _is_final(o) for o in outcomes)

    async def _race(
        self,
        plan: Plan,
        stage_index: int,
        request: ChatRequest,
        deadline: float,
        ledger: Ledger,
        candidates: Sequence[Candidate] | None = None,
    ) -> tuple[Launch, tuple[Completion, Any]]:
        """A race over the stage's candidates (or the `candidates` given: one consensus voter)."""
        stage = plan.stages[stage_index]
        among_candidates = stage.candidates if candidates is None else tuple(candidates)
        policy = plan.execution
        want_logprobs = policy.low_confidence_logprob is not None
        violations: dict[str, str] = {}
        among = Alternatives(c.model.name for c in among_candidates)

        async def start(launch: Launch) -> tuple[Completion, Any]:
            sent = (
                _stricter(request, violations.get(launch.candidate.model.name, ""))
                if launch.variant
                else request
            )
            return await self._attempt(
                launch, sent, plan, deadline, ledger, want_logprobs, stage_index, among
            )

        def on_failure(launch: Launch, error: ProviderError) -> FailureVerdict:
            if error.failure_class is FailureClass.INVALID_OUTPUT:
                violations[launch.candidate.model.name] = error.message
            return self._verdict(launch, error, policy, deadline)

        async def discard(launch: Launch, answer: tuple[Completion, Any]) -> None:
            ledger.cancelled(launch.number, completion=answer[0])  # it came too late to be used

        launch, answer = await self.race(among_candidates, start, on_failure, policy, ledger, discard).run()
        ledger.succeeded(launch.number, answer[0])
        return launch, answer

    def race(
        self,
        candidates: Sequence[Candidate],
        start: Callable[[Launch], Awaitable[T]],
        on_failure: Callable[[Launch, ProviderError], FailureVerdict],
        policy: ExecutionPolicy,
        ledger: Ledger,
        discard: Callable[[Launch, T], Awaitable[None]] | None = None,
    ) -> Race[T]:
        """A race over candidates with this executor's hedging and budgets (unary and streams).

        Hedges spend the budget of the provider whose requests they hedge (the stage's first
        choice): extra attempts are bounded as a share of the traffic that causes them.
        """
        primary = candidates[0].model.provider if candidates else ""
        return Race(
            candidates,
            start,
            on_failure,
            hedge_delay=lambda c: self._hedge_delay(c, policy),
            may_hedge=lambda c: self._r.hedge_budget.try_spend(primary),
            clock=self._clock,
            numbering=ledger.reserve,
            discard=discard,
        )

    async def _attempt(
        self,
        launch: Launch,
        request: ChatRequest,
        plan: Plan,
        deadline: float,
        ledger: Ledger,
        want_logprobs: bool,
        stage: int,
        among: Alternatives,
    ) -> tuple[Completion, Any]:
        model = launch.candidate.model
        number = launch.number
        ledger.start(self.attempt_start(launch, request, stage))
        if not launch.hedged and not launch.retry_of:
            self._r.hedge_budget.record_request(model.provider)
            self._r.retry_budget.record_request(model.provider)
        timeout = self._attempt_timeout(model.provider, plan.execution, deadline)
        own, by_deadline = self._split_timeout(timeout, deadline)
        call = ProviderCall(request, model, timeout, want_logprobs=want_logprobs)
        try:
            tokens = plan.estimated_input_tokens + (request.params.max_output_tokens or 0)
            queued_at = self._clock()
            async with (
                self._r.admission.admit(
                    model.provider,
                    model.name,
                    priority=request.hints.priority,
                    tokens=tokens,
                    deadline=deadline,
                ),
                asyncio.timeout(by_deadline),
                # Panic mode is for a candidate's first try; a retry's first try had its chance.
                self._r.breakers.guard(model.name, None if launch.retry_of else among),
                asyncio.timeout(own),
            ):
                ledger.queued(number, self._clock() - queued_at)
                completion = await self._adapters[model.provider].complete(call)
            parsed = check_completion(completion, request.response_format)
        except TimeoutError:
            error = ProviderError(FailureClass.TIMEOUT, f"no answer within {timeout:.3f}s")
            ledger.failed(number, error)
            raise error from None
        except ProviderError as error:
            ledger.failed(number, error)
            raise
        except asyncio.CancelledError:
            ledger.cancelled(number)
            raise
        return completion, parsed  # recorded by the race's caller: as the winner, or as cancelled

    # --- shared decisions ---------------------------------------------------------------------

    def _verdict(
        self, launch: Launch, error: ProviderError, policy: ExecutionPolicy, deadline: float
    ) -> FailureVerdict:
        cls = error.failure_class
        if not cls.tries_next_candidate:
            return FailureVerdict(final=True)
        if cls is FailureClass.CONTEXT_TOO_LONG:
            window = launch.candidate.model.context_window
            return FailureVerdict(skip=lambda c: c.model.context_window <= window)
        if cls is FailureClass.INVALID_OUTPUT:
            if policy.invalid_output == "retry" and not launch.variant:
                return FailureVerdict(retry_in_s=0.0, retry_variant="stricter", hold=True)
            return FailureVerdict()
        retries = launch.tries - 1
        provider = launch.candidate.model.provider
        if cls in RETRYABLE and retries < policy.max_retries and self._r.retry_budget.try_spend(provider):
            delay = retry_delay_s(
                retries + 1,
                base_s=policy.backoff_base_s,
                max_s=policy.backoff_max_s,
                retry_after_s=error.retry_after_s,
                rng=self._rng,
            )
            if self._clock() + delay < deadline:  # a retry due after the deadline would only wait
                return FailureVerdict(retry_in_s=delay)
        return FailureVerdict()

    def _hedge_delay(self, candidate: Candidate, policy: ExecutionPolicy) -> float | None:
        if not policy.hedging:
            return None
        if policy.hedge_delay_s is not None:
            return policy.hedge_delay_s
        stats = self._health.stats(candidate.model.name) if self._health else None
        if stats is not None and stats.latency_p95_s is not None:
            return stats.latency_p95_s
        return 1.5 * candidate.model.typical_latency_s

    def _split_timeout(self, timeout: float, deadline: float) -> tuple[float | None, float | None]:
        """(the attempt's own limit, the request's deadline): whichever binds, the other is None.

        The attempt's own limit sits inside the circuit breaker, so hitting it counts against the
        endpoint; the request's deadline sits outside, because a caller's tight deadline says
        nothing about the endpoint's health.
        """
        if timeout < deadline - self._clock():
            return timeout, None
        return None, timeout

    def _attempt_timeout(self, provider: str, policy: ExecutionPolicy, deadline: float) -> float:
        limits = [deadline - self._clock(), self._providers[provider].request_timeout_s]
        if policy.attempt_timeout_s is not None:
            limits.append(policy.attempt_timeout_s)
        return max(0.0, min(limits))

    # --- streams ------------------------------------------------------------------------------

    def stream(
        self, plan: Plan, request: ChatRequest, deadline: float
    ) -> AsyncIterator[StreamChunk | ExecutionResult]:
        """Yield text/tool chunks, then one ExecutionResult (see streaming.py)."""
        from sidecar.execution.streaming import StreamRun

        return StreamRun(self, plan, request, deadline).events()


def _is_final(lost: RaceLost) -> bool:
    return bool(lost.errors) and not lost.errors[-1].failure_class.tries_next_candidate


def _escalation(completion: Completion, stage: Stage, policy: ExecutionPolicy) -> str:
    """Why a cascade should pass over this answer, or '' to accept it."""
    on = stage.escalate_on
    if "length" in on and completion.finish_reason is FinishReason.LENGTH:
        return "length"
    if "refusal" in on and _refused(completion, policy):
        return "refusal"
    threshold = policy.low_confidence_logprob
    logprob = completion.mean_logprob
    if "low_confidence" in on and threshold is not None and logprob is not None and logprob < threshold:
        return "low_confidence"
    return ""


def _refused(completion: Completion, policy: ExecutionPolicy) -> bool:
    if completion.refusal or completion.finish_reason is FinishReason.CONTENT_FILTER:
        return True
    head = completion.text[:400]
    if any(m.search(head) for m in _compiled(policy.refusal_patterns)):
        return True
    expected = _compiled(policy.expected_patterns)
    return bool(expected) and not any(m.search(head) for m in expected)


@functools.lru_cache(maxsize=128)
def _compiled(patterns: tuple[str, ...]) -> tuple[Matcher, ...]:
    """Config patterns on RE2, compiled once per route's policy: linear in the answer, whatever they
    say (Python's `re` took seconds on `(a|aa)+$` and 40 a's). The config check has compiled them."""
    return tuple(compile_linear(f"(?i){p}") for p in patterns)


def _stricter(request: ChatRequest, violations: str) -> ChatRequest:
    """The same request, told what was wrong with the last answer (an invalid-output retry)."""
    note = (
        "Your previous answer was rejected: "
        + (violations or "it did not match the required format")
        + ". Reply again with only the required output, nothing else."
    )
    return replace(request, messages=(*request.messages, Message(Role.SYSTEM, (TextPart(note),))))


def _result(completion: Completion, launch: Launch, ledger: Ledger, parsed: Any | None) -> ExecutionResult:
    return ExecutionResult(completion, launch.candidate, tuple(ledger.records), parsed, launch.number)
