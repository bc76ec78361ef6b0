"""The routing engine: request -> frozen Plan, by running the route's strategies over a Draft.

    route (hints.route or the default)
      -> decision cache (hit: the cached plan, marked as a hit)
      -> pinned model? then only the request's constraints and the capability check apply
      -> the route's strategies in order; the request's own constraints (allow / deny lists,
         cost bound, quality floor) right after the rules, or first when there are none
      -> no survivor: NoCandidate with every model's reason
      -> Plan: stages of candidates with estimates, every model considered with its notes

No I/O and no awaits: everything read here is in memory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from sidecar.domain.errors import NoCandidate, NotFound
from sidecar.domain.plan import Candidate, ExecutionPolicy, Plan, Rejection, Stage, Why
from sidecar.domain.request import ChatRequest
from sidecar.policy.cache import DecisionCache, cache_key, request_chars
from sidecar.policy.draft import Draft, Entry
from sidecar.policy.health import HealthTracker
from sidecar.policy.specs import CapabilitySpec
from sidecar.policy.strategies.base import Strategy
from sidecar.policy.strategies.capability import CapabilityStrategy
from sidecar.policy.strategies.constraints import HintConstraints

DEFAULT_OUTPUT_TOKENS = 512
"""Output length assumed for cost estimates when the request sets no max_output_tokens."""

_PINNED = (HintConstraints(), CapabilityStrategy(CapabilitySpec()))


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    pool: tuple[Entry, ...]
    strategies: tuple[Strategy, ...]  # in the order they run, constraints included
    label: str  # e.g. "rules>capability>sla>scoring>cascade"
    reads_content: bool
    max_candidates: int
    execution: ExecutionPolicy


class Engine:
    def __init__(
        self,
        routes: Mapping[str, CompiledRoute],
        default_route: str,
        entries: Mapping[str, Entry],
        health: HealthTracker,
        cache: DecisionCache | None = None,
    ) -> None:
        self._routes = routes
        self._default_route = default_route
        self._entries = entries
        self._health = health
        self._counters = 1 + max((e.slot for e in entries.values()), default=0)
        self.cache = cache

    def plan(self, request: ChatRequest) -> Plan:
        started = time.perf_counter_ns()
        route = self._route(request.hints.route)
        output_tokens = request.params.max_output_tokens or DEFAULT_OUTPUT_TOKENS
        cache, key, chars, version = self.cache, None, 0, self._health.version
        if cache is not None:
            chars = request_chars(request)
            key = cache_key(route.name, request, chars, route.reads_content)
            hit = cache.get(key, version, chars, output_tokens)
            if hit is not None:
                return replace(hit, cache_hit=True, decision_time_micros=_micros_since(started))
        pinned = request.hints.pinned_model
        if pinned:
            entry = self._entries.get(pinned)
            if entry is None:
                raise NotFound(
                    "MODEL_NOT_FOUND", "hints.pinned_model", f"pinned model {pinned!r} is not in the registry"
                )
            draft = Draft(request, [entry], output_tokens, self._counters)
            draft.reasons.append(f"pinned to {pinned} by the request; no fallback")
            strategies: tuple[Strategy, ...] = _PINNED
        else:
            draft = Draft(request, list(route.pool), output_tokens, self._counters)
            strategies = route.strategies
        for strategy in strategies:
            strategy.apply(draft)
            if not draft.alive:
                break
        if not draft.alive:
            raise NoCandidate(route.name, _rejections(draft), draft.shortfall)
        plan = _freeze(draft, route, started)
        if key is not None and cache is not None and plan.truncation is None:
            cache.put(key, version, plan)
        return plan

    def _route(self, name: str) -> CompiledRoute:
        route = self._routes.get(name or self._default_route)
        if route is None:
            known = ", ".join(sorted(self._routes))
            raise NotFound("ROUTE_NOT_FOUND", "hints.route", f"unknown route {name!r}; known routes: {known}")
        return route


def _micros_since(started_ns: int) -> int:
    return (time.perf_counter_ns() - started_ns) // 1000


def _score(terms: tuple[float, ...] | None) -> float | None:
    return None if terms is None else terms[0]


def _bounded(groups: list[list[Entry]], limit: int) -> list[list[Entry]]:
    """At most `limit` candidates in all: every stage keeps its leader, fallbacks fill what is left."""
    spare = limit - len(groups)
    out = []
    for group in groups:
        take = 1 + max(0, min(spare, len(group) - 1))
        spare -= take - 1
        out.append(group[:take])
    return out


def _rejections(draft: Draft) -> tuple[Rejection, ...]:
    return tuple(
        Rejection(e.name, e.provider, "; ".join(str(n) for n in draft.notes.get(e.name, ())))
        for e in draft.order
        if e.name in draft.dropped
    )


def _freeze(draft: Draft, route: CompiledRoute, started: int) -> Plan:
    cost, scores = draft.cost, draft.scores
    groups = _bounded(draft.stages or [draft.alive], route.max_candidates)
    last = len(groups) - 1
    stages = tuple(
        Stage(
            tuple(Candidate(e.model, round(cost(e)), e.latency_s, _score(scores.get(e.name))) for e in group),
            draft.escalate_on if i < last else frozenset(),
            draft.consensus if i == 0 < last else None,
        )
        for i, group in enumerate(groups)
    )
    if last == 0 and len(groups[0]) > 1:
        draft.reasons.append(Why("fallback order: {}", " -> ".join(e.name for e in groups[0])))
    return Plan(
        route=route.name,
        strategy=route.label,
        stages=stages,
        reasons=tuple(draft.reasons),
        looked_at=tuple(e.model for e in draft.order),
        dropped=frozenset(draft.dropped),
        notes=draft.notes,
        listed_by=draft.listed_by,
        score_terms=scores,
        estimated_input_tokens=draft.input_tokens(groups[0][0]),
        decision_time_micros=_micros_since(started),
        truncation=draft.truncation,
        classifier_score=draft.classifier_score,
        execution=route.execution,
    )
