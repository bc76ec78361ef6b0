"""The money bench's pieces on a tiny synthetic RouterBench, and once end to end through the sidecar."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
from turnout_simulator.config import ReplaySettings
from turnout_simulator.replay import ReplayBook

from benchmarks import money_bench
from benchmarks.replay.data import Prompt, load_prompts, stratified_sample
from benchmarks.replay.figures import Served, compare, summarize, verdict
from sidecar.offline.training.data import ROUTERBENCH

MODELS = list(money_bench.load_models())
FRONTIER, CHEAP = money_bench.FRONTIER, money_bench.CHEAP
SHOTS = (
    'Answer with one letter.\n\nQ: 1+1?\nA) 2\nB) 3\nPrint only a single choice from "A" or "B".\nAnswer:\nA'
)
# (sample_id, eval_name, split, question, frontier correct, cheap correct, answer text)
ROWS = [
    ("arc.test.1", "arc-challenge", "test", "Sky colour?\nA) blue\nB) green\nAnswer:", 1, 1, "A"),
    ("arc.test.2", "arc-challenge", "test", "Ice is?\nA) hot\nB) cold\nAnswer:", 1, 0, "B"),
    (
        "wino.test.3",
        "winogrande",
        "test",
        "Sam helped Kim because _ was kind.\nA) Sam\nB) Kim\nAnswer:",
        0,
        1,
        "A",
    ),
    ("wino.test.4", "winogrande", "test", "Ann beat Bo since _ was fast.\nA) Ann\nB) Bo\nAnswer:", 1, 0, "A"),
    (
        "mbpp.test.5",
        "mbpp",
        "test",
        "Write a python function to add two numbers.",
        1,
        1,
        "```python\ndef f(a, b): ...",
    ),
    ("mbpp.test.6", "mbpp", "test", "Write a function to reverse a list.", 0, 0, "def r(x): return x[::-1]"),
    ("arc.test.7", "arc-challenge", "test", "Seen in training?\nA) yes\nB) no\nAnswer:", 1, 1, "A"),
    (
        "arc.test.8",
        "arc-challenge",
        "test",
        "SKY colour?\nA) blue\nB) green\nAnswer:",
        1,
        1,
        "A",
    ),  # repeat of 1
    ("arc.test.9", "arc-challenge", "test", "Unscored?\nA) x\nB) y\nAnswer:", math.nan, 1, "A"),
    ("arc.train.10", "arc-challenge", "train", "Seen in training?\nA) yes\nB) no\nAnswer:", 1, 1, "A"),
]


def write_routerbench(root: Path) -> Path:
    """compact_questions_scores_costs.csv and original/*_test.csv, as the shared data lays them out."""
    data = root / "compact_questions_scores_costs.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["sample_id", "eval_name", "split", "question"]
            + [f"score:{m}" for m in MODELS]
            + [f"cost:{m}" for m in MODELS]
        )
        for sid, task, split, question, strong, weak, _ in ROWS:
            scores = [strong if m == FRONTIER else weak for m in MODELS]
            costs = [0.005 if m == FRONTIER else 0.0002 for m in MODELS]
            w.writerow([sid, task, split, question, *scores, *costs])
    original = root / "original"
    original.mkdir()
    with (original / "synthetic_test.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["", "sample_id", "prompt"] + [f"{m}|model_response" for m in MODELS])
        for i, (sid, task, _, question, _, _, answer) in enumerate(ROWS):
            full = question if task == "mbpp" else f"{SHOTS}\n\n{question}"
            w.writerow([i, sid, repr([full])] + [repr([answer])] * len(MODELS))
    return data


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_routerbench(tmp_path)


def test_prompts_are_the_test_split_deduplicated_with_their_few_shot_context(data: Path) -> None:
    loaded = load_prompts(data, data.parent / "original", MODELS)

    assert [p.sample_id for p in loaded.prompts] == [
        f"{k}.test.{i}"
        for k, i in (("arc", 1), ("arc", 2), ("wino", 3), ("wino", 4), ("mbpp", 5), ("mbpp", 6))
    ]
    assert loaded.facts == {
        "test_rows": 9,
        "dropped_in_train": 1,
        "dropped_repeated": 1,
        "dropped_unscored": 1,
        "prompts": 6,
        "with_context": 4,
        "malformed_rows": 0,
    }
    first = loaded.prompts[0]
    assert first.context == SHOTS
    assert first.messages() == [
        {"role": "system", "content": SHOTS},
        {"role": "user", "content": first.question},
    ]
    assert loaded.prompts[4].messages() == [{"role": "user", "content": ROWS[4][3]}]


def test_the_quick_sample_keeps_each_task_in_proportion_and_the_data_order() -> None:
    prompts = [
        Prompt(f"{t}.{i}", t, f"q{t}{i}", "", {}, {})
        for t, n in (("a", 50), ("b", 30), ("c", 20))
        for i in range(n)
    ]

    sample = stratified_sample(prompts, 10, seed=7)

    assert [p.task for p in sample].count("a") == 5
    assert [p.task for p in sample].count("c") == 2
    assert sample == sorted(sample, key=prompts.index)
    assert sample == stratified_sample(prompts, 10, seed=7)
    assert stratified_sample(prompts, 500, seed=7) == prompts


def test_figures_grade_the_model_that_answered_and_price_every_billed_attempt(data: Path) -> None:
    loaded = load_prompts(data, data.parent / "original", MODELS)
    by_id = {p.sample_id: p for p in loaded.prompts}
    original = data.parent / "original" / "synthetic_test.csv"
    book = ReplayBook.load(ReplaySettings(dataset=data, split="test", responses=(original,)))
    served = [
        Served("r", "arc.test.1", CHEAP, "A", 0.5, 1_000, 100, (CHEAP,)),
        Served("r", "arc.test.2", FRONTIER, "B", 1.5, 9_000, 100, (CHEAP, FRONTIER), escalated=True),
        Served("r", "wino.test.3", CHEAP, "not what was recorded", 0.7, 1_000, 100, (CHEAP,)),
        Served("r", "wino.test.4", error="UNAVAILABLE: every candidate failed"),
    ]

    f = summarize(served, by_id, book)

    assert f["accuracy"] == 0.75  # 3 right of 4 sent: the error counts as wrong
    assert (f["errors"], f["answers_verified"]) == (1, 2)
    assert f["total_cost_usd"] == pytest.approx(11e-6)
    assert f["cost_per_1k_tokens_usd"] == pytest.approx(11e-6 / 300 * 1000, rel=1e-4)
    assert f["recorded_cost_usd"] == pytest.approx(0.0002 * 3 + 0.005)
    assert f["model_share"] == {CHEAP: 0.5, FRONTIER: 0.25}
    assert f["escalated_share"] == 0.25
    assert f["p95_ms"] == 1500.0


def test_the_target_needs_both_the_saving_and_the_accuracy() -> None:
    frontier = {
        "total_cost_usd": 1.0,
        "recorded_cost_usd": 2.0,
        "accuracy": 0.88,
        "cost_per_1k_tokens_usd": 0.01,
        "p95_ms": 1000.0,
    }

    def route(cost: float, accuracy: float) -> dict[str, Any]:
        return {**frontier, "total_cost_usd": cost, "recorded_cost_usd": 2 * cost, "accuracy": accuracy}

    cheap_and_good = compare(route(0.35, 0.87), frontier)
    assert cheap_and_good["target_met"]
    assert cheap_and_good["cost_reduction"] == 0.65
    assert not compare(route(0.35, 0.85), frontier)["target_met"]
    assert not compare(route(0.45, 0.88), frontier)["target_met"]
    versus = {"a": compare(route(0.45, 0.88), frontier), "b": compare(route(0.2, 0.80), frontier)}
    sentence = verdict(versus)
    assert sentence.startswith("not met by any route.")
    assert "the cheapest is a (55% cheaper, +0.0 points)" in sentence
    assert "the most accurate is b (80% cheaper, -8.0 points)" in sentence


def test_without_the_shared_data_the_bench_says_skipped(tmp_path: Path) -> None:
    results = money_bench.run(quick=True, data=tmp_path / "absent.csv")

    assert results == {"skipped": "../shared/data not found"}
    assert "skipped: ../shared/data not found" in money_bench.report(results)


def test_the_routes_validate_as_a_sidecar_config() -> None:
    from sidecar.config import parse_config

    config = parse_config(
        money_bench.sidecar_config(money_bench.load_models(), "http://127.0.0.1:9/v1"), source="test", env={}
    )

    assert list(config.routes) == ["frontier", "rules", "learned", "learned-n", "consensus", "cascade"]


@pytest.mark.slow
def test_end_to_end_through_the_sidecar_on_synthetic_data(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"

    results = money_bench.run(quick=False, out_dir=out, data=data, time_scale=0.0, concurrency=4)

    routes = results["routes"]
    assert list(routes) == ["frontier", "rules", "learned", "learned-n", "consensus", "cascade"]
    for figures in routes.values():
        assert (figures["requests"], figures["errors"], figures["answers_verified"]) == (6, 0, 6)
    frontier = routes["frontier"]
    assert frontier["model_share"] == {FRONTIER: 1.0}
    assert frontier["accuracy"] == results["offline_frontier"]["accuracy"] == round(4 / 6, 4)
    assert frontier["total_cost_usd"] == pytest.approx(results["offline_frontier"]["expected_cost_usd"])
    # The rules route sends multiple choice to the cheap model and code to the frontier.
    assert routes["rules"]["model_share"] == {CHEAP: round(4 / 6, 4), FRONTIER: round(2 / 6, 4)}
    assert results["vs_frontier"]["rules"]["cost_reduction"] > 0
    lines = money_bench.report(results)
    assert any(line.startswith("| **cascade** |") for line in lines)
    # Code goes to the coder, never to a vote: a consensus stage needs three voters and a frontier.
    assert set(routes["consensus"]["model_share"]) <= {money_bench.CODER, *money_bench.VOTERS, FRONTIER}
    if results.get("plot"):
        assert (out / "money.png").stat().st_size > 0


@pytest.mark.skipif(not ROUTERBENCH.is_file(), reason="needs ../shared/data (RouterBench subset)")
def test_the_real_test_split_loads_with_every_few_shot_context() -> None:
    loaded = load_prompts(ROUTERBENCH, ROUTERBENCH.parent / "original", MODELS)

    assert loaded.facts["prompts"] == 943
    assert loaded.facts["with_context"] == sum(p.task != "mbpp" for p in loaded.prompts)
