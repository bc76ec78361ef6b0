"""The router plug-in point for offline evaluation (PromptScorer), the built-in baselines, and their loader.

A router under evaluation is anything with a `name` and `scores(prompts)`: one number per prompt,
higher = more need for the strong model. The evaluation sweeps every threshold over those numbers,
so only their order matters, not their scale. A router that predicts, per prompt, how likely each
of N models is to answer well implements the richer `SuccessPredictor` and gets the N-model
cost/quality frontier as well.

`load_scorer(spec)` resolves a command-line spec, in this order:

    a name in SCORERS      `length`, `random` (and `learned` once the learned router registers)
    builtin:<name>         a sidecar classifier (sidecar.policy.classifier.BUILTIN), e.g.
                           `builtin:length`: the same heuristic the sidecar runs when serving
    <module>:<attr>        an object, class or zero-argument factory that yields a PromptScorer

Standard library only, so a router can implement these protocols without the `eval` extra.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.policy.classifier import BUILTIN, Classifier


@runtime_checkable
class PromptScorer(Protocol):
    name: str

    def scores(self, prompts: Sequence[str]) -> list[float]: ...  # higher = more need for the strong model


@runtime_checkable
class SuccessPredictor(Protocol):
    name: str
    models: tuple[str, ...]

    def success(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        """Per prompt, per model: P(that model's answer is good)."""
        ...


_R = TypeVar("_R")


class ScorerError(Exception):
    """A router spec that cannot be resolved (unknown name, import failure, wrong shape)."""


class LengthScorer:
    """The prompt-length baseline of the routing literature: longer prompts go to the strong model."""

    name = "length"

    def scores(self, prompts: Sequence[str]) -> list[float]:
        return [float(len(p)) for p in prompts]


class RandomScorer:
    """Uniform random scores: routes a random share to the strong model; expected APGR 0.5."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = f"random(seed={seed})"

    def scores(self, prompts: Sequence[str]) -> list[float]:
        rng = random.Random(self.seed)  # a fresh generator per call: the same prompts, the same scores
        return [rng.random() for _ in prompts]


class OracleScorer:
    """Knows the outcomes: scores each row by how much the strong model beats the weak one on it.

    score = quality(strong) - quality(weak), so every threshold sends the largest gains first; at
    threshold 0 exactly the rows where the weak model is worse go to the strong model (ties stay
    with the weak one), and rows where the weak model is better go last. With 0/1 scores that is
    1 / 0 / -1. It can only score the rows it was built from, in their order.
    """

    name = "oracle"

    def __init__(self, prompts: Sequence[str], strong: Sequence[float], weak: Sequence[float]) -> None:
        if not len(prompts) == len(strong) == len(weak):
            raise ValueError("prompts, strong and weak must have one entry per row")
        self._prompts = tuple(prompts)
        self._gain = [s - w for s, w in zip(strong, weak, strict=True)]

    def scores(self, prompts: Sequence[str]) -> list[float]:
        if tuple(prompts) != self._prompts:
            raise ValueError("the oracle scores only the rows of the dataset it was built from, in order")
        return list(self._gain)


class ClassifierScorer:
    """A sidecar classifier as a scorer: each prompt becomes one user message; score = 1 - P(cheap ok)."""

    def __init__(self, classifier: Classifier) -> None:
        self._classifier = classifier
        self.name = f"builtin:{classifier.name}"

    def scores(self, prompts: Sequence[str]) -> list[float]:
        return [1.0 - self._classifier.predict(_as_request(p)) for p in prompts]


class FixedScorer:
    """Test double: a score per known prompt (KeyError for any other)."""

    def __init__(self, scores: Mapping[str, float], name: str = "fixed") -> None:
        self._scores = dict(scores)
        self.name = name

    def scores(self, prompts: Sequence[str]) -> list[float]:
        return [self._scores[p] for p in prompts]


class FixedPredictor:
    """Test double: P(success) per model for each known prompt."""

    def __init__(self, success: Mapping[str, Mapping[str, float]], name: str = "fixed") -> None:
        self._success = {p: dict(row) for p, row in success.items()}
        self.models = tuple(next(iter(self._success.values()), {}))
        self.name = name

    def success(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        return [dict(self._success[p]) for p in prompts]


def _as_request(prompt: str) -> ChatRequest:
    return ChatRequest(messages=(Message(Role.USER, (TextPart(prompt),)),))


# Routers known by name. An entry is a zero-argument factory, so registering costs nothing until the
# router is asked for: a router with heavy dependencies imports them inside its factory.
SCORERS: dict[str, Callable[[], PromptScorer]] = {
    "length": LengthScorer,
    "random": RandomScorer,
    # The shipped learned router (sidecar/policy/artifacts): imported only when asked for.
    "learned": lambda: _learned(),
}


def _learned() -> PromptScorer:
    """The shipped router as a route runs it by default: an unfamiliar prompt scored by length."""
    learned = importlib.import_module("sidecar.policy.learned")
    length = importlib.import_module("sidecar.policy.classifier").LengthClassifier()
    scorer: PromptScorer = learned.LearnedScorer(unfamiliar=lambda text: length.predict(_as_request(text)))
    return scorer


DEFAULT_ROUTER_FALLBACK = "builtin:length"


def default_router() -> str:
    """`learned` once the learned router has registered, else the sidecar's own built-in heuristic."""
    return "learned" if "learned" in SCORERS else DEFAULT_ROUTER_FALLBACK


def load_scorer(spec: str, *, seed: int | None = None) -> PromptScorer | SuccessPredictor:
    """Resolve a router spec (see the module docstring). `seed` reseeds `random`."""
    if spec == "random" and seed is not None:
        return RandomScorer(seed)
    if spec in SCORERS:
        return _construct(spec, SCORERS[spec])
    if spec.startswith("builtin:"):
        name = spec.removeprefix("builtin:")
        if name not in BUILTIN:
            raise ScorerError(f"unknown built-in classifier {name!r} (known: {', '.join(sorted(BUILTIN))})")
        return ClassifierScorer(_construct(spec, BUILTIN[name]))
    if ":" in spec:
        return _import_entry_point(spec)
    known = ", ".join([*sorted(SCORERS), *(f"builtin:{n}" for n in sorted(BUILTIN)), "<module>:<attr>"])
    raise ScorerError(f"unknown router {spec!r} (known: {known})")


def _import_entry_point(spec: str) -> PromptScorer | SuccessPredictor:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ScorerError(f"router {spec!r}: cannot import {module_name}: {exc}") from None
    try:
        target: object = getattr(module, attr)
    except AttributeError:
        raise ScorerError(f"router {spec!r}: {module_name} has no attribute {attr!r}") from None
    if not _is_router(target) and callable(target):
        target = _construct(spec, target)  # a class or a factory
    if not _is_router(target):
        raise ScorerError(
            f"router {spec!r}: {type(target).__name__} has neither scores(prompts) nor success(prompts) "
            "and a name"
        )
    assert isinstance(target, PromptScorer | SuccessPredictor)
    return target


def _construct(spec: str, factory: Callable[[], _R]) -> _R:
    """Build a router; its own failure (a missing model artifact, say) becomes one ScorerError line."""
    try:
        return factory()
    except Exception as exc:  # foreign code at the edge: any failure of it means "cannot build"
        raise ScorerError(f"router {spec!r} cannot be built: {type(exc).__name__}: {exc}") from exc


def _is_router(obj: object) -> bool:
    # runtime_checkable isinstance also accepts a class whose instances would match; exclude types.
    return not isinstance(obj, type) and isinstance(obj, PromptScorer | SuccessPredictor)
