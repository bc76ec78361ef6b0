"""Budgets as a routing constraint: past a soft limit with `on_soft: cheaper`, the policy keeps to
models at or below the budget's quality, and the plan says so.

It reads this pod's last view of the budgets (no I/O, like the rest of planning), so it reacts one
request late at most. It narrows the request's own deny list, so every strategy and the decision
cache see an ordinary constrained request. Were nothing left to serve the request, the usual plan
stands and the reason says that too: a soft limit never refuses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from sidecar.domain.errors import NoCandidate
from sidecar.domain.model import ModelSpec
from sidecar.domain.plan import Plan, Why
from sidecar.domain.request import ChatRequest
from sidecar.limits.budgets import BudgetBook, SoftAction


class Policy(Protocol):
    def plan(self, request: ChatRequest) -> Plan: ...


class BudgetedPolicy:
    def __init__(
        self, inner: Policy, book: BudgetBook, models: Iterable[ModelSpec], default_route: str
    ) -> None:
        self._inner = inner
        self._book = book
        self._models = tuple(models)
        self._default_route = default_route

    def plan(self, request: ChatRequest) -> Plan:
        hints = request.hints
        route = hints.route or self._default_route
        binding = [
            u for u in self._book.seen(request, route) if u.soft and u.budget.on_soft is SoftAction.CHEAPER
        ]
        if not binding or hints.pinned_model:
            return self._inner.plan(request)
        ceiling = min(u.budget.cheaper_max_quality for u in binding)
        worst = max(binding, key=lambda u: u.share)
        denied = frozenset(m.name for m in self._models if m.quality > ceiling)
        where = f" for {worst.scope}" if worst.scope else ""
        try:
            plan = self._inner.plan(
                replace(request, hints=replace(hints, denied_models=hints.denied_models | denied))
            )
            why = Why(
                "budget: {} {:.0%} of its {} limit used{}, models above quality {:g} excluded",
                worst.budget.name, worst.share, worst.budget.window.label, where, ceiling,
            )  # fmt: skip
        except NoCandidate:
            plan = self._inner.plan(request)
            why = Why(
                "budget: {} {:.0%} of its {} limit used{}, but no model at or below quality {:g} "
                "serves this request: the usual choice stands",
                worst.budget.name, worst.share, worst.budget.window.label, where, ceiling,
            )  # fmt: skip
        return replace(plan, reasons=(*plan.reasons, why))
