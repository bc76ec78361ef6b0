"""Limits as a routing constraint: the policy keeps to models at or below a quality while a budget
is past its soft limit (`on_soft: cheaper`) or a route's escalation cap is reached, and says why.

It reads the limits as this pod last saw them (no I/O, like the rest of planning), so it reacts a
request or a batch of adds late at most. It narrows the request's own deny list, so every strategy
and the decision cache see an ordinary constrained request. Were nothing left to serve the request,
the usual plan stands and the reason says so: these limits steer, they never refuse.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from sidecar.domain.errors import NoCandidate
from sidecar.domain.model import ModelSpec
from sidecar.domain.plan import Decision, Plan, Why
from sidecar.domain.request import ChatRequest
from sidecar.limits.budgets import BudgetBook, SoftAction
from sidecar.limits.escalation import EscalationCaps


class Policy(Protocol):
    def plan(self, request: ChatRequest) -> Plan: ...


class LimitedPolicy:
    def __init__(
        self,
        inner: Policy,
        models: Iterable[ModelSpec],
        default_route: str,
        budgets: BudgetBook | None = None,
        caps: EscalationCaps | None = None,
    ) -> None:
        self._inner = inner
        self._models = tuple(models)
        self._default_route = default_route
        self._budgets = budgets
        self._caps = caps

    def plan(self, request: ChatRequest) -> Plan:
        route = request.hints.route or self._default_route
        ceilings = [] if request.hints.pinned_model else self._ceilings(request, route)
        return self._narrowed(request, ceilings) if ceilings else self._inner.plan(request)

    def _ceilings(self, request: ChatRequest, route: str) -> list[tuple[float, str]]:
        """(the best quality still allowed, why) for each limit that binds this request."""
        out = []
        if self._budgets is not None:
            for u in self._budgets.seen(request, route):
                if u.soft and u.budget.on_soft is SoftAction.CHEAPER:
                    b, where = u.budget, f" for {u.scope}" if u.scope else ""
                    why = f"budget: {b.name} {u.share:.0%} of its {b.window.label} limit used{where}"
                    out.append((b.cheaper_max_quality, why))
        seen = self._caps.seen(route) if self._caps is not None else None
        if seen is not None and seen.binding:
            cap = seen.cap
            why = (
                f"escalation cap: {seen.share:.0%} of route {route}'s requests this {cap.window.label} "
                f"went above quality {cap.above_quality:g} (cap {cap.max_share:.0%})"
            )
            out.append((cap.above_quality, why))
        return out

    def _narrowed(self, request: ChatRequest, ceilings: list[tuple[float, str]]) -> Plan:
        ceiling = min(c for c, _ in ceilings)
        because = "; ".join(why for _, why in ceilings)
        denied = frozenset(m.name for m in self._models if m.quality > ceiling)
        hints = request.hints
        try:
            plan = self._inner.plan(
                replace(request, hints=replace(hints, denied_models=hints.denied_models | denied))
            )
            note = Why("{}, models above quality {:g} excluded", because, ceiling)
        except NoCandidate:
            plan = self._inner.plan(request)
            note = Why(
                "{}, but no model at or below quality {:g} serves this request: the usual choice stands",
                because, ceiling,
            )  # fmt: skip
        # A decision of its own: the plan may be the decision cache's, whose renderings (shared by
        # its copies, PerDecision) must not hold this request's note, nor hand it a stale one.
        return replace(plan, reasons=(*plan.reasons, note), decision=Decision())
