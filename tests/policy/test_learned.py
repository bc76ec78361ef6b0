"""The learned router at run time: artifact loading, targets, N-model ordering, and their config errors."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config import ConfigError, parse_config
from sidecar.domain.request import ChatRequest
from sidecar.policy.build import build_engine
from sidecar.policy.classifier import BUILTIN, Calibrated, SuccessModel
from sidecar.policy.health import HealthTracker
from sidecar.policy.learned import (
    DEFAULT_ARTIFACT,
    PAIR_HEAD,
    ArtifactError,
    CalibrationPoint,
    LearnedClassifier,
    LearnedRouter,
    LearnedScorer,
    features,
    load,
    resolve_threshold,
)
from sidecar.policy.specs import ClassifierSpec, RouteSpec, SuccessSpec, Target
from sidecar.registry.registry import Registry
from tests.factories import chat, model, provider

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "turnout.yaml"

# quality rises and cost rises with the threshold, as on real held-out data
POINTS = [
    CalibrationPoint(0.0, 0.0, 0.80, 0.05),
    CalibrationPoint(0.5, 0.2, 0.90, 0.25),
    CalibrationPoint(0.7, 0.5, 0.96, 0.55),
    CalibrationPoint(0.8, 0.7, 0.94, 0.75),  # a dip: "every higher threshold keeps it" matters
    CalibrationPoint(0.9, 0.9, 0.99, 0.90),
    CalibrationPoint(1.0, 1.0, 1.00, 1.00),
]


def tiny_doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "turnout-router",
        "format_version": 1,
        "name": "tiny",
        "seed": 1,
        "features": {"head_chars": 100, "tail_chars": 20, "bigrams": True, "char_ngrams": []},
        "vocabulary": ["proof", "hello", "#len:3"],
        "heads": {
            PAIR_HEAD: {"bias": 0.5, "weights": [-4.0, 2.0, 0.0]},
            "success:strong": {"bias": 2.0, "weights": [0.0, 0.0, 0.0]},
            "success:weak": {"bias": 1.0, "weights": [-6.0, 2.0, 0.0]},
        },
        "pair": {"strong": "strong", "weak": "weak"},
        "models": ["strong", "weak"],
        "calibration": {"points": [[p.threshold, p.strong_share, p.quality, p.cost] for p in POINTS]},
    }
    doc.update(overrides)
    return doc


def test_prediction_is_the_logistic_of_the_normalised_weight_sum() -> None:
    router = LearnedRouter(tiny_doc())
    feats = features("hello", router.config)  # hello, #len:3, #lines:1
    assert feats == {"hello", "#len:3", "#lines:1"}
    expected = 1 / (1 + math.exp(-(0.5 + 2.0 / math.sqrt(3))))
    assert router.weak_suffices("hello") == pytest.approx(expected)
    assert router.weak_suffices("a proof") < 0.5 < router.weak_suffices("hello")


def test_success_is_per_model_and_only_for_those_asked() -> None:
    router = LearnedRouter(tiny_doc())
    both = router.success("a proof")
    assert set(both) == {"strong", "weak"}
    assert both["strong"] > both["weak"]
    assert set(router.success("a proof", ["weak"])) == {"weak"}


def test_an_artifact_of_another_format_version_is_refused() -> None:
    with pytest.raises(ArtifactError, match="version 2"):
        LearnedRouter(tiny_doc(format_version=2))


@pytest.mark.parametrize(
    ("target", "threshold"),
    [
        (Target("quality", 0.95), 0.9),  # 0.7 reaches 0.96, but 0.8 dips below: not from 0.7 on
        (Target("quality", 0.90), 0.5),
        (Target("quality", 0.999), 1.0),
        (Target("quality", 0.5), 0.0),
        (Target("cost", 0.3), 0.5),
        (Target("cost", 0.75), 0.8),
        (Target("cost", 0.01), 0.0),  # nothing is that cheap: always the cheap model first
    ],
)
def test_targets_resolve_to_thresholds_conservatively(target: Target, threshold: float) -> None:
    assert resolve_threshold(POINTS, target) == threshold


REGISTRY = Registry(
    models=(
        model("cheap", price_in=0.1, price_out=0.4, quality=0.6),
        model("pricey", price_in=2.5, price_out=10, quality=0.9),
        model("other", price_in=0.05, price_out=0.1, quality=0.7),
    ),
    providers={"p1": provider("p1")},
)


def plan(
    strategy: Any,
    request: ChatRequest,
    models: tuple[str, ...] = ("cheap", "pricey", "other"),
    classifier: LearnedClassifier | None = None,
) -> Any:
    routes = {"r": RouteSpec("r", models, (strategy,))}
    classifier = classifier or LearnedClassifier(LearnedRouter(tiny_doc()))
    return build_engine(routes, "r", REGISTRY, HealthTracker(), None, {"learned": classifier}).plan(request)


def names(p: Any) -> list[str]:
    return [c.model.name for c in p.candidates]


def test_a_quality_target_becomes_the_calibrated_threshold_and_is_named_in_the_reason() -> None:
    spec = ClassifierSpec("learned", target=Target("quality", 0.95))  # threshold 0.9 from POINTS
    p = plan(spec, chat("hello"))  # P = 0.86 < 0.9: best quality first
    assert names(p)[0] == "pricey"
    assert "quality 0.95 target" in str(p.reasons[0])
    assert "0.90" in str(p.reasons[0])
    p = plan(ClassifierSpec("learned", threshold=0.5), chat("hello"))
    assert names(p)[0] == "other"  # cheapest first
    assert "threshold" in str(p.reasons[0])


def test_n_model_ordering_by_predicted_success_and_price() -> None:
    spec = SuccessSpec("learned", (("cheap", "weak"), ("pricey", "strong")), quality=0.9)
    # "hello": weak 0.95 vs strong 0.88 -> both clear 0.9 x best; the cheaper goes first.
    p = plan(spec, chat("hello"))
    assert names(p) == ["cheap", "pricey", "other"]  # "other" is unmapped: a fallback, last
    assert "predicted success (learned)" in str(p.reasons[0])
    # "a proof": weak's chance collapses, so the strong model leads.
    p = plan(spec, chat("a proof"))
    assert names(p) == ["pricey", "cheap", "other"]
    assert p.classifier_score == pytest.approx(LearnedRouter(tiny_doc()).success("a proof")["strong"])


def test_n_model_without_mapped_candidates_keeps_the_order() -> None:
    spec = SuccessSpec("learned", (("cheap", "weak"),))
    p = plan(spec, chat("hello"), models=("other", "pricey"))
    assert names(p) == ["other", "pricey"]
    assert "no candidate is mapped" in str(p.reasons[0])


# --- the shipped artifact ------------------------------------------------------------------------


def test_the_shipped_artifact_loads_once_and_predicts_in_range() -> None:
    router = load()
    assert router is load()  # cached: a reload or a second route does not read it again
    assert router.metadata["format_version"] == 1
    assert isinstance(router.seed, int)
    assert router.name.startswith("router-v")
    assert router.metadata["data"]
    assert router.metadata["metrics"]["test"]["learned"]["apgr"] > 0.5
    assert len(router.calibration) == 101
    for text in ("What is 2 + 2?", "Write a Python function that parses RFC 3339 dates.", ""):
        assert 0.0 < router.weak_suffices(text) < 1.0
    assert router.strong in router.models
    assert router.weak in router.models
    assert DEFAULT_ARTIFACT.stat().st_size < 1_000_000


def test_learned_is_a_builtin_calibrated_success_model_and_an_eval_scorer() -> None:
    classifier = BUILTIN["learned"]()
    assert isinstance(classifier, Calibrated)
    assert isinstance(classifier, SuccessModel)
    assert 0.0 <= classifier.threshold_for(Target("quality", 0.95)) <= 1.0
    scorer = LearnedScorer()
    (score,) = scorer.scores(["What is 2 + 2?"])
    assert score == pytest.approx(1 - load().weak_suffices("What is 2 + 2?"))
    (row,) = scorer.success(["What is 2 + 2?"])
    assert set(row) == set(scorer.models)


# --- config --------------------------------------------------------------------------------------


def smart_route(strategies: list[Any]) -> dict[str, Any]:
    raw = yaml.safe_load(EXAMPLE.read_text())
    route = next(r for r in raw["routes"] if r["name"] == "smart")
    route["strategies"] = strategies
    return raw


def test_config_accepts_a_target_and_an_n_model_mapping() -> None:
    raw = smart_route(
        [
            {"classifier": {"name": "learned", "target": {"quality": 0.95}}},
            {
                "predicted_success": {
                    "models": {"gpt-4o": "gpt-4-1106-preview", "gpt-4o-mini": "mistralai/mixtral-8x7b-chat"},
                    "quality": 0.9,
                }
            },
        ]
    )
    config = parse_config(raw, source="my.yaml", env={})
    classify, success = config.routes["smart"].strategies
    assert classify == ClassifierSpec("learned", 0.5, Target("quality", 0.95))
    assert success == SuccessSpec(
        "learned", (("gpt-4o", "gpt-4-1106-preview"), ("gpt-4o-mini", "mistralai/mixtral-8x7b-chat")), 0.9
    )


@pytest.mark.parametrize(
    ("strategies", "expected"),
    [
        (
            [{"classifier": {"name": "length", "target": {"quality": 0.95}}}],
            "strategies[0].classifier.target: classifier 'length' has no calibration table",
        ),
        (
            [{"classifier": {"name": "learned", "threshold": 0.7, "target": {"cost": 0.3}}}],
            "strategies[0].classifier.target: give either threshold or target, not both",
        ),
        (
            [{"classifier": {"name": "learned", "target": {"quality": 0.95, "cost": 0.3}}}],
            "strategies[0].classifier.target: state exactly one of quality or cost",
        ),
        (
            [{"classifier": {"name": "learned", "target": {"quality": 1.5}}}],
            "strategies[0].classifier.target.quality: Input should be less than or equal to 1",
        ),
        (
            [{"predicted_success": {"models": {"gpt-4o": "gpt-5-ultra"}}}],
            "strategies[0].predicted_success.models: gpt-4o: 'gpt-5-ultra' is not a model classifier",
        ),
        (
            [{"predicted_success": {"classifier": "length", "models": {"gpt-4o": "gpt-4-1106-preview"}}}],
            "strategies[0].predicted_success.classifier: classifier 'length' does not predict per-model",
        ),
        (
            [{"predicted_success": {"models": {"no-such-model": "gpt-4-1106-preview"}}}],
            "no-such-model",
        ),
    ],
)
def test_config_errors_name_the_field(strategies: list[Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(smart_route(strategies), source="my.yaml", env={})
    assert expected in str(info.value)
