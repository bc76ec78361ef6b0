"""Runs a plan against providers: the only code that loops over attempts (through the race engine).

The resilience layers, outermost first, written down once:

    total deadline (gRPC deadline and the latency budget)            Executor.run / stream
      -> cascade stage (escalate on failure, or on length /
         refusal / low confidence of a stage's answer; a rejected
         answer is never returned, streamed or not)                  Executor._stages
        -> race over the stage's candidates: fallback on failure,
           hedge on slowness, retries after backoff; hedges and
           retries gated by per-provider budgets                      race.Race
          -> admission (concurrency, priority queue, rate limits)     admission.Admission
            -> the request's deadline, then the per-endpoint circuit
               breaker (every candidate's open: the one open longest
               probes at once), then the per-attempt timeout          attempt.RaceScope.run
              -> adapter (pure codec + HTTP)                          providers
                -> output validation (JSON / JSON Schema)             validation
                  -> failure classification (ProviderError.failure_class)

The layers from admission to the per-attempt timeout are one stack (attempt.py) that unary calls
and streams share; a stream brings only what streams need (streaming.py).

Every attempt, whatever became of it, becomes an AttemptRecord for the call's observer and the
response (ledger.Ledger); the final error names every candidate tried and why it failed.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from sidecar.domain.model import ProviderSpec
from sidecar.domain.observe import QUIET, CallObserver
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.plan import Candidate, ExecutionPolicy, Plan, Stage
from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.domain.response import Completion, FinishReason, StreamChunk, ToolCallDelta
from sidecar.domain.result import ExecutionResult, Relaying
from sidecar.execution.admission import Admission
from sidecar.execution.agreement import tally
from sidecar.execution.attempt import AttemptStack, Clock, Resilience
from sidecar.execution.ledger import Ledger, loop_clock
from sidecar.execution.race import FailureVerdict, Launch, RaceLost
from sidecar.execution.streaming import StreamRun
from sidecar.policy.health import HealthTracker
from sidecar.policy.regex import Matcher, compile_linear
from sidecar.providers.base import ProviderAdapter, ProviderCall
from sidecar.validation.json_output import check_completion

__all__ = ["Executor", "Resilience"]  # Resilience: the constructor takes one

DEADLINE_GRACE_S = 0.01


class Executor:
    def __init__(
        self,
        adapters: Mapping[str, ProviderAdapter],
        providers: Mapping[str, ProviderSpec],
        *,
        resilience: Resilience | None = None,
        health: HealthTracker | None = None,
        clock: Clock = loop_clock,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._stack = AttemptStack(
            adapters,
            providers,
            resilience or Resilience.default(),
            health=health,
            clock=clock,
            rng=rng or random.Random(),
        )

    @property
    def admission(self) -> Admission:
        return self._stack.resilience.admission

    # --- unary --------------------------------------------------------------------------------

    async def run(
        self, plan: Plan, request: ChatRequest, deadline: float, call: CallObserver = QUIET
    ) -> ExecutionResult:
        """Run the stages in turn until one answers acceptably; raise with every attempt otherwise.
        `call` sees every attempt start and end."""
        ledger = self.ledger(call)
        try:
            # Attempts time out at the deadline themselves (and are recorded as timeouts); this
            # outer bound is the safety net that ends anything else a moment later.
            async with asyncio.timeout_at(deadline + DEADLINE_GRACE_S):
                outcome = await self._stages(plan, request, deadline, ledger, len(plan.stages))
                if isinstance(outcome, ExecutionResult):
                    return outcome
        except TimeoutError:
            pass
        finally:
            ledger.close_open()
        raise ledger.final_error(deadline)

    async def _stages(
        self, plan: Plan, request: ChatRequest, deadline: float, ledger: Ledger, upto: int
    ) -> ExecutionResult | bool:
        """Stages [0, upto) in turn: the first acceptable answer, else whether the request should
        stop (a failure no later stage can help with). An answer a stage rejects (escalate_on, a
        consensus vote) is never returned, even when every later stage fails: the caller asked
        for it to be rejected, and gets an error naming every attempt instead."""
        for index, stage in enumerate(plan.stages[:upto]):
            final = index == len(plan.stages) - 1
            if stage.consensus is not None and not final:
                voted = await self._vote(plan, index, request, deadline, ledger)
                if isinstance(voted, ExecutionResult) or voted:
                    return voted  # accepted, or every voter failed for a reason no model can help
                continue
            try:
                launch, (completion, parsed) = await self._race(plan, index, request, deadline, ledger)
            except RaceLost as lost:
                if _is_final(lost) or final:
                    return True
                continue
            reason = "" if final else _escalation(completion, stage, plan.execution)
            if not reason:
                return _result(completion, launch, ledger, parsed)
            ledger.escalated(launch.number, reason)
        return False

    def ledger(self, call: CallObserver = QUIET) -> Ledger:
        """A new ledger for one request, reporting its attempts to the call's observer."""
        return Ledger(self._clock, call)

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
        among = stage.candidates if candidates is None else tuple(candidates)
        want_logprobs = plan.execution.low_confidence_logprob is not None
        scope = self._stack.race_scope(among, plan, deadline, ledger, stage_index)
        violations: dict[str, str] = {}
        adapters = self._stack.adapters

        async def start(launch: Launch) -> tuple[Completion, Any]:
            model = launch.candidate.model
            sent = _stricter(request, violations.get(model.name, "")) if launch.variant else request
            timeout = scope.begin(launch, sent)
            call = ProviderCall(sent, model, timeout, want_logprobs=want_logprobs)
            completion = await scope.run(launch, sent, timeout, adapters[model.provider].complete, call)
            try:  # output validation: outside the breaker, a bad answer says nothing of the endpoint
                parsed = check_completion(completion, sent.response_format)
            except ProviderError as error:
                ledger.failed(launch.number, error)
                raise
            return completion, parsed  # recorded by the race's caller: as the winner, or as cancelled

        def on_failure(launch: Launch, error: ProviderError) -> FailureVerdict:
            if error.failure_class is FailureClass.INVALID_OUTPUT:
                violations[launch.candidate.model.name] = error.message
            return scope.verdict(launch, error)

        async def discard(launch: Launch, answer: tuple[Completion, Any]) -> None:
            ledger.cancelled(launch.number, completion=answer[0])  # it came too late to be used

        launch, answer = await scope.race(start, discard, on_failure).run()
        ledger.succeeded(launch.number, answer[0])
        return launch, answer

    # --- streams ------------------------------------------------------------------------------

    def stream(
        self, plan: Plan, request: ChatRequest, deadline: float, call: CallObserver = QUIET
    ) -> AsyncIterator[StreamChunk | Relaying | ExecutionResult]:
        """Yield text/tool chunks, then one ExecutionResult (see streaming.py).

        A cascade's stages that check their answer (escalate_on, a consensus vote) run whole before
        anything is sent, as in a unary call: an answer they reject must never reach the caller,
        and a streamed token cannot be taken back. An accepted answer goes out as one chunk;
        otherwise the stages after them stream."""
        ledger = self.ledger(call)
        checked = _checked_stages(plan)
        if not checked:
            return StreamRun(self._stack, ledger, plan, request, deadline).events()
        return self._checked_stream(plan, checked, request, deadline, ledger)

    async def _checked_stream(
        self, plan: Plan, checked: int, request: ChatRequest, deadline: float, ledger: Ledger
    ) -> AsyncIterator[StreamChunk | Relaying | ExecutionResult]:
        outcome: ExecutionResult | bool = True
        try:
            async with asyncio.timeout_at(deadline + DEADLINE_GRACE_S):
                outcome = await self._stages(plan, request, deadline, ledger, checked)
        except TimeoutError:
            pass
        finally:
            ledger.close_open()
        if isinstance(outcome, ExecutionResult):
            yield Relaying(outcome.candidate)
            yield _whole(outcome.completion)
            yield outcome
            return
        if outcome:
            raise ledger.final_error(deadline)
        async for event in StreamRun(self._stack, ledger, plan, request, deadline, checked).events():
            yield event


def _checked_stages(plan: Plan) -> int:
    """How many leading stages must answer whole before a stream may start: up to the last
    non-final stage that checks its answer (0: the whole plan streams)."""
    last = len(plan.stages) - 1
    checks = (i + 1 for i, s in enumerate(plan.stages[:last]) if s.escalate_on or s.consensus)
    return max(checks, default=0)


def _whole(completion: Completion) -> StreamChunk:
    """An answer accepted before streaming began, as the stream's one chunk."""
    tools = tuple(
        ToolCallDelta(i, t.id, t.name, t.arguments_json) for i, t in enumerate(completion.tool_calls)
    )
    return StreamChunk(
        completion.text,
        tools,
        completion.finish_reason,
        completion.usage,
        completion.response_model,
        completion.refusal,
        completion.logprobs,
    )


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
