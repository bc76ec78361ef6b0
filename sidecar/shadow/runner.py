"""Sends a sampled share of a route's answered requests to its reference model, off the critical path.

    pipeline answered -> ShadowRunner.answered(request, plan, result)   (returns at once)
        sampled? within the hourly spend cap? not already the reference model? room in flight?
        -> task: executor.run(reference-only plan) -> compare (exact | json | judge model)
        -> ShadowBook: per-route window of agreements -> observers (metrics, alert log line)

The task is owned by the book (cancelled at stop), never awaited by a request, and its failures
are counted, never raised. Shadow calls are real provider calls: the executor reports them to the
attempt observers like any other, so they appear in spend and health.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from sidecar.domain.errors import TurnoutError
from sidecar.domain.model import ModelSpec
from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.request import ChatRequest, Priority
from sidecar.domain.response import Usage
from sidecar.domain.result import ExecutionResult
from sidecar.domain.shadow import Compare, ShadowSpec
from sidecar.execution.executor import Executor
from sidecar.registry.registry import Registry
from sidecar.shadow.compare import exact_match, json_match, judge_request, judge_verdict

log = logging.getLogger(__name__)
NANOS_PER_USD = 1_000_000_000


class ShadowObserver(Protocol):
    def shadow_compared(self, route: str, agreed: bool, cost_usd_nanos: int) -> None: ...

    def shadow_skipped(self, route: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Agreement:
    """A route's agreement over its window, and whether it is under the alert threshold."""

    agreement: float
    samples: int
    alerting: bool


@dataclass
class _Route:
    window: deque[bool]
    budget_nanos: float  # spend allowed now (a token bucket refilled at max_usd_per_hour)
    refilled_at: float
    alerting: bool = False


