"""The first routing strategy: rules on client metadata pick an ordered model list, then filters.

    route (hints.route or the default)
      -> pinned model, or the first rule whose match holds, or the route's default list
      -> drop models the hints deny, that lack a needed capability, whose context window is too
         small, that cost more than the bound or fall below the quality floor
      -> Plan: the survivors in order, every rejection with its reason

Content is never inspected here; only hints and sizes are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.domain.errors import FieldViolation, InvalidRequest, NoCandidate, NotFound
from sidecar.domain.model import ModelSpec
from sidecar.domain.plan import Candidate, Plan, Rejection
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Usage
from sidecar.policy.tokens import estimate_input_tokens
from sidecar.registry.registry import Registry

DEFAULT_OUTPUT_TOKENS = 512
"""Output length assumed for estimates when the request sets no max_output_tokens."""


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches when every condition given holds; empty conditions match anything."""

    name: str
    models: tuple[str, ...]
    task_types: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()  # any one of them
    labels: tuple[tuple[str, str], ...] = ()  # all of them

    def matches(self, request: ChatRequest) -> bool:
        hints = request.hints
        return (
            (not self.task_types or hints.task_type in self.task_types)
            and (not self.tiers or hints.user_tier in self.tiers)
            and (not self.tags or bool(self.tags & hints.tags))
            and all(request.labels.get(k) == v for k, v in self.labels)
        )

    def describe(self) -> str:
        conditions = [
            *(f"task_type in {sorted(self.task_types)}" for _ in [0] if self.task_types),
            *(f"tier in {sorted(self.tiers)}" for _ in [0] if self.tiers),
            *(f"tags any of {sorted(self.tags)}" for _ in [0] if self.tags),
            *(f"label {k}={v}" for k, v in self.labels),
        ]
        return f"rule {self.name!r} matched ({', '.join(conditions) or 'always'})"


@dataclass(frozen=True, slots=True)
class RouteSpec:
    name: str
    default_models: tuple[str, ...]
    rules: tuple[Rule, ...] = ()
    strict: bool = False

    @property
    def known_task_types(self) -> frozenset[str]:
        return frozenset().union(*(r.task_types for r in self.rules))

    @property
    def known_tiers(self) -> frozenset[str]:
        return frozenset().union(*(r.tiers for r in self.rules))


class RulesPolicy:
    """Plans requests from the routes of one config snapshot."""

    strategy = "rules"

    def __init__(self, routes: Mapping[str, RouteSpec], default_route: str, registry: Registry) -> None:
        self._routes = routes
        self._default_route = default_route
        self._registry = registry

    def plan(self, request: ChatRequest) -> Plan:
        started = time.perf_counter_ns()
        hints = request.hints
        route = self._route(hints.route)
        reasons: list[str] = []
        if hints.pinned_model:
            model = self._registry.get(hints.pinned_model)
            if model is None:
                raise NotFound(
                    "MODEL_NOT_FOUND",
                    "hints.pinned_model",
                    f"pinned model {hints.pinned_model!r} is not in the registry",
                )
            names: tuple[str, ...] = (model.name,)
            reasons.append(f"pinned to {model.name} by the request; no fallback")
        else:
            names = self._select(route, request, reasons)
        input_tokens = estimate_input_tokens(request)
        output_tokens = request.params.max_output_tokens or DEFAULT_OUTPUT_TOKENS
        candidates: list[Candidate] = []
        rejections: list[Rejection] = []
        for name in names:
            model = self._registry.get(name)
            assert model is not None, "config validation guarantees route models exist"
            cost = model.price.cost_usd_nanos(Usage(input_tokens, output_tokens))
            why = _rejection(model, request, input_tokens, output_tokens, cost)
            if why:
                rejections.append(Rejection(model.name, model.provider, why))
            else:
                candidates.append(Candidate(model, cost, model.typical_latency_s))
        if not candidates:
            raise NoCandidate(route.name, tuple(rejections), _shortfall(names, self._registry, input_tokens))
        if len(candidates) > 1:
            reasons.append("fallback order: " + " -> ".join(c.model.name for c in candidates))
        return Plan(
            route=route.name,
            strategy=self.strategy,
            candidates=tuple(candidates),
            reasons=tuple(reasons),
            rejections=tuple(rejections),
            estimated_input_tokens=input_tokens,
            decision_time_micros=(time.perf_counter_ns() - started) // 1000,
        )

    def _route(self, name: str) -> RouteSpec:
        route = self._routes.get(name or self._default_route)
        if route is None:
            known = ", ".join(sorted(self._routes))
            raise NotFound("ROUTE_NOT_FOUND", "hints.route", f"unknown route {name!r}; known routes: {known}")
        return route

    def _select(self, route: RouteSpec, request: ChatRequest, reasons: list[str]) -> tuple[str, ...]:
        hints = request.hints
        if route.strict:
            _check_known(route, hints.task_type, hints.user_tier)
        for rule in route.rules:
            if rule.matches(request):
                reasons.append(rule.describe())
                return rule.models
        if hints.task_type and hints.task_type not in route.known_task_types:
            reasons.append(f"task type {hints.task_type!r} matches no rule of route {route.name!r}")
        if hints.user_tier and hints.user_tier not in route.known_tiers:
            reasons.append(f"tier {hints.user_tier!r} matches no rule of route {route.name!r}")
        reasons.append(f"no rule matched; route {route.name!r} default list")
        return route.default_models


