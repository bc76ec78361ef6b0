"""SLA and tiers: per tier, the models allowed, a latency budget and a cost bound; a quality floor.

Latency is compared with what each model has been doing lately: the p95 of recent attempts once
there are enough of them, else the EWMA, else the registry's typical latency. The request's own
latency budget, if tighter than the tier's, wins. Cost is estimated from the input tokens, the
requested (or assumed) output and the registry's prices.
"""

from __future__ import annotations

from sidecar.domain.plan import Why
from sidecar.policy.draft import Draft
from sidecar.policy.specs import SlaSpec, TierSpec


class SlaStrategy:
    name = "sla"
    reads_content = False

    def __init__(self, spec: SlaSpec) -> None:
        self._spec = spec
        self._default = spec.tiers.get(spec.default_tier, TierSpec())

    def apply(self, draft: Draft) -> None:
        hints = draft.request.hints
        tier = self._spec.tiers.get(hints.user_tier)
        if tier is None:
            tier = self._default
            if hints.user_tier:
                draft.reasons.append(
                    f"tier {hints.user_tier!r} has no SLA; using {self._spec.default_tier!r}"
                )
        budget = tier.latency_budget_s
        if hints.latency_budget_s is not None and (budget is None or hints.latency_budget_s < budget):
            budget = hints.latency_budget_s
        max_cost = tier.max_cost_usd_nanos
        floor = self._spec.quality_floor
        allowed = tier.models
        tier_name = hints.user_tier if hints.user_tier in self._spec.tiers else self._spec.default_tier
        kept = []
        drop = draft.drop
        # Costs only when a bound needs them, in one pass (the same figures the plan reports).
        costs = draft.costs() if max_cost is not None else None
        for i, e in enumerate(draft.alive):
            if allowed is not None and e.name not in allowed:
                drop(e, Why("not allowed for tier {!r}", tier_name))
                continue
            if floor is not None and e.quality < floor:
                drop(e, Why("quality {:.2f} < route floor {:.2f}", e.quality, floor))
                continue
            if budget is not None:
                stats = e.stats
                latency = stats.plan_latency_s
                if latency is None:
                    latency = e.typical_latency_s
                if latency > budget:
                    kind = "latency" if stats.latency_p95_s is None else "p95"
                    drop(e, Why("{} {:.2f} s > budget {:.2f} s", kind, latency, budget))
                    continue
            if costs is not None and max_cost is not None and costs[i] > max_cost:
                drop(e, Why("estimated cost ${:.6f} > tier max ${:.6f}", costs[i] / 1e9, max_cost / 1e9))
                continue
            kept.append(e)
        draft.keep_only(kept)
