"""The request's own hard constraints (allow and deny lists, cost bound, quality floor), on every route."""

from __future__ import annotations

from sidecar.domain.plan import Why
from sidecar.policy.draft import Draft


class HintConstraints:
    name = "hints"
    reads_content = False

    def apply(self, draft: Draft) -> None:
        h = draft.request.hints
        if not (
            h.allowed_models
            or h.denied_models
            or h.allowed_providers
            or h.denied_providers
            or h.max_cost_usd_nanos
            or h.quality_floor is not None
        ):
            return
        kept = []
        for e in draft.alive:
            why: str | Why = ""
            if e.name in h.denied_models:
                why = "denied by hints.denied_models"
            elif e.provider in h.denied_providers:
                why = Why("provider {} denied by hints.denied_providers", e.provider)
            elif h.allowed_models and e.name not in h.allowed_models:
                why = "not in hints.allowed_models"
            elif h.allowed_providers and e.provider not in h.allowed_providers:
                why = Why("provider {} not in hints.allowed_providers", e.provider)
            elif h.quality_floor is not None and e.quality < h.quality_floor:
                why = Why("quality {:.2f} < hints.quality_floor {:.2f}", e.quality, h.quality_floor)
            elif h.max_cost_usd_nanos:
                cost = draft.cost(e)
                if cost > h.max_cost_usd_nanos:
                    limit = h.max_cost_usd_nanos / 1e9
                    why = Why("estimated cost ${:.6f} > hints.max_cost ${:.6f}", cost / 1e9, limit)
            if why:
                draft.drop(e, why)
            else:
                kept.append(e)
        draft.keep_only(kept)
