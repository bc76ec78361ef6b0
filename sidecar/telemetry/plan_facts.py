"""A routing decision as telemetry records it: the decision metric and the routing span, from
what of the plan never changes, made once per decision.

The routing span's attributes, the decision metric's keys and the request log's decision object
depend only on the plan; a cached decision hands out copies of one decision (Plan.decision), so a
cached route pays for them once, not on every request.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from opentelemetry.trace import SpanContext, SpanKind

from sidecar.domain.plan import PerDecision, Plan
from sidecar.telemetry import names as n
from sidecar.telemetry.shared import Shared
from sidecar.telemetry.tally import series_key

MAX_LISTED = 10  # candidates named on a span or log line; the response's Decision lists them all


class PlanFacts:
    """What telemetry records of a plan that never changes: each part made once per plan, when
    first needed (an unsampled request never renders the span's reasons).

    Cached decisions hand out copies of one decision, so a cached route pays for this (reasons
    rendered, attribute sets built) once, not on every request.

    The renderings take the plan as an argument rather than keeping it: these facts are kept
    while the plan's decision lives, and a reference back to a plan would keep it alive for ever.
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


# Each decision's facts, kept while a plan of that decision lives (the decision cache holds it).
_facts: PerDecision[PlanFacts] = PerDecision()


def facts(plan: Plan) -> PlanFacts:
    """The plan's facts, made on first use and shared by the cached copies of its decision."""
    return _facts.get(plan) or _facts.put(plan, PlanFacts(plan))


def record_decision(
    s: Shared, plan: Plan, parent: SpanContext | Literal[False] | None, end: int, plan_facts: PlanFacts
) -> None:
    """The decision metric, and the routing span under `parent` (a recorded span's context;
    None: a trace of its own; False: none) ending at `end` (ns since the epoch)."""
    if s.metering:
        s.instruments.decision_duration.record(
            plan.decision_time_micros / 1e6, plan_facts.decision_attrs[plan.cache_hit]
        )
    if not s.tracing or parent is False:
        return
    start = end - plan.decision_time_micros * 1000
    attrs = {
        **plan_facts.span_attrs(plan),
        n.DECISION_TIME_US: plan.decision_time_micros,
        n.DECISION_CACHE_HIT: plan.cache_hit,
    }
    if plan.classifier_score is not None:
        attrs[n.CLASSIFIER_SCORE] = plan.classifier_score
    attrs.update(s.sdk.names.decision(plan.route, s.sdk.tally.version))
    name = plan_facts.span_name(plan)
    if isinstance(parent, SpanContext) and s.finished is not None:
        s.finished.record(name, SpanKind.INTERNAL, parent, s.finished.new_id(), start, end, attrs)
        return
    span = s.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, start_time=start)
    span.end(end_time=end)
