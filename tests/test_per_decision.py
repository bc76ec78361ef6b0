"""PerDecision: one rendering per decision, shared by a plan's cached copies, gone with them."""

from __future__ import annotations

import gc
from dataclasses import replace

from sidecar.domain.plan import Candidate, PerDecision, Plan, Stage
from tests.factories import model


def test_a_rendering_is_shared_by_cached_copies_and_dropped_with_the_decision():
    cache: PerDecision[str] = PerDecision()
    plan = Plan(route="r", strategy="rules", stages=(Stage((Candidate(model("m1")),)),))
    copy = replace(plan, cache_hit=True, decision_time_micros=3)
    assert cache.get(plan) is None
    assert cache.put(plan, "rendered") == "rendered"
    assert cache.get(copy) == "rendered"  # the decision cache's copy is the same decision
    other = Plan(route="r", strategy="rules", stages=plan.stages)
    assert cache.get(other) is None  # an equal plan decided again is another decision
    del plan, copy
    gc.collect()
    assert len(cache) == 0