def _check_known(route: RouteSpec, task_type: str, tier: str) -> None:
    violations = []
    if task_type and task_type not in route.known_task_types:
        known = ", ".join(sorted(route.known_task_types)) or "none"
        violations.append(
            FieldViolation("hints.task_type", f"route {route.name!r} is strict and knows task types: {known}")
        )
    if tier and tier not in route.known_tiers:
        known = ", ".join(sorted(route.known_tiers)) or "none"
        violations.append(
            FieldViolation("hints.user_tier", f"route {route.name!r} is strict and knows tiers: {known}")
        )
    if violations:
        raise InvalidRequest(violations)


def _rejection(
    model: ModelSpec, request: ChatRequest, input_tokens: int, output_tokens: int, cost: int
) -> str:
    """Why the model cannot serve the request, or '' if it can."""
    hints = request.hints
    if model.name in hints.denied_models:
        return "denied by hints.denied_models"
    if model.provider in hints.denied_providers:
        return f"provider {model.provider} denied by hints.denied_providers"
    if hints.allowed_models and model.name not in hints.allowed_models:
        return "not in hints.allowed_models"
    if hints.allowed_providers and model.provider not in hints.allowed_providers:
        return f"provider {model.provider} not in hints.allowed_providers"
    missing = request.implied_capabilities() - model.capabilities
    if missing:
        return "lacks " + ", ".join(sorted(c.value for c in missing))
    if request.params.max_output_tokens and request.params.max_output_tokens > model.max_output_tokens:
        return f"max output {model.max_output_tokens:,} < {request.params.max_output_tokens:,} requested"
    needed = input_tokens + (request.params.max_output_tokens or 0)
    if needed > model.context_window:
        return f"context {model.context_window:,} < {needed:,} needed"
    if hints.max_cost_usd_nanos and cost > hints.max_cost_usd_nanos:
        return f"estimated cost ${cost / 1e9:.6f} > max ${hints.max_cost_usd_nanos / 1e9:.6f}"
    if hints.quality_floor is not None and model.quality < hints.quality_floor:
        return f"quality {model.quality:.2f} < floor {hints.quality_floor:.2f}"
    return ""


def _shortfall(names: tuple[str, ...], registry: Registry, input_tokens: int) -> str:
    """When the input fits no candidate's context window, say by how many tokens."""
    windows = [m.context_window for n in names if (m := registry.get(n)) is not None]
    if windows and input_tokens > max(windows):
        over = input_tokens - max(windows)
        return (
            f"the input (about {input_tokens:,} tokens) exceeds the largest context window by {over:,} tokens"
        )
    return ""
