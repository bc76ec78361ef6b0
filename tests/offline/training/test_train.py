"""Training: deterministic artifacts, one feature function for training and serving, calibrated targets."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sidecar.cli import main
from sidecar.offline.training import artifact
from sidecar.offline.training.calibrate import Outcomes
from sidecar.offline.training.data import DEFAULT_FILES, Example, read_examples, read_file, split
from sidecar.offline.training.fit import FeatureCache, Vocabulary, fit_logistic
from sidecar.offline.training.train import TrainConfig, train
from sidecar.policy.learned import (
    PAIR_HEAD,
    CalibrationPoint,
    FeatureConfig,
    LearnedRouter,
    features,
    read_artifact,
    resolve_threshold,
)
from sidecar.policy.specs import Target
from tests.offline.training import synthetic

CONFIG = TrainConfig(
    strong=synthetic.STRONG,
    weak=synthetic.WEAK,
    seed=3,
    min_df=2,
    folds=3,
    success_models=(synthetic.STRONG, synthetic.WEAK),
    name="router-test",
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic.write(tmp_path_factory.mktemp("data") / "synthetic.csv")


@pytest.fixture(scope="module")
def trained(data: Path):
    return train(CONFIG, [data])


def test_same_seed_gives_a_byte_identical_artifact(data: Path, trained) -> None:
    again = train(CONFIG, [data])
    assert artifact.encode(again.artifact) == artifact.encode(trained.artifact)


def test_the_seed_is_recorded_and_changes_the_folds(data: Path, trained) -> None:
    other = train(replace(CONFIG, seed=4), [data])
    assert trained.artifact["seed"] == 3
    assert other.artifact["seed"] == 4
    assert artifact.encode(other.artifact) != artifact.encode(trained.artifact)


def test_artifact_round_trips_and_predicts_like_the_trained_model(
    tmp_path: Path, data: Path, trained
) -> None:
    path = tmp_path / "router.json.gz"
    size = artifact.write(trained.artifact, path)
    assert size == path.stat().st_size
    router = LearnedRouter(read_artifact(path))
    assert router.name == "router-test"
    assert router.seed == 3
    assert router.models == (synthetic.STRONG, synthetic.WEAK)
    easy = router.weak_suffices("what is 3 plus 4 about item 7")
    hard = router.weak_suffices("prove the theorem rigorously about item 7")
    assert 0 < hard < easy < 1  # the signal was learned
    success = router.success("prove the theorem rigorously about item 7")
    assert set(success) == {synthetic.STRONG, synthetic.WEAK}
    assert all(0 < p < 1 for p in success.values())
    # the familiarity floor came from the training prompts: theirs pass it, a foreign one does not
    assert router.familiarity is not None
    assert 0 < router.familiarity.min_coverage <= 1
    assert router.assess("what is 3 plus 4 about item 7").familiar
    assert not router.assess("quelle est la capitale du pays voisin").familiar
    assert trained.report["test"]["unfamiliar"]["rows"] > 0


def test_training_and_serving_compute_the_same_features_and_scores(data: Path) -> None:
    """The matrix training fits on and the runtime Head.logit agree to the stored precision."""
    config = FeatureConfig(char_ngrams=(4,))
    cache = FeatureCache(config)
    texts = [e.question for e in read_file(data)]
    assert all(cache(t) == features(t, config) for t in texts)
    vocab = Vocabulary.build([cache(t) for t in texts], min_df=2, max_features=500)
    labels = ["prove" in t for t in texts]
    model = fit_logistic(vocab.matrix([cache(t) for t in texts]), labels, [1.0] * len(texts), c=1.0)
    doc = {
        "format": "turnout-router",
        "format_version": 1,
        "name": "t",
        "seed": 0,
        "features": config.to_json(),
        "vocabulary": list(vocab.terms),
        "heads": {PAIR_HEAD: {"bias": model.bias, "weights": [float(w) for w in model.weights]}},
        "pair": {"strong": "s", "weak": "w"},
        "models": [],
        "calibration": {"points": []},
    }
    router = LearnedRouter(doc)
    trained_p = model.predict(vocab.matrix([cache(t) for t in texts[:50]]))
    served_p = [router.weak_suffices(t) for t in texts[:50]]
    assert np.allclose(trained_p, served_p, atol=1e-9)


def test_features_cover_words_bigrams_shape_and_truncate_long_prompts() -> None:
    config = FeatureConfig(head_chars=10, tail_chars=5)
    f = features("Hello World", FeatureConfig())
    assert {"hello", "world", "hello world", "#len:4", "#lines:1"} <= f
    long = features("alpha " * 100 + "omega", config)
    assert "omega" in long
    assert "alpha" in long
    assert "#len:10" in long  # the length bucket is the whole prompt's, before truncation


def test_calibration_meets_its_quality_target_on_held_out_draws() -> None:
    """A threshold chosen on one sample keeps (close to) its target on a fresh sample of the same kind."""
    rng = np.random.default_rng(0)

    def sample(n: int) -> Outcomes:
        hard = rng.random(n) < 0.4
        p = np.clip(np.where(hard, 0.3, 0.8) + rng.normal(0, 0.1, n), 0, 1)
        strong = (rng.random(n) < np.where(hard, 0.9, 0.97)).astype(float)
        weak = np.where(rng.random(n) < np.where(hard, 0.3, 0.95), strong, 0.0)
        return Outcomes.of(p, weak, strong, np.full(n, 0.001), np.full(n, 0.01))

    fit_on, check_on = sample(5000), sample(5000)
    points = [CalibrationPoint(*row) for row in fit_on.table()]
    for target in (0.9, 0.95, 0.98):
        t = resolve_threshold(points, Target("quality", target))
        assert fit_on.achieved(t)["quality"] >= target
        assert check_on.achieved(t)["quality"] >= target - 0.01
    budget = resolve_threshold(points, Target("cost", 0.3))
    assert fit_on.achieved(budget)["cost"] <= 0.3


def test_split_drops_test_copies_from_train_and_train_duplicates_from_test() -> None:
    def ex(q: str, split_: str, dup: str = "") -> Example:
        return Example("id", "s", "t", split_, "binary_correctness", q, {}, {}, dup)

    examples = [
        ex("Same  question", "train"),
        ex("same question", "test"),  # a duplicate of a training question: leaves the test set
        ex("only in test", "test"),
        ex("copy of a test question", "train", dup="mbpp.dev.5(test)"),  # leaves training
    ]
    s = split(examples)
    assert [e.question for e in s.train] == ["Same  question"]
    assert [e.question for e in s.test] == ["only in test"]
    assert (s.dropped_train, s.dropped_test) == (1, 1)


def test_success_reads_each_label_type() -> None:
    def ex(label_type: str, scores: dict[str, float]) -> Example:
        return Example("id", "s", "t", "train", label_type, "q", scores, {})

    assert ex("binary_correctness", {"m": 1.0}).success("m") is True
    assert ex("judge_score_1to10", {"m": 7.0, "gpt-4-1106-preview": 8.0}).success("m") is False
    assert ex("judge_score_1to10", {"m": 9.0, "gpt-4-1106-preview": 8.0}).success("m") is True
    assert ex("p_win_vs_gpt4_1106_preview", {"m": 0.5}).success("m") is True
    assert ex("binary_correctness", {}).success("m") is None
    assert ex("binary_correctness", {"s": 1.0, "w": 1.0}).weak_suffices("s", "w") is True


def test_turnout_train_writes_the_artifact_and_prints_the_figures(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "r.json.gz", tmp_path / "report.json"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--strong",
            synthetic.STRONG,
            "--weak",
            synthetic.WEAK,
            "--seed",
            "5",
            "--out",
            str(out),
            "--report",
            str(report),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "calibration (out-of-fold)" in printed
    assert "leave task out" in printed
    doc = read_artifact(out)
    assert doc["seed"] == 5
    assert doc["pair"] == {"strong": synthetic.STRONG, "weak": synthetic.WEAK}
    assert report.is_file()


def test_turnout_train_reports_a_missing_data_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "x.gz")]) == 2
    assert "no such data file" in capsys.readouterr().err


@pytest.mark.skipif(not all(p.is_file() for p in DEFAULT_FILES), reason="../shared/data is not present")
def test_the_shared_data_reads_and_splits_as_its_readmes_say() -> None:
    s = split(read_examples(DEFAULT_FILES))
    assert len(s.test) == 945
    assert s.dropped_test == 8
    assert s.dropped_train == 65  # merged rows flagged as copies of a test question
    assert not any(math.isnan(v) for e in s.train for v in e.scores.values())
