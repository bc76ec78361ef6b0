"""Classifier: a score in [0, 1] that a cheap model suffices steers cheap or strong models first.

At or above the route's threshold the candidates are ordered cheapest first; below it, best
quality first (cheap models stay as fallbacks). The score is reported in the decision.
"""

from __future__ import annotations

from sidecar.policy.classifier import Classifier
from sidecar.policy.draft import Draft
from sidecar.policy.specs import ClassifierSpec


class ClassifierStrategy:
    name = "classifier"
    reads_content = True

    def __init__(self, spec: ClassifierSpec, classifier: Classifier) -> None:
        self._threshold = spec.threshold
        self._classifier = classifier

    def apply(self, draft: Draft) -> None:
        p = self._classifier.predict(draft.request)
        draft.classifier_score = p
        name = self._classifier.name
        if p >= self._threshold:
            draft.keep_only(sorted(draft.alive, key=draft.cost))
            draft.reasons.append(f"classifier {name!r}: {p:.2f} >= {self._threshold:.2f}, cheapest first")
        else:
            draft.keep_only(sorted(draft.alive, key=lambda e: -e.quality))
            draft.reasons.append(f"classifier {name!r}: {p:.2f} < {self._threshold:.2f}, best quality first")
