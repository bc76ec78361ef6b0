"""The learned router at run time: prompt -> P(the cheap model suffices) and each model's P(success).

A small linear model over sparse binary n-gram features, loaded once from a versioned JSON
artifact that `turnout train` writes (sidecar/policy/artifacts/, provenance in its README). Pure
Python on purpose: a prompt has ~50-300 distinct features, and a dict lookup per feature beats
building a numpy vector for that few (measured in benchmarks/learned_bench.py), so inference needs
no numpy and costs tens of microseconds. `features` is the single definition of what the model
sees; training imports it from here, so training and serving cannot drift apart.

Scoring: z = bias + sum(weight[f] for f in features) / sqrt(number of distinct features), and
P = 1 / (1 + exp(-z)). Features the artifact does not know contribute nothing but still count in
the normaliser, which is what lets training prune near-zero weights without moving predictions.
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.domain.request import ChatRequest, Role
from sidecar.policy.specs import Target

FORMAT = "turnout-router"
FORMAT_VERSION = 1
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DEFAULT_ARTIFACT = ARTIFACTS / "router-v1.json.gz"
PAIR_HEAD = "weak_suffices"


class ArtifactError(Exception):
    """The router artifact is missing, unreadable or of another format version."""


# --- features: shared by training and serving ------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """What `features` extracts; stored in the artifact so that serving repeats training exactly."""

    head_chars: int = 1536  # long prompts: the start and the end carry the task and the question
    tail_chars: int = 512
    bigrams: bool = True
    char_ngrams: tuple[int, ...] = ()  # n-gram lengths inside words, e.g. (4,); () = none

    def to_json(self) -> dict[str, Any]:
        return {
            "head_chars": self.head_chars,
            "tail_chars": self.tail_chars,
            "bigrams": self.bigrams,
            "char_ngrams": list(self.char_ngrams),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FeatureConfig:
        return cls(int(d["head_chars"]), int(d["tail_chars"]), bool(d["bigrams"]), tuple(d["char_ngrams"]))


_TOKEN = re.compile(r"\w+|[^\w\s]")


def features(text: str, config: FeatureConfig) -> set[str]:
    """The distinct features of a prompt: word unigrams (and bigrams, char n-grams), and its shape.

    Shape features bucket the length and line count on a log2 scale, so that "long" and "many
    lines" are learned like any word rather than hard-coded.
    """
    chars = len(text)
    lines = text.count("\n") + 1
    limit = config.head_chars + config.tail_chars
    if chars > limit:
        text = text[: config.head_chars] + "\n" + text[-config.tail_chars :]
    tokens = _TOKEN.findall(text.lower())
    out = set(tokens)
    out.add(f"#len:{chars.bit_length()}")
    out.add(f"#lines:{lines.bit_length()}")
    if config.bigrams and tokens:
        out.update([f"{a} {b}" for a, b in itertools.pairwise(tokens)])
    for n in config.char_ngrams:
        for word in set(tokens):
            if len(word) > n:  # shorter words are already unigrams
                padded = f"<{word}>"
                out.update([f"~{padded[i : i + n]}" for i in range(len(padded) - n + 1)])
    return out


def last_user_text(request: ChatRequest) -> str:
    """What the router reads: the last user message (its training prompts were single user turns)."""
    return next((m.text for m in reversed(request.messages) if m.role is Role.USER), "")


# --- the model ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Head:
    """One logistic output over the shared features."""

    bias: float
    weights: Mapping[str, float]

    def logit(self, feats: set[str]) -> float:
        get = self.weights.get
        total = 0.0
        for f in feats:
            w = get(f)
            if w is not None:
                total += w
        return self.bias + total / math.sqrt(len(feats) or 1)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """On held-out training data, routing to the weak model when P >= threshold gave these figures."""

    threshold: float
    strong_share: float  # share of prompts sent to the strong model
    quality: float  # mean quality as a fraction of the strong model's
    cost: float  # cost as a fraction of strong-only cost


def resolve_threshold(points: Sequence[CalibrationPoint], target: Target) -> float:
    """The threshold on P(weak suffices) that met `target` on held-out data, conservatively.

    Quality: the lowest threshold from which every higher one keeps quality >= target (the most
    weak-model calls that still keep the target). Cost: the highest threshold whose cost is
    within the target (the best quality the budget buys). 1.0 (never cheap first) and 0.0
    (always) are the fallbacks when no threshold meets the target.
    """
    ordered = sorted(points, key=lambda p: p.threshold)
    if target.kind == "quality":
        best = 1.0
        for p in reversed(ordered):
            if p.quality < target.value - 1e-9:
                break
            best = p.threshold
        return best
    within = [p.threshold for p in ordered if p.cost <= target.value + 1e-9]
    return max(within) if within else 0.0


class LearnedRouter:
    """A loaded artifact: the pair head, one success head per trained model, the calibration table."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"not a {FORMAT} v{FORMAT_VERSION} artifact "
                f"(format {doc.get('format')!r}, version {doc.get('format_version')!r})"
            )
        self.name: str = doc["name"]
        self.seed: int = doc["seed"]
        self.metadata = doc
        self.config = FeatureConfig.from_json(doc["features"])
        vocab: list[str] = doc["vocabulary"]
        self.heads = {
            name: Head(h["bias"], {f: w for f, w in zip(vocab, h["weights"], strict=True) if w})
            for name, h in doc["heads"].items()
        }
        self.strong: str = doc["pair"]["strong"]
        self.weak: str = doc["pair"]["weak"]
        self.models: tuple[str, ...] = tuple(doc["models"])
        self.calibration = tuple(CalibrationPoint(*p) for p in doc["calibration"]["points"])

    def features(self, text: str) -> set[str]:
        return features(text, self.config)

    def weak_suffices(self, text: str) -> float:
        return _sigmoid(self.heads[PAIR_HEAD].logit(self.features(text)))

    def success(self, text: str, models: Sequence[str] | None = None) -> dict[str, float]:
        """P(success) per trained model (all of them, or those named)."""
        feats = self.features(text)
        heads = self.heads
        return {m: _sigmoid(heads["success:" + m].logit(feats)) for m in (models or self.models)}

    def threshold_for(self, target: Target) -> float:
        return resolve_threshold(self.calibration, target)

    def point_at(self, threshold: float) -> CalibrationPoint | None:
        """The calibration row for a threshold of the table (None if it is not one)."""
        return next((p for p in self.calibration if abs(p.threshold - threshold) < 1e-9), None)


