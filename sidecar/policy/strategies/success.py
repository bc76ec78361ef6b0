"""Predicted success: choose among N models by each one's predicted chance of success and its price.

The route maps its registry models to the models the classifier was trained on, by name:

    - predicted_success:
        models:
          gpt-4o: gpt-4-1106-preview
          gpt-4o-mini: gpt-3.5-turbo-1106
          mixtral-8x7b: mistralai/mixtral-8x7b-chat
        quality: 0.95

Registry names and training names differ (a registry model is a deployment; a training name is
whose answers the labels scored), so the mapping is explicit and checked against the artifact
when the config is read; map a model to the trained model closest to it in quality.

Order: the cheapest mapped candidate whose predicted success is at least `quality` times the best
candidate's goes first, then the other candidates that reach that bar by price, then the mapped
ones below it by predicted success, then the unmapped ones by registry quality (fallbacks only:
the classifier knows nothing about them). Price is the draft's cost estimate for this request.

A prompt unlike the classifier's training data (see learned.Familiarity) leaves the route's order
as it is: its predictions there are guesses, and the decision says so.
"""

from __future__ import annotations

from sidecar.domain.plan import Why
from sidecar.policy.classifier import KnowsItsDomain, SuccessModel
from sidecar.policy.draft import Draft
from sidecar.policy.specs import SuccessSpec


class SuccessStrategy:
    name = "predicted_success"
    reads_content = True

    def __init__(self, spec: SuccessSpec, model: SuccessModel) -> None:
        self._map = dict(spec.models)
        self._quality = spec.quality
        self._model = model
        self._trained = tuple(sorted(set(self._map.values())))

    def apply(self, draft: Draft) -> None:
        mapped = [e for e in draft.alive if e.name in self._map]
        unmapped = sorted((e for e in draft.alive if e.name not in self._map), key=lambda e: -e.quality)
        if not mapped:
            draft.reasons.append(
                f"predicted success ({self._model.name}): no candidate is mapped; order kept"
            )
            return
        if isinstance(self._model, KnowsItsDomain):
            p, judged = self._model.assess_success(draft.request, self._trained)
            if not judged.familiar:
                draft.reasons.append(
                    Why(
                        "predicted success ({}): prompt unlike its training data ({:.0%} of its words"
                        " known, below {:.0%}); order kept",
                        self._model.name,
                        judged.coverage,
                        judged.floor,
                    )
                )
                return
        else:
            p = self._model.success(draft.request, self._trained)
        chance = {e.name: p[self._map[e.name]] for e in mapped}
        bar = self._quality * max(chance.values())
        good = sorted((e for e in mapped if chance[e.name] >= bar), key=draft.cost)
        weak = sorted((e for e in mapped if chance[e.name] < bar), key=lambda e: -chance[e.name])
        draft.keep_only(good + weak + unmapped)
        draft.classifier_score = chance[good[0].name]
        draft.reasons.append(
            Why(
                "predicted success ({}): {}; cheapest at >= {:.2f} ({:g} x best) first: {}",
                self._model.name,
                _Chances([(e.name, chance[e.name]) for e in mapped]),
                bar,
                self._quality,
                good[0].name,
            )
        )


class _Chances:
    """Rendered only when the decision is read (see domain.plan.Why)."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, float]]) -> None:
        self.items = items

    def __str__(self) -> str:
        return ", ".join(f"{name} {p:.2f}" for name, p in self.items)
