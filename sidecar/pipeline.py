"""The whole request flow on one page: bound the deadline -> policy.plan -> executor.run -> result.

    server (pb -> ChatRequest, validated; the RPC's observer `call`)
      -> Pipeline.route:     policy.plan(request) -> Plan                  (pure, microseconds)
                             call.planned(...)                             (the decision)
      -> Pipeline.generate:  spending.admit(request, plan): budgets charged (or BudgetExceeded)
                             deadline = min(rpc deadline, now + hints.latency_budget)
                             the request as planned (truncated if the plan cut it)
                             executor.run(plan, request, deadline, call)   (attempts -> call)
                             call.answered(...)                            (telemetry, shadows)
                             hold.release()                                (the estimate given back)
      -> server (Plan + ExecutionResult -> pb)

The pipeline owns no I/O of its own; it only wires the policy's output into the executor.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Protocol

from sidecar.domain.errors import DeadlineExceeded
from sidecar.domain.observe import QUIET, Answered, CallObserver, Planned
from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import StreamChunk
from sidecar.domain.result import ExecutionResult, Relaying
from sidecar.execution.executor import Executor


class Policy(Protocol):
    def plan(self, request: ChatRequest) -> Plan: ...


class Hold(Protocol):
    def release(self) -> None: ...


class Spending(Protocol):
    """Budgets (sidecar/limits): a request's estimate is charged before its first attempt, a hard
    limit refuses it (BudgetExceeded); the hold is released when the request ends. The attempts'
    real cost reaches the budgets as the call's observer sees them end."""

    async def admit(self, request: ChatRequest, plan: Plan) -> Hold: ...


@dataclass(frozen=True, slots=True)
class Generated:
    plan: Plan
    result: ExecutionResult


class Pipeline:
    def __init__(
        self,
        policy: Policy,
        executor: Executor,
        clock: Callable[[], float] = time.monotonic,
        spending: Spending | None = None,
    ) -> None:
        self.policy = policy
        self.executor = executor
        self._clock = clock
        self._spending = spending

    def route(self, request: ChatRequest, call: CallObserver = QUIET) -> Plan:
        plan = self.policy.plan(request)
        call.planned(Planned(request, plan))
        return plan

    async def generate(self, request: ChatRequest, deadline: float, call: CallObserver = QUIET) -> Generated:
        plan = self.route(request, call)
        hold = await self._spending.admit(request, plan) if self._spending else None
        bounded, by_budget = self._deadline(request, deadline)
        sent = _as_planned(request, plan)
        try:
            result = await self.executor.run(plan, sent, bounded, call)
        except DeadlineExceeded as exc:
            raise _explained(exc, by_budget, request) from None
        finally:
            if hold is not None:
                hold.release()
        call.answered(_answered(sent, plan, result, call))
        return Generated(plan, result)

    async def generate_stream(
        self, request: ChatRequest, deadline: float, call: CallObserver = QUIET
    ) -> AsyncIterator[Plan | Relaying | StreamChunk | ExecutionResult]:
        """Yield the plan first, then the executor's chunks (each run of them after a Relaying that
        names the model writing them), then its result."""
        plan = self.route(request, call)
        hold = await self._spending.admit(request, plan) if self._spending else None
        try:
            yield plan
            bounded, by_budget = self._deadline(request, deadline)
            sent = _as_planned(request, plan)
            try:
                async for event in self.executor.stream(plan, sent, bounded, call):
                    if isinstance(event, ExecutionResult):
                        call.answered(_answered(sent, plan, event, call))
                    yield event
            except DeadlineExceeded as exc:
                raise _explained(exc, by_budget, request) from None
        finally:
            if hold is not None:
                hold.release()

    def _deadline(self, request: ChatRequest, deadline: float) -> tuple[float, bool]:
        """The earlier of the RPC deadline and the latency budget, and whether the budget binds."""
        budget = request.hints.latency_budget_s
        if budget is None:
            return deadline, False
        by_budget = self._clock() + budget
        return (by_budget, True) if by_budget < deadline else (deadline, False)


def _answered(sent: ChatRequest, plan: Plan, result: ExecutionResult, call: CallObserver) -> Answered:
    return Answered(sent, plan, result.completion, result.candidate, result.attempts, result.winner, call)


def _as_planned(request: ChatRequest, plan: Plan) -> ChatRequest:
    """The request as the plan says to send it: with the truncated conversation, if it was cut."""
    if plan.truncation is None:
        return request
    return replace(request, messages=plan.truncation.messages)


def _explained(exc: DeadlineExceeded, by_budget: bool, request: ChatRequest) -> DeadlineExceeded:
    if not by_budget:
        return exc
    budget = request.hints.latency_budget_s
    return DeadlineExceeded(f"the latency budget of {budget:.3f}s ran out before an answer", exc.attempts)
