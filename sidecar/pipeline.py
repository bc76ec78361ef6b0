"""The whole request flow on one page: bound the deadline -> policy.plan -> executor.run -> result.

    server (pb -> ChatRequest, validated)
      -> Pipeline.route:     policy.plan(request) -> Plan                  (pure, microseconds)
                             observers.routed(request, plan)               (the routing span)
                             answer_observers.answered(...)                (shadow evaluation)
      -> Pipeline.generate:  spending.admit(request, plan): budgets charged (or BudgetExceeded)
                             deadline = min(rpc deadline, now + hints.latency_budget)
                             the request as planned (truncated if the plan cut it)
                             executor.run(plan, request, deadline)         (attempts -> observers)
                             hold.release()                                (the estimate given back)
      -> server (Plan + ExecutionResult -> pb)

The pipeline owns no I/O of its own; it only wires the policy's output into the executor.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from sidecar.domain.errors import DeadlineExceeded
from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import StreamChunk
from sidecar.execution.executor import ExecutionResult, Executor


class Policy(Protocol):
    def plan(self, request: ChatRequest) -> Plan: ...


class RouteObserver(Protocol):
    """Sees every decision as it is made (telemetry); it must not raise or block."""

    def routed(self, request: ChatRequest, plan: Plan) -> None: ...


class AnswerObserver(Protocol):
    """Sees every answered request, as sent (shadow evaluation); it must not raise or block."""

    def answered(self, request: ChatRequest, plan: Plan, result: ExecutionResult) -> None: ...


class Hold(Protocol):
    def release(self) -> None: ...


class Spending(Protocol):
    """Budgets (sidecar/limits): a request's estimate is charged before its first attempt, a hard
    limit refuses it (BudgetExceeded); the hold is released when the request ends."""

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
        observers: Sequence[RouteObserver] = (),
        answer_observers: Sequence[AnswerObserver] = (),
        spending: Spending | None = None,
    ) -> None:
        self.policy = policy
        self.executor = executor
        self._clock = clock
        self._observers = tuple(observers)
        self._answer_observers = tuple(answer_observers)
        self._spending = spending

    def route(self, request: ChatRequest) -> Plan:
        plan = self.policy.plan(request)
        for observer in self._observers:
            observer.routed(request, plan)
        return plan

    async def generate(self, request: ChatRequest, deadline: float) -> Generated:
        plan = self.route(request)
        hold = await self._spending.admit(request, plan) if self._spending else None
        bounded, by_budget = self._deadline(request, deadline)
        sent = _as_planned(request, plan)
        try:
            result = await self.executor.run(plan, sent, bounded)
        except DeadlineExceeded as exc:
            raise _explained(exc, by_budget, request) from None
        finally:
            if hold is not None:
                hold.release()
        for observer in self._answer_observers:
            observer.answered(sent, plan, result)
        return Generated(plan, result)

    async def generate_stream(
        self, request: ChatRequest, deadline: float
    ) -> AsyncIterator[Plan | StreamChunk | ExecutionResult]:
        """Yield the plan first, then the executor's chunks, then its result."""
        plan = self.route(request)
        hold = await self._spending.admit(request, plan) if self._spending else None
        try:
            yield plan
            bounded, by_budget = self._deadline(request, deadline)
            sent = _as_planned(request, plan)
            try:
                async for event in self.executor.stream(plan, sent, bounded):
                    if isinstance(event, ExecutionResult):
                        for observer in self._answer_observers:
                            observer.answered(sent, plan, event)
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
