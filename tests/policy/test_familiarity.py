"""The learned router on prompts unlike its training data: told apart, and not guessed on."""

from __future__ import annotations

from typing import Any

import pytest

from sidecar.config import ConfigError, parse_config
from sidecar.policy.learned import (
    ArtifactError,
    Familiarity,
    LearnedClassifier,
    LearnedRouter,
    coverage,
    load,
)
from sidecar.policy.specs import ClassifierSpec, SuccessSpec
from tests.factories import chat
from tests.policy.test_learned import names, plan, smart_route, tiny_doc

FAMILIARITY = {
    "min_coverage": 0.5,
    "quantile": 0.05,
    "pair_quantiles": [0.2, 0.5, 0.9],
    "length_quantiles": [0.3, 0.6, 0.9],
}


def test_coverage_counts_words_and_bigrams_not_the_shape_features() -> None:
    known = {"hello", "proof"}
    assert coverage({"hello", "proof", "hello proof", "#len:4", "#lines:1"}, known) == pytest.approx(2 / 3)
    assert coverage({"#len:1", "#lines:1"}, known) == 0.0  # no words: nothing seen before


@pytest.mark.parametrize(
    ("length_p", "expected"),
    [(0.0, 0.2), (0.3, 0.2), (0.45, 0.35), (0.6, 0.5), (0.75, 0.7), (0.9, 0.9), (1.0, 0.9)],
)
def test_the_length_score_is_read_on_the_pair_scale_by_rank(length_p: float, expected: float) -> None:
    fam = Familiarity.from_json(FAMILIARITY)
    assert fam.on_pair_scale(length_p) == pytest.approx(expected)


def test_a_broken_familiarity_table_is_refused() -> None:
    with pytest.raises(ArtifactError, match="pair_quantiles and length_quantiles"):
        LearnedRouter(tiny_doc(familiarity=FAMILIARITY | {"pair_quantiles": [0.1]}))


def test_an_artifact_without_familiarity_finds_every_prompt_familiar() -> None:
    router = LearnedRouter(tiny_doc())
    assert router.assess("zebra quantum").familiar


def classifier_plan(spec: Any, text: str) -> Any:
    return plan(
        spec, chat(text), classifier=LearnedClassifier(LearnedRouter(tiny_doc(familiarity=FAMILIARITY)))
    )


def test_an_unfamiliar_prompt_is_routed_by_length_on_the_learned_scale_and_the_decision_says_so() -> None:
    spec = ClassifierSpec("learned", threshold=0.7)
    familiar = classifier_plan(spec, "hello proof")  # 2 of 3 features known
    assert "unlike" not in " ".join(map(str, familiar.reasons))
    # "zebra quantum": nothing known. The tiny model alone says 0.62 (< 0.7: best first); a
    # 13-character prompt is as short as the length heuristic's top rank, read as 0.9 here.
    p = classifier_plan(spec, "zebra quantum")
    reasons = [str(r) for r in p.reasons]
    assert "prompt unlike its training data (0% of its words known, below 50%)" in reasons[0]
    assert "the length heuristic decides" in reasons[0]
    assert "classifier 'learned (length)': 0.90 >= 0.70" in reasons[1]
    assert names(p)[0] == "other"  # cheapest first
    assert p.classifier_score == pytest.approx(0.9)


def test_unfamiliar_strong_puts_the_best_model_first_and_ignore_trusts_the_score() -> None:
    p = classifier_plan(ClassifierSpec("learned", threshold=0.1, unfamiliar="strong"), "zebra quantum")
    assert names(p)[0] == "pricey"
    assert "best quality first" in str(p.reasons[0])
    p = classifier_plan(ClassifierSpec("learned", threshold=0.7, unfamiliar="ignore"), "zebra quantum")
    assert names(p)[0] == "pricey"  # the model's own 0.62 < 0.7
    assert "unlike" not in " ".join(map(str, p.reasons))


def test_predicted_success_keeps_the_routes_order_on_an_unfamiliar_prompt() -> None:
    spec = SuccessSpec("learned", (("cheap", "weak"), ("pricey", "strong")), quality=0.9)
    assert names(classifier_plan(spec, "hello")) == ["cheap", "pricey", "other"]
    p = classifier_plan(spec, "zebra quantum")
    assert names(p) == ["cheap", "pricey", "other"]  # as the route lists them
    assert "prompt unlike its training data" in str(p.reasons[0])
    assert "order kept" in str(p.reasons[0])


def test_the_shipped_artifact_knows_its_domain() -> None:
    router = load()
    assert router.familiarity is not None
    assert 0.0 < router.familiarity.min_coverage < 1.0
    assert router.assess("Which of the following is a mammal? A) shark B) dolphin C) trout").familiar
    assert not router.assess("Zxqv blorft wimbly snarfle quonk?").familiar
    test = router.metadata["metrics"]["test"]
    assert test["learned"]["apgr"] > 0.5


def test_config_names_the_allowed_unfamiliar_choices() -> None:
    raw = smart_route([{"classifier": {"name": "learned", "threshold": 0.5, "unfamiliar": "guess"}}])
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="my.yaml", env={})
    assert "strategies[0].classifier.unfamiliar: Input should be 'length', 'strong' or 'ignore'" in str(
        info.value
    )
    raw = smart_route([{"classifier": {"name": "learned", "threshold": 0.5, "unfamiliar": "strong"}}])
    (spec,) = parse_config(raw, source="my.yaml", env={}).routes["smart"].strategies
    assert spec == ClassifierSpec("learned", 0.5, None, "strong")
