"""The built-in scorers and `load_scorer`: names, `builtin:`, the registry, and `module:attr` entry points."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.offline.evaluation import scorer
from sidecar.offline.evaluation.scorer import (
    ClassifierScorer,
    FixedPredictor,
    LengthScorer,
    OracleScorer,
    PromptScorer,
    RandomScorer,
    ScorerError,
    SuccessPredictor,
    load_scorer,
)
from sidecar.policy.classifier import LengthClassifier


class ShoutScorer:
    """An entry-point router for the tests: exclamation marks mean a hard prompt."""

    name = "shout"

    def scores(self, prompts: Sequence[str]) -> list[float]:
        return [float(p.count("!")) for p in prompts]


SHOUT = ShoutScorer()
NOT_A_ROUTER = 42


def make_predictor() -> FixedPredictor:
    return FixedPredictor({"p": {"a": 0.5, "b": 0.9}}, name="table")


def test_length_and_random_scorers() -> None:
    assert LengthScorer().scores(["ab", "", "abcd"]) == [2.0, 0.0, 4.0]
    first, again = RandomScorer(3).scores(["x"] * 5), RandomScorer(3).scores(["x"] * 5)
    assert first == again
    assert len(set(first)) == 5
    assert all(0 <= s < 1 for s in first)
    assert RandomScorer(4).scores(["x"] * 5) != first


def test_oracle_scores_the_gain_of_the_strong_model_on_its_own_rows_only() -> None:
    oracle = OracleScorer(["a", "b", "c"], strong=[1, 1, 0], weak=[0, 1, 1])
    assert oracle.scores(["a", "b", "c"]) == [1, 0, -1]
    with pytest.raises(ValueError, match="only the rows of the dataset it was built from"):
        oracle.scores(["a", "b"])


def test_builtin_length_is_one_minus_the_sidecar_classifier() -> None:
    prompts = ["hi", "please prove this step by step " * 40]
    expected = [
        1 - LengthClassifier().predict(ChatRequest(messages=(Message(Role.USER, (TextPart(p),)),)))
        for p in prompts
    ]
    loaded = load_scorer("builtin:length")
    assert isinstance(loaded, ClassifierScorer)
    assert loaded.name == "builtin:length"
    assert loaded.scores(prompts) == pytest.approx(expected)
    assert loaded.scores(prompts)[0] < loaded.scores(prompts)[1]


def test_names_resolve_through_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(load_scorer("length"), LengthScorer)
    seeded = load_scorer("random", seed=9)
    assert isinstance(seeded, RandomScorer)
    assert seeded.seed == 9
    assert scorer.default_router() == "learned"  # the shipped router registers itself
    monkeypatch.delitem(scorer.SCORERS, "learned")
    assert scorer.default_router() == "builtin:length"
    monkeypatch.setitem(scorer.SCORERS, "learned", ShoutScorer)
    assert scorer.default_router() == "learned"
    assert isinstance(load_scorer("learned"), ShoutScorer)


def test_entry_points_accept_an_object_a_class_or_a_factory() -> None:
    module = __name__
    assert load_scorer(f"{module}:SHOUT") is SHOUT
    assert isinstance(load_scorer(f"{module}:ShoutScorer"), ShoutScorer)
    predictor = load_scorer(f"{module}:make_predictor")
    assert isinstance(predictor, SuccessPredictor)
    assert not isinstance(predictor, PromptScorer)
    assert predictor.success(["p"]) == [{"a": 0.5, "b": 0.9}]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # The lists grow as routers register; these parts are always there.
        ("nope", "unknown router 'nope' (known: learned, length, random, "),
        ("nope", "builtin:length, <module>:<attr>)"),
        ("builtin:nope", "unknown built-in classifier 'nope' (known: "),
        ("no_such_module_xyz:thing", "cannot import no_such_module_xyz"),
        (f"{__name__}:missing", "has no attribute 'missing'"),
        (f"{__name__}:NOT_A_ROUTER", "int has neither scores(prompts) nor success(prompts)"),
    ],
)
def test_unresolvable_specs_say_why(spec: str, message: str) -> None:
    with pytest.raises(ScorerError, match=_escape(message)):
        load_scorer(spec)


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def broken_factory() -> ShoutScorer:
    raise FileNotFoundError("router-v9.json.gz")


def test_a_router_that_fails_to_build_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ScorerError, match=r"cannot be built: FileNotFoundError: router-v9\.json\.gz"):
        load_scorer(f"{__name__}:broken_factory")
    monkeypatch.setitem(scorer.SCORERS, "learned", broken_factory)
    with pytest.raises(ScorerError, match=r"router 'learned' cannot be built"):
        load_scorer("learned")
