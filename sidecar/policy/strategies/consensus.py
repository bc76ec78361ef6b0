"""Consensus cascade: the cheapest survivors answer at once, and their answer stands if they agree.

Stage one is the `voters` cheapest survivors, all asked in parallel (no fallback among them: each
is a vote). The executor accepts the answer `need` of them agree on (compared as the route's
`agree` kind says: sidecar/execution/agreement.py) and otherwise escalates to stage two: the other
survivors, best quality first. Agreement is the signal a prompt-only router lacks: it looks at the
answers. Measured on RouterBench's recorded answers in docs/decisions/050-answer-aware-cascades.md.
"""

from __future__ import annotations

from sidecar.domain.plan import Consensus, Why
from sidecar.policy.draft import Draft
from sidecar.policy.specs import ConsensusSpec


class ConsensusStrategy:
    name = "consensus"
    reads_content = False

    def __init__(self, spec: ConsensusSpec) -> None:
        self._spec = spec

    def apply(self, draft: Draft) -> None:
        spec = self._spec
        if len(draft.alive) < spec.voters + 1:
            draft.reasons.append(
                Why(
                    "consensus: {} models left, {} voters and an escalation needed: skipped",
                    str(len(draft.alive)),
                    str(spec.voters),
                )
            )
            return
        by_cost = sorted(draft.alive, key=draft.cost)
        voters = by_cost[: spec.voters]
        rest = sorted(by_cost[spec.voters :], key=lambda e: -e.quality)
        draft.stages = [voters, rest]
        draft.escalate_on = spec.escalate_on
        draft.consensus = Consensus(spec.need, spec.agree)
        draft.reasons.append(
            Why(
                "consensus: {} of {} must agree on the {}, else {}",
                str(spec.need),
                " + ".join(e.name for e in voters),
                spec.agree,
                rest[0].name,
            )
        )
