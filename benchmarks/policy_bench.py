"""In-process decision time: the policy alone, per request, as p50 / p99 in microseconds.

Measured side by side in one run, so the ratios hold on a shared machine:
  - the full route (rules + capability + SLA + scoring over 50 models), uncached;
  - the same route answered from the decision cache;
  - each strategy alone over the same 50 models (the capability check always runs, so it is the
    baseline the others are compared with), the classifiers included: the shipped learned router
    (reads the prompt) and the length heuristic.
GC stays on, as in production.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.stats import summary_us
from benchmarks.workload import config, requests, warmed_health
from sidecar.domain.errors import TurnoutError
from sidecar.policy.build import build_engine
from sidecar.policy.cache import DecisionCache
from sidecar.policy.engine import Engine
from sidecar.policy.specs import ClassifierSpec, RouteSpec


def _time(engine: Engine, calls: int) -> dict[str, Any]:
    reqs = requests()
    for r in reqs * 50:  # warm up: tokenizer memo, caches, code paths
        _plan(engine, r)
    samples = []
    reported = []
    for i in range(calls):
        r = reqs[i % len(reqs)]
        t0 = time.perf_counter_ns()
        plan = _plan(engine, r)
        samples.append((time.perf_counter_ns() - t0) / 1000)
        if plan is not None:
            reported.append(plan.decision_time_micros)
    return {
        **summary_us(samples),
        "reported_decision_time_p50_us": sorted(reported)[len(reported) // 2] if reported else None,
    }


def _plan(engine: Engine, request: Any) -> Any:
    try:
        return engine.plan(request)
    except TurnoutError:  # a request no model can take is a decision too
        return None


def run(quick: bool) -> dict[str, Any]:
    calls = 2_000 if quick else 20_000
    cfg = config()
    health = warmed_health(cfg.registry)
    route = cfg.routes["bench"]

    def engine(strategies: tuple[Any, ...] | None = None, cache: DecisionCache | None = None) -> Engine:
        spec = route if strategies is None else RouteSpec("bench", route.models, strategies)
        return build_engine({"bench": spec}, "bench", cfg.registry, health, cache)

    rules, capability, sla, scoring = route.strategies
    learned, length = ClassifierSpec("learned"), ClassifierSpec("length")
    results: dict[str, Any] = {
        "models": len(cfg.registry.models),
        "requests": len(requests()),
        "route": "rules>capability>sla>scoring",
        "full_uncached": _time(engine(), calls),
        "full_cached": _time(engine(cache=DecisionCache()), calls),
        "per_strategy": {
            "capability (baseline)": _time(engine((capability,)), calls),
            "rules + capability": _time(engine((rules, capability)), calls),
            "capability + sla": _time(engine((capability, sla)), calls),
            "capability + scoring": _time(engine((capability, scoring)), calls),
            "capability + classifier (learned)": _time(engine((capability, learned)), calls),
            "capability + classifier (length)": _time(engine((capability, length)), calls),
        },
    }
    base = results["per_strategy"]["capability (baseline)"]["p50_us"]
    results["per_strategy_ratio_to_baseline_p50"] = {
        k: round(v["p50_us"] / base, 2) for k, v in results["per_strategy"].items()
    }
    return results
