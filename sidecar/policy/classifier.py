"""The slot for a learned difficulty classifier: P(a cheap model suffices) in [0, 1], per request.

Any object with `name` and `predict(request) -> float` fits the slot. The built-in `length`
classifier is a transparent heuristic baseline, not a learned model: short prompts without code
or step-by-step reasoning cues are likely to be handled by a cheap model. The learned router
(a later issue) registers under its own name and replaces it where a route asks for it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Protocol

from sidecar.domain.request import ChatRequest, Role


class Classifier(Protocol):
    name: str

    def predict(self, request: ChatRequest) -> float: ...


_HARD = re.compile(r"```|\bprove\b|\bstep by step\b|\bderive\b|\boptimi[sz]e\b|\bdebug\b|\brefactor\b", re.I)


class LengthClassifier:
    """Longer prompts, and prompts with code or reasoning cues, are less likely to suit a cheap model."""

    name = "length"

    def __init__(self, midpoint_chars: int = 1500, steepness: float = 1.5) -> None:
        self._log_mid = math.log(midpoint_chars)
        self._k = steepness

    def predict(self, request: ChatRequest) -> float:
        text = next((m.text for m in reversed(request.messages) if m.role is Role.USER), "")
        chars = max(1, sum(len(m.text) for m in request.messages))
        p = 1.0 / (1.0 + math.exp(self._k * (math.log(chars) - self._log_mid)))
        if _HARD.search(text):
            p *= 0.5
        return p


BUILTIN: Mapping[str, Callable[[], Classifier]] = {"length": LengthClassifier}