@dataclass
class ShadowBook:
    """What outlives a config snapshot: each route's window and spend budget, and running tasks."""

    clock: Callable[[], float] = time.monotonic
    routes: dict[str, _Route] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def route(self, spec: ShadowSpec) -> _Route:
        r = self.routes.get(spec.route)
        if r is None or r.window.maxlen != spec.window:
            kept = list(r.window)[-spec.window :] if r else []
            cap = spec.max_usd_per_hour * NANOS_PER_USD
            r = _Route(
                deque(kept, maxlen=spec.window), cap if r is None else min(r.budget_nanos, cap), self.clock()
            )
            self.routes[spec.route] = r
        return r

    def spend(self, spec: ShadowSpec, nanos: float) -> bool:
        """Take `nanos` from the route's budget if it holds that much (refilled per second)."""
        r = self.route(spec)
        now = self.clock()
        cap = spec.max_usd_per_hour * NANOS_PER_USD
        r.budget_nanos = min(cap, r.budget_nanos + (now - r.refilled_at) * cap / 3600)
        r.refilled_at = now
        if r.budget_nanos < nanos:
            return False
        r.budget_nanos -= nanos
        return True

    def refund(self, spec: ShadowSpec, nanos: float) -> None:
        r = self.route(spec)
        r.budget_nanos = min(spec.max_usd_per_hour * NANOS_PER_USD, r.budget_nanos + nanos)

    def record(self, spec: ShadowSpec, agreed: bool) -> Agreement:
        r = self.route(spec)
        r.window.append(agreed)
        now = self.agreement(spec)
        if now.alerting and not r.alerting:
            log.warning(
                "shadow: route %s agrees with %s on only %.1f%% of the last %d answers (alert below %.1f%%)",
                spec.route,
                spec.reference_model,
                100 * now.agreement,
                now.samples,
                100 * spec.alert_below,
            )
        elif r.alerting and not now.alerting:
            log.info(
                "shadow: route %s is back to %.1f%% agreement with %s",
                spec.route,
                100 * now.agreement,
                spec.reference_model,
            )
        r.alerting = now.alerting
        return now

    def agreement(self, spec: ShadowSpec) -> Agreement:
        window = self.route(spec).window
        samples = len(window)
        share = sum(window) / samples if samples else 1.0
        return Agreement(share, samples, samples >= spec.min_samples and share < spec.alert_below)

    async def close(self) -> None:
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class ShadowRunner:
    def __init__(
        self,
        specs: Mapping[str, ShadowSpec],
        registry: Registry,
        executor: Executor,
        book: ShadowBook,
        *,
        observers: Sequence[ShadowObserver] = (),
        rng: random.Random | None = None,
    ) -> None:
        self._specs = specs
        self._registry = registry
        self._executor = executor
        self._book = book
        self._observers = tuple(observers)
        self._rng = rng or random.Random()

    @property
    def specs(self) -> Mapping[str, ShadowSpec]:
        return self._specs

    def agreements(self) -> dict[str, Agreement]:
        return {route: self._book.agreement(spec) for route, spec in self._specs.items()}

    def answered(self, request: ChatRequest, plan: Plan, result: ExecutionResult) -> None:
        """Maybe shadow this answered request; never blocks and never raises."""
        spec = self._specs.get(plan.route)
        if spec is None or self._rng.random() >= spec.share:
            return
        reference = self._registry.get(spec.reference_model)
        if reference is None or result.candidate.model.name == reference.name:
            return  # the reference model answered: nothing to compare
        if sum(1 for t in self._book.tasks if not t.done()) >= spec.max_in_flight:
            self._skipped(spec, "in_flight")
            return
        estimate = self._estimate(spec, reference, result.completion.usage)
        if not self._book.spend(spec, estimate):
            self._skipped(spec, "budget")
            return
        task = asyncio.get_running_loop().create_task(
            self._shadow(spec, reference, request, result, estimate)
        )
        self._book.tasks.add(task)
        task.add_done_callback(self._book.tasks.discard)

    def _estimate(self, spec: ShadowSpec, reference: ModelSpec, usage: Usage) -> float:
        """The shadow's cost at the reference (and judge) prices, from the answer's token counts."""
        cost = reference.price.cost_usd_nanos(usage)
        judge = self._registry.get(spec.judge_model) if spec.compare is Compare.JUDGE else None
        if judge is not None:
            judged = Usage(input_tokens=usage.input_tokens + 2 * usage.output_tokens + 150, output_tokens=5)
            cost += judge.price.cost_usd_nanos(judged)
        return float(cost)

    async def _shadow(
        self,
        spec: ShadowSpec,
        reference: ModelSpec,
        request: ChatRequest,
        answered: ExecutionResult,
        estimate: float,
    ) -> None:
        spent = 0
        try:
            deadline = asyncio.get_running_loop().time() + spec.timeout_s
            # Behind every caller's request in admission queues: shadows only use spare capacity.
            request = replace(request, hints=replace(request.hints, priority=Priority.BATCH))
            shadow = await self._executor.run(_only(reference, spec.route), request, deadline)
            spent += shadow.total_cost_usd_nanos
            agreed = await self._compare(
                spec, request, answered.completion.text, shadow.completion.text, deadline
            )
            if agreed is None:
                self._skipped(spec, "judge_unclear")
                return
            judged_cost = agreed[1]
            spent += judged_cost
            self._book.record(spec, agreed[0])
            for observer in self._observers:
                observer.shadow_compared(spec.route, agreed[0], spent)
        except TurnoutError as exc:
            self._skipped(spec, "failed")
            log.debug("shadow: route %s: the reference call failed: %s", spec.route, exc)
        except asyncio.CancelledError:
            raise
        except Exception:  # a shadow never takes the sidecar down
            self._skipped(spec, "failed")
            log.exception("shadow: route %s: unexpected error", spec.route)
        finally:
            if spent < estimate:
                self._book.refund(spec, estimate - spent)

    async def _compare(
        self, spec: ShadowSpec, request: ChatRequest, answer: str, reference: str, deadline: float
    ) -> tuple[bool, int] | None:
        """(agreed, what judging cost), or None when a judge gave no verdict."""
        if spec.compare is Compare.EXACT:
            return exact_match(answer, reference), 0
        if spec.compare is Compare.JSON:
            return json_match(answer, reference), 0
        judge = self._registry.get(spec.judge_model)
        if judge is None:
            return None
        judged = await self._executor.run(
            _only(judge, spec.route), judge_request(request, answer, reference), deadline
        )
        verdict = judge_verdict(judged.completion.text)
        return None if verdict is None else (verdict, judged.total_cost_usd_nanos)

    def _skipped(self, spec: ShadowSpec, reason: str) -> None:
        for observer in self._observers:
            observer.shadow_skipped(spec.route, reason)


def _only(model: ModelSpec, route: str) -> Plan:
    """A plan with one candidate and no retries beyond the executor's defaults."""
    return Plan(route=route, strategy="shadow", stages=(Stage((Candidate(model),)),))
