"""Classifier: a score in [0, 1] that a cheap model suffices steers cheap or strong models first.

At or above the route's threshold the candidates are ordered cheapest first; below it, best
quality first (cheap models stay as fallbacks). The score is reported in the decision. A route
may state a target (`target: {quality: 0.95}` or `{cost: 0.3}`) instead of a threshold: it is
resolved here, once per config load, from the classifier's calibration table (measured on
held-out data by `turnout train`), and the reason names the target.
"""

from __future__ import annotations

from sidecar.domain.plan import Why
from sidecar.policy.classifier import Calibrated, Classifier
from sidecar.policy.draft import Draft
from sidecar.policy.specs import ClassifierSpec


class ClassifierStrategy:
    name = "classifier"
    reads_content = True

    def __init__(self, spec: ClassifierSpec, classifier: Classifier) -> None:
        self._threshold = spec.threshold
        if spec.target is not None:
            if not isinstance(classifier, Calibrated):
                raise ValueError(f"classifier {classifier.name!r} has no calibration table for a target")
            self._threshold = classifier.threshold_for(spec.target)
        self._classifier = classifier
        self._why = f"the {spec.target} target's threshold" if spec.target else "threshold"

    def apply(self, draft: Draft) -> None:
        p = self._classifier.predict(draft.request)
        draft.classifier_score = p
        name = self._classifier.name
        if p >= self._threshold:
            draft.keep_only(sorted(draft.alive, key=draft.cost))
            draft.reasons.append(
                Why(
                    "classifier {!r}: {:.2f} >= {:.2f} ({}), cheapest first",
                    name,
                    p,
                    self._threshold,
                    self._why,
                )
            )
        else:
            draft.keep_only(sorted(draft.alive, key=lambda e: -e.quality))
            draft.reasons.append(
                Why(
                    "classifier {!r}: {:.2f} < {:.2f} ({}), best quality first",
                    name,
                    p,
                    self._threshold,
                    self._why,
                )
            )
