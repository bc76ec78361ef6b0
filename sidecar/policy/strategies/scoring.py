"""Scoring: rank the surviving models by a weighted cost / latency / quality / error score.

Each term is scaled to [0, 1] within the candidates of this decision, so the weights compare
like with like: cost and latency relative to the dearest and slowest candidate, quality as
1 - quality, errors as the live (EWMA) error rate. Lower is better. A model whose circuit
breaker is open is dropped: sending to it would fail at once. When every one is open, the one open
longest is kept (panic mode, as Envoy's): it is the likeliest to have recovered, and the executor
lets it through as its breaker's probe, where dropping them all would fail the request for sure.
"""

from __future__ import annotations

from sidecar.domain.plan import Why
from sidecar.policy.draft import Draft, Entry
from sidecar.policy.specs import ScoringSpec


class ScoringStrategy:
    name = "scoring"
    reads_content = False

    def __init__(self, spec: ScoringSpec) -> None:
        self._w = spec

    def apply(self, draft: Draft) -> None:
        alive = draft.alive
        if any(e.stats.breaker_open for e in alive):
            kept = [e for e in alive if not e.stats.breaker_open]
            if not kept:
                oldest = min(alive, key=_opened)
                kept = [oldest]
                draft.note(oldest, "breaker open longest: tried anyway")
                draft.reasons.append(Why("all breakers open: trying {}, open longest", oldest.name))
            for e in alive:
                if e not in kept:
                    draft.drop(e, "breaker open")
            draft.keep_only(kept)
            alive = kept
        costs = draft.costs()
        latencies = [e.latency_s for e in alive]
        top_cost = max(costs) or 1.0
        top_latency = max(latencies) or 1.0
        w = self._w
        wc, wl, wq, we = w.cost / top_cost, w.latency / top_latency, w.quality, w.errors
        scores = draft.scores
        scored = []
        for e, cost, latency in zip(alive, costs, latencies, strict=True):
            errors = e.stats.error_rate
            q = 1.0 - e.quality
            score = wc * cost + wl * latency + wq * q + we * errors
            scores[e.name] = (score, cost / top_cost, latency / top_latency, q, errors)
            scored.append((score, e))
        scored.sort(key=_first)
        draft.keep_only([e for _, e in scored])
        draft.reasons.append(Why("ranked by score: {}", _Ranking(scored)))


def _opened(entry: Entry) -> int:
    return entry.stats.breaker_opened


def _first(pair: tuple[float, Entry]) -> float:
    return pair[0]


class _Ranking:
    """Renders "a 0.123, b 0.456" when the reason is read."""

    __slots__ = ("_scored",)

    def __init__(self, scored: list[tuple[float, Entry]]) -> None:
        self._scored = scored

    def __format__(self, spec: str) -> str:
        return ", ".join(f"{e.name} {s:.3f}" for s, e in self._scored)
