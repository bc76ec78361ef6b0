"""What telemetry records of a routing plan that never changes, made once per plan.

The routing span's attributes, the decision metric's keys and the request log's decision object
depend only on the plan; a cached decision hands out copies that share one memo, so a cached
route pays for them once, not on every request.
"""

from __future__ import annotations

import json
from typing import Any

from sidecar.domain.plan import Plan
from sidecar.telemetry import names as n
from sidecar.telemetry.tally import series_key

MAX_LISTED = 10  # candidates named on a span or log line; the response's Decision lists them all


class PlanFacts:
    """What telemetry records of a plan that never changes: each part made once per plan, when
    first needed (an unsampled request never renders the span's reasons).

    Cached decisions hand out copies that share the plan's memo, so a cached route pays for
    this (reasons rendered, attribute sets built) once, not on every request.

    The renderings take the plan as an argument rather than keeping it: these facts live in the
    plan's memo, and a reference back would make every plan a reference cycle, freed only by a
    full garbage collection (docs/decisions/002-soak.md).
    """

    __slots__ = ("_log_decision", "_route_json", "_span_attrs", "choice", "decision_attrs")

    def __init__(self, plan: Plan) -> None:
        self.choice = plan.choice.model.name if plan.stages and plan.stages[0].candidates else ""
        self.decision_attrs = {
            hit: series_key(
                {
                    n.ROUTE: plan.route,
                    n.STRATEGY: plan.strategy,
                    n.DECISION_MODEL: self.choice,
                    n.DECISION_CACHE_HIT: hit,
                }
            )
            for hit in (False, True)
        }
        self._span_attrs: dict[str, Any] | None = None
        self._log_decision: tuple[str, str] | None = None
        self._route_json = ""

    @staticmethod
    def span_name(plan: Plan) -> str:
        return f"route {plan.route}"

    def span_attrs(self, plan: Plan) -> dict[str, Any]:
        if self._span_attrs is None:
            names = [c.model.name for c in plan.candidates]
            self._span_attrs = {
                n.ROUTE: plan.route,
                n.STRATEGY: plan.strategy,
                n.DECISION_MODEL: self.choice,
                # Strings, not arrays: the SDK validates every element of an array attribute, on
                # every span; one joined string costs one check (and exports smaller).
                n.DECISION_CANDIDATES: ", ".join(names[:MAX_LISTED]),
                n.DECISION_CANDIDATE_COUNT: len(names),
                n.DECISION_DROPPED: len(plan.dropped),
                n.DECISION_REASONS: "; ".join(str(r) for r in plan.reasons),
                n.DECISION_TRUNCATED: plan.truncation is not None,
            }
        return self._span_attrs

    def log_decision(self, plan: Plan) -> tuple[str, str]:
        """The log line's decision object without its closing brace, as (not a cache hit, a cache
        hit): the line appends the per-request facts."""
        if self._log_decision is None:
            names = [c.model.name for c in plan.candidates[:MAX_LISTED]]
            fixed = {"strategy": plan.strategy, "model": self.choice, "candidates": names}
            head = json.dumps(fixed, separators=(",", ":"))[:-1]
            self._log_decision = (head + ',"cache_hit":false', head + ',"cache_hit":true')
        return self._log_decision

    def route_json(self, plan: Plan) -> str:
        """The route's name as a JSON string."""
        if not self._route_json:
            self._route_json = json.dumps(plan.route)
        return self._route_json


def facts(plan: Plan) -> PlanFacts:
    """The plan's facts, made on first use and kept in the plan's memo (shared by cached copies)."""
    found: PlanFacts | None = plan.memo.get("telemetry")
    if found is None:
        found = plan.memo["telemetry"] = PlanFacts(plan)
    return found