def read_artifact(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            doc: dict[str, Any] = json.load(f)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot read the router artifact: {exc}") from None
    return doc


@functools.cache
def load(path: Path = DEFAULT_ARTIFACT) -> LearnedRouter:
    """Load once per process (a config reload reuses it): never per request."""
    return LearnedRouter(read_artifact(path))


class LearnedClassifier:
    """The `learned` entry of the classifier slot: the shipped artifact's pair head."""

    name = "learned"

    def __init__(self, router: LearnedRouter | None = None) -> None:
        self.router = router or load()

    def predict(self, request: ChatRequest) -> float:
        return self.router.weak_suffices(last_user_text(request))

    def success(self, request: ChatRequest, models: Sequence[str]) -> dict[str, float]:
        return self.router.success(last_user_text(request), models)

    @property
    def models(self) -> tuple[str, ...]:
        return self.router.models

    def threshold_for(self, target: Target) -> float:
        return self.router.threshold_for(target)


class LearnedScorer:
    """The router for the offline evaluator (`turnout eval --router learned`), on raw prompts.

    Fits its PromptScorer (higher = more need for the strong model) and SuccessPredictor protocols.
    """

    name = "learned"

    def __init__(self, router: LearnedRouter | None = None) -> None:
        self.router = router or load()
        self.models = self.router.models

    def scores(self, prompts: Sequence[str]) -> list[float]:
        return [1.0 - self.router.weak_suffices(p) for p in prompts]

    def success(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        return [self.router.success(p) for p in prompts]
