"""The slot for a difficulty classifier: P(a cheap model suffices) in [0, 1], per request.

Any object with `name` and `predict(request) -> float` fits the slot. Two optional abilities
widen what a route may ask of it: `Calibrated` (turn a quality or cost target into a threshold,
from a table measured on held-out data) and `SuccessModel` (each trained model's chance of
success, for choosing among N models). The built-in `length` classifier is a transparent
heuristic baseline; `learned` is the trained router (sidecar/policy/learned.py), which has both
abilities. Classifiers are built once per config load, never per request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from sidecar.domain.request import ChatRequest, Role
from sidecar.policy.learned import Assessment, LearnedClassifier
from sidecar.policy.specs import Target


class Classifier(Protocol):
    name: str

    def predict(self, request: ChatRequest) -> float: ...


@runtime_checkable
class Calibrated(Protocol):
    def threshold_for(self, target: Target) -> float: ...


@runtime_checkable
class SuccessModel(Protocol):
    name: str

    @property
    def models(self) -> tuple[str, ...]: ...  # the models it predicts for (its training names)

    def success(self, request: ChatRequest, models: Sequence[str]) -> dict[str, float]: ...


@runtime_checkable
class KnowsItsDomain(Protocol):
    """A classifier that can tell a prompt unlike its training data (see learned.Familiarity)."""

    def assess(self, request: ChatRequest) -> Assessment: ...

    def on_own_scale(self, length_p: float) -> float | None: ...

    def assess_success(
        self, request: ChatRequest, models: Sequence[str]
    ) -> tuple[dict[str, float], Assessment]: ...


# Cues of a hard request, looked for in the start and end of the last user message (where the
# instruction is), lower-cased: plain substring tests first, the word-boundary regex only when one
# hits, so a long document costs microseconds rather than a full regex scan's milliseconds.
_FENCE = "```"
_WORDS = ("prove", "step by step", "derive", "optimise", "optimize", "debug", "refactor")  # whole words only
_CUES = (_FENCE, *_WORDS)
_HARD = re.compile(re.escape(_FENCE) + r"|\b(?:" + "|".join(map(re.escape, _WORDS)) + r")\b")
_HEAD_CHARS, _TAIL_CHARS = 1536, 512


def _has_hard_cue(text: str) -> bool:
    if len(text) > _HEAD_CHARS + _TAIL_CHARS:
        text = text[:_HEAD_CHARS] + "\n" + text[-_TAIL_CHARS:]
    low = text.lower()
    return any(c in low for c in _CUES) and _HARD.search(low) is not None


class LengthClassifier:
    """Longer prompts, and prompts with code or reasoning cues, are less likely to suit a cheap model.

    The cues are read in the first 1,536 and last 512 characters of the last user message."""

    name = "length"

    def __init__(self, midpoint_chars: int = 1500, steepness: float = 1.5) -> None:
        self._log_mid = math.log(midpoint_chars)
        self._k = steepness

    def predict(self, request: ChatRequest) -> float:
        text = next((m.text for m in reversed(request.messages) if m.role is Role.USER), "")
        chars = max(1, sum(len(m.text) for m in request.messages))
        p = 1.0 / (1.0 + math.exp(self._k * (math.log(chars) - self._log_mid)))
        if _has_hard_cue(text):
            p *= 0.5
        return p


# `learned` reads its artifact when first built (once per process; see learned.load).
BUILTIN: Mapping[str, Callable[[], Classifier]] = {"length": LengthClassifier, "learned": LearnedClassifier}
