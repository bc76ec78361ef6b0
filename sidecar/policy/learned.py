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

Familiarity: a prompt whose words and bigrams the artifact mostly does not know is unlike its
training prompts, and its score is a guess (docs/decisions/059 measured it below random there).
The artifact carries the coverage below which a prompt counts as unfamiliar (a low quantile of
the training prompts' own coverage) and two score distributions that let a strategy read the
length heuristic on this model's scale instead, so a route's threshold keeps its meaning.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
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


def coverage(feats: AbstractSet[str], known: AbstractSet[str]) -> float:
    """The share of a prompt's word and bigram features the model knows (shape features aside).

    0.0 for a prompt without words: nothing in it is evidence the model has seen its like."""
    words = 0
    hits = 0
    for f in feats:
        if f[0] != "#":
            words += 1
            hits += f in known
    return hits / words if words else 0.0


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


@dataclass(frozen=True, slots=True)
class Familiarity:
    """Where the training prompts were, for telling an unlike prompt (see the module docstring)."""

    min_coverage: float  # below this a prompt is unfamiliar
    quantile: float  # the share of training prompts below min_coverage
    # P(weak suffices) out of fold, and the length heuristic's P, on the calibration rows, each at
    # evenly spaced quantiles (0, 1/n, ..., 1): the same rank maps one score onto the other.
    pair_quantiles: tuple[float, ...]
    length_quantiles: tuple[float, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "min_coverage": self.min_coverage,
            "quantile": self.quantile,
            "pair_quantiles": list(self.pair_quantiles),
            "length_quantiles": list(self.length_quantiles),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Familiarity:
        pair = tuple(float(v) for v in d["pair_quantiles"])
        length = tuple(float(v) for v in d["length_quantiles"])
        if len(pair) != len(length) or len(pair) < 2:
            raise ArtifactError(
                "familiarity: pair_quantiles and length_quantiles must be equal and >= 2 long"
            )
        return cls(float(d["min_coverage"]), float(d["quantile"]), pair, length)

    def on_pair_scale(self, length_p: float) -> float:
        """The length heuristic's P read as the pair head's P of the same rank on training data."""
        rank = _rank(self.length_quantiles, length_p)
        return _at_rank(self.pair_quantiles, rank)


def _rank(quantiles: Sequence[float], value: float) -> float:
    """The fraction of the distribution below `value`, interpolated between its quantiles."""
    n = len(quantiles) - 1
    i = bisect.bisect_left(quantiles, value)
    if i == 0:
        return 0.0
    if i > n:
        return 1.0
    lo, hi = quantiles[i - 1], quantiles[i]
    within = (value - lo) / (hi - lo) if hi > lo else 0.5
    return (i - 1 + within) / n


def _at_rank(quantiles: Sequence[float], rank: float) -> float:
    n = len(quantiles) - 1
    x = min(max(rank, 0.0), 1.0) * n
    i = min(int(x), n - 1)
    return quantiles[i] + (quantiles[i + 1] - quantiles[i]) * (x - i)


@dataclass(frozen=True, slots=True)
class Assessment:
    """The pair head's P for a prompt, and whether the prompt is like the training prompts."""

    p: float
    coverage: float  # the share of its words and bigrams the model knows
    familiar: bool
    floor: float  # the coverage below which a prompt is unfamiliar


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
        self.known = frozenset(vocab)
        fam = doc.get("familiarity")  # absent in artifacts written before it: every prompt is familiar
        self.familiarity = Familiarity.from_json(fam) if fam is not None else None

    def features(self, text: str) -> set[str]:
        return features(text, self.config)

    def weak_suffices(self, text: str) -> float:
        return _sigmoid(self.heads[PAIR_HEAD].logit(self.features(text)))

    def assess(self, text: str) -> Assessment:
        feats = self.features(text)
        p = _sigmoid(self.heads[PAIR_HEAD].logit(feats))
        return self._assessment(p, feats)

    def _assessment(self, p: float, feats: set[str]) -> Assessment:
        fam = self.familiarity
        if fam is None:
            return Assessment(p, 1.0, True, 0.0)
        cov = coverage(feats, self.known)
        return Assessment(p, cov, cov >= fam.min_coverage, fam.min_coverage)

    def success(self, text: str, models: Sequence[str] | None = None) -> dict[str, float]:
        """P(success) per trained model (all of them, or those named)."""
        return self._chances(self.features(text), models)

    def assess_success(
        self, text: str, models: Sequence[str] | None = None
    ) -> tuple[dict[str, float], Assessment]:
        """P(success) per trained model, and the prompt's familiarity (its `p` is unused: NaN)."""
        feats = self.features(text)
        return self._chances(feats, models), self._assessment(math.nan, feats)

    def _chances(self, feats: set[str], models: Sequence[str] | None) -> dict[str, float]:
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

    def assess(self, request: ChatRequest) -> Assessment:
        return self.router.assess(last_user_text(request))

    def on_own_scale(self, length_p: float) -> float | None:
        """The length heuristic's P on this model's scale; None when the artifact cannot map it."""
        fam = self.router.familiarity
        return None if fam is None else fam.on_pair_scale(length_p)

    def success(self, request: ChatRequest, models: Sequence[str]) -> dict[str, float]:
        return self.router.success(last_user_text(request), models)

    def assess_success(
        self, request: ChatRequest, models: Sequence[str]
    ) -> tuple[dict[str, float], Assessment]:
        return self.router.assess_success(last_user_text(request), models)

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

    def __init__(
        self, router: LearnedRouter | None = None, unfamiliar: Callable[[str], float] | None = None
    ) -> None:
        """`unfamiliar`: the P(weak suffices) heuristic that scores a prompt unlike the training
        data instead (read on this model's scale), as a route's `unfamiliar: length` does."""
        self.router = router or load()
        self.models = self.router.models
        self._unfamiliar = unfamiliar

    def scores(self, prompts: Sequence[str]) -> list[float]:
        return [1.0 - self._weak_suffices(p) for p in prompts]

    def _weak_suffices(self, text: str) -> float:
        fam = self.router.familiarity
        if self._unfamiliar is None or fam is None:
            return self.router.weak_suffices(text)
        judged = self.router.assess(text)
        return judged.p if judged.familiar else fam.on_pair_scale(self._unfamiliar(text))

    def success(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        return [self.router.success(p) for p in prompts]
