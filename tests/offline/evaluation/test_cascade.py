"""Cascades in `turnout eval`: replayed on recorded answers, every call paid for, beside the routers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sidecar.cli import main
from sidecar.offline.evaluation.cascade import CascadeError, parse_cascade
from sidecar.offline.evaluation.run import EvalOptions, evaluate
from tests.offline.evaluation.conftest import write_csv

# Two cheap models a (0.1 a call) and b (0.2) and the top model (1.0). Per row: each one's answer
# and score. Row 1: a and b agree and are right; 2: they disagree; 3: they agree and are wrong;
# 4: a refuses (no choice letter: no vote).
ANSWERS = [
    (("B", 1), ("(B)", 1), ("B", 1)),
    (("A", 0), ("C", 1), ("C", 1)),
    (("A", 0), ("A", 0), ("D", 1)),
    (("I can't help with that.", 0), ("D", 1), ("D", 1)),
]
MODELS = ("a", "b", "top")
COST = {"a": 0.1, "b": 0.2, "top": 1.0}


@pytest.fixture
def answered(tmp_path: Path) -> Path:
    header = ["prompt", *(f"{k}:{m}" for k in ("score", "cost", "answer") for m in MODELS)]
    lines = []
    for i, row in enumerate(ANSWERS, start=1):
        scores = [str(s) for _, s in row]
        costs = [str(COST[m]) for m in MODELS]
        texts = [json.dumps(t) for t, _ in row]  # CSV-quoted by JSON's double quotes
        lines.append(",".join([f"question {i}", *scores, *costs, *texts]))
    return write_csv(tmp_path / "answered.csv", ",".join(header), lines)


def test_a_vote_is_replayed_with_every_call_paid_for_and_its_curve(answered: Path) -> None:
    report = evaluate(EvalOptions(dataset=answered, router="length", cascades=("a+b>top",)))
    (c,) = report.cascades
    assert (c.rows, c.dropped, c.top_quality, c.top_cost) == (4, 0, 1.0, 1.0)
    # 2 of 2: rows 1 and 3 accepted (a's answer), rows 2 and 4 escalated to top; a and b always paid.
    assert c.point.need == 2
    assert c.point.quality == pytest.approx((1 + 1 + 0 + 1) / 4)
    assert c.point.cost == pytest.approx((0.3 + 1.3 + 0.3 + 1.3) / 4)
    assert c.point.escalated == 0.5
    # 1 of 2: the first readable answer is taken; nothing escalates, quality drops.
    need_one = c.curve[-1]
    assert (need_one.need, need_one.quality, need_one.escalated) == (1, 0.5, 0.0)
    assert need_one.cost == pytest.approx(0.3)
    assert [p.need for p in c.curve] == [2, 1]


def test_a_plain_cascade_escalates_an_answer_without_the_expected_form(answered: Path) -> None:
    report = evaluate(EvalOptions(dataset=answered, router="length", cascades=("a>top",)))
    (c,) = report.cascades
    assert c.point.quality == pytest.approx((1 + 0 + 0 + 1) / 4)  # row 4's refusal went to top
    assert c.point.cost == pytest.approx((0.1 * 3 + 1.1) / 4)  # the refused answer is paid for too
    assert c.point.escalated == 0.25


def test_the_cli_reports_cascades_beside_the_router_in_text_json_and_plot(
    answered: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    args = ["eval", str(answered), "--strong", "top", "--weak", "a", "--router", "length"]
    files = ["--json", str(out_json), "--plot", str(out_png)]
    assert main([*args, "--cascade", "a+b>top", "--cascade", "a>top", *files]) == 0
    text = capsys.readouterr().out
    assert "length (under test)" in text
    assert "cascade a+b>top (answers compared as choice) on 4 rows" in text
    assert "2 agreeing (as written)" in text
    cascades = json.loads(out_json.read_text())["cascades"]
    assert [c["spec"] for c in cascades] == ["a+b>top", "a>top"]
    assert cascades[0]["as_written"] == {"need": 2, "quality": 0.75, "mean_cost": 0.8, "escalated": 0.5}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("a", "two stages or more"),
        ("a>b+top", "the last stage is one model"),
        ("a+b@3>top", "@3 must be a whole number from 1 to 2"),
        ("a+a>top", "a model appears twice"),
    ],
)
def test_a_misspelt_cascade_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(CascadeError, match=says):
        parse_cascade(spec)


def test_a_cascade_without_answers_or_with_an_unknown_model_exits_2(
    answered: Path, small_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(small_csv), "--router", "length", "--cascade", "small>big"]) == 2
    assert "no answer:small column: a cascade needs the answers" in capsys.readouterr().err
    assert main(["eval", str(answered), "--router", "length", "--cascade", "a>gpt-9"]) == 2
    assert "unknown model 'gpt-9'" in capsys.readouterr().err


def test_the_consensus_of_decision_050_replays_to_its_figures(tmp_path: Path) -> None:
    from benchmarks.router_research import eval_dataset, recorded

    if not recorded.ORIGINAL.is_dir():
        pytest.skip(
            f"RouterBench's recorded answers are not here ({recorded.ORIGINAL}); set TURNOUT_DATA_ROOT"
        )
    data = tmp_path / "routerbench.csv"
    eval_dataset.write(data)
    voters = "mistralai/mixtral-8x7b-chat+zero-one-ai/Yi-34B-Chat+meta/llama-2-70b-chat"
    options = EvalOptions(
        dataset=data, split="test", router="length", cascades=(f"{voters}>{recorded.FRONTIER}",)
    )
    (c,) = evaluate(options).cascades
    assert c.rows == 943
    # docs/decisions/050: one consensus for every prompt, all 3 agree, else GPT-4: -1.38 points at 0.740.
    assert 100 * (c.point.quality - c.top_quality) == pytest.approx(-1.38, abs=0.01)
    assert c.point.cost / c.top_cost == pytest.approx(0.740, abs=0.001)
