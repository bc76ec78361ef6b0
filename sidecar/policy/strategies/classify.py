"""Classifier: a score in [0, 1] that a cheap model suffices steers cheap or strong models first.

At or above the route's threshold the candidates are ordered cheapest first; below it, best
quality first (cheap models stay as fallbacks). The score is reported in the decision. A route
may state a target (`target: {quality: 0.95}` or `{cost: 0.3}`) instead of a threshold: it is
resolved here, once per config load, from the classifier's calibration table (measured on
held-out data by `turnout train`), and the reason names the target.

A classifier that can tell a prompt unlike its training data (`learned`) does not guess on one:
by the route's `unfamiliar` setting the length heuristic decides instead (its score read on the
classifier's own scale, so the threshold keeps its meaning), or the best model goes first, and
the decision says which and why.
"""

from __future__ import annotations

from sidecar.domain.plan import Why
from sidecar.policy.classifier import Calibrated, Classifier, KnowsItsDomain, LengthClassifier
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
        self._domain: KnowsItsDomain | None = None
        if isinstance(classifier, KnowsItsDomain) and spec.unfamiliar != "ignore":
            self._domain = classifier
        self._unfamiliar = spec.unfamiliar
        self._length = LengthClassifier()

    def apply(self, draft: Draft) -> None:
        name = self._classifier.name
        if self._domain is None:
            p = self._classifier.predict(draft.request)
        else:
            judged = self._domain.assess(draft.request)
            p = judged.p
            if not judged.familiar:
                mapped = self._domain.on_own_scale(self._length.predict(draft.request))
                strong = self._unfamiliar == "strong" or mapped is None
                draft.reasons.append(
                    Why(
                        "classifier {!r}: prompt unlike its training data ({:.0%} of its words known,"
                        " below {:.0%}): {}",
                        name,
                        judged.coverage,
                        judged.floor,
                        "best quality first" if strong else "the length heuristic decides",
                    )
                )
                if strong:
                    draft.classifier_score = p
                    draft.keep_only(sorted(draft.alive, key=lambda e: -e.quality))
                    return
                assert mapped is not None
                p, name = mapped, f"{name} (length)"
        draft.classifier_score = p
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
