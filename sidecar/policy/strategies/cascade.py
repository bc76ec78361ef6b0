"""Cascade: split the survivors into stages, cheapest acceptable model first, stronger ones after.

Stage one is the cheapest survivor. Each next stage is the cheapest survivor at least
`min_quality_gain` better than the stage before, up to `max_stages`. Survivors that start no stage
follow as fallbacks in the last stage. The executor escalates when a stage fails or its output is
rejected for one of the `escalate_on` reasons.
"""

from __future__ import annotations

from sidecar.policy.draft import Draft, Entry
from sidecar.policy.specs import CascadeSpec


class CascadeStrategy:
    name = "cascade"
    reads_content = False

    def __init__(self, spec: CascadeSpec) -> None:
        self._spec = spec

    def apply(self, draft: Draft) -> None:
        if len(draft.alive) < 2:
            return
        by_cost = sorted(draft.alive, key=draft.cost)
        stages: list[list[Entry]] = [[by_cost[0]]]
        quality = by_cost[0].quality
        for e in by_cost[1:]:
            if len(stages) == self._spec.max_stages:
                break
            if e.quality >= quality + self._spec.min_quality_gain:
                stages.append([e])
                quality = e.quality
        leaders = {s[0].name for s in stages}
        stages[-1].extend(e for e in draft.alive if e.name not in leaders)
        draft.stages = stages
        draft.escalate_on = self._spec.escalate_on
        draft.reasons.append("cascade: " + " -> ".join(s[0].name for s in stages))
