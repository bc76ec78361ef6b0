"""`turnout eval` end to end through `sidecar.cli.main`, on synthetic datasets written in tmp_path."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from sidecar.cli import main
from sidecar.offline.evaluation import command
from tests.offline.evaluation.conftest import REPO, ROWS, write_csv

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_pair_report_with_json_scores_and_plot(
    small_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json, out_scores, out_png = tmp_path / "r.json", tmp_path / "s.csv", tmp_path / "r.png"
    pair_args = ["eval", str(small_csv), "--strong", "big", "--weak", "small", "--router", "length"]
    files = ["--json", str(out_json), "--scores", str(out_scores), "--plot", str(out_png)]
    code = main([*pair_args, *files])
    printed = capsys.readouterr().out
    assert code == 0
    assert "router: length\n" in printed
    for name in ("length (under test)", "random (mean of 10 seeds)", "oracle"):
        assert name in printed

    report = json.loads(out_json.read_text())
    pair = report["pair"]
    assert (pair["strong"], pair["weak"], pair["rows"]) == ("big", "small", 8)
    assert [r["role"] for r in pair["routers"]] == ["router", "random", "length", "oracle"]
    # Strong 7/8 right, weak 4/8. The oracle reaches PGR 1 by sending exactly the 3 rows the weak model
    # gets wrong (3/8 of the calls), linearly from 0: PGR 0.8 at 0.8 x 3/8 = 0.3.
    assert pair["strong_quality"] == 0.875
    assert pair["weak_quality"] == 0.5
    oracle = pair["routers"][3]
    assert oracle["cpt80"] == pytest.approx(0.3)
    assert oracle["cpt50"] == pytest.approx(0.1875)
    router = pair["routers"][0]
    assert router["curve"]["strong_share"][0] == 0.0
    assert router["curve"]["strong_share"][-1] == 1.0

    with out_scores.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(1, 9)]  # one line per row, in order
    assert [float(r["score"]) for r in rows] == [float(len(p)) for p, _, _ in ROWS]
    assert out_png.read_bytes()[:8] == PNG_MAGIC


def test_jsonl_and_the_default_router(small_jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(small_jsonl), "--strong", "big", "--weak", "small"]) == 0
    printed = capsys.readouterr().out
    assert "router: learned (default)" in printed  # the shipped learned router, on prompts it never saw
    assert "learned (under test)" in printed


def test_malformed_rows_fail_with_line_numbers_unless_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f'"{p}",{s},{w}' for p, s, w in ROWS]
    lines.insert(2, "oops,abc,1")  # line 4
    lines.insert(5, "too,many,fields,here")  # line 7
    path = write_csv(tmp_path / "bad.csv", "prompt,score:big,score:small", lines)
    args = ["eval", str(path), "--strong", "big", "--weak", "small", "--router", "length"]

    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{path}: line 4: score:big is 'abc', not a number" in err
    assert f"{path}: line 7: has 4 fields, the header has 3" in err
    assert "2 malformed rows (2 problems); fix them or pass --skip-malformed" in err

    assert main([*args, "--skip-malformed"]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 malformed rows (--skip-malformed):" in captured.err
    assert "line 4: score:big" in captured.err
    assert "rows: 8 evaluated, 2 malformed rows skipped" in captured.out


def test_only_the_first_twenty_problems_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        tmp_path / "bad.csv", "prompt,score:a,score:b", [f"p{i},x,1" for i in range(25)] + ["q,1,0"]
    )
    assert main(["eval", str(path), "--strong", "a", "--weak", "b"]) == 2
    err = capsys.readouterr().err
    assert "line 21: score:a is 'x'" in err
    assert "line 22:" not in err
    assert "... and 5 more problems" in err


def test_dedupe_against_the_same_file_uses_its_other_splits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = ["train,seen before,1,0", "test,Seen  before,1,0", "test,fresh one,1,0", "test,another,0,0"]
    path = write_csv(tmp_path / "s.csv", "split,question,score:a,score:b", lines)
    out = tmp_path / "scores.csv"
    split = ["--split", "test", "--dedupe-against", str(path)]
    args = ["eval", str(path), *split, "--strong", "a", "--weak", "b"]
    assert main([*args, "--scores", str(out)]) == 0
    assert "rows: 2 evaluated, 1 dropped as duplicates of --dedupe-against" in capsys.readouterr().out
    with out.open(newline="") as f:
        assert [r["line"] for r in csv.DictReader(f)] == ["4", "5"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strong", "gpt-4", "--weak", "small"], "unknown model 'gpt-4'; models in {path}: big, small"),
        (["--strong", "big"], "give both --strong and --weak, or neither"),
        (["--strong", "big", "--weak", "big"], "--strong and --weak name the same model"),
        (["--router", "nope"], "unknown router 'nope'"),
        (["--models", "big,small", "--cost-per-call", "mid=1"], "--cost-per-call for unknown model 'mid'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    small_csv: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["eval", str(small_csv), *extra]) == 2
    err = capsys.readouterr().err
    assert message.format(path=small_csv) in err
    assert err.count("\n") == 1


def test_data_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv: no such file" in capsys.readouterr().err
    path = write_csv(tmp_path / "noscores.csv", "prompt,answer", ["p,a"])
    assert main(["eval", str(path)]) == 2
    assert "no score:<model> columns" in capsys.readouterr().err
    same = write_csv(tmp_path / "same.csv", "prompt,score:a,score:b", ["p,1,1", "q,0,0"])
    assert main(["eval", str(same), "--strong", "a", "--weak", "b"]) == 2
    assert "same mean quality" in capsys.readouterr().err


def test_without_costs_the_pair_reports_shares_and_cost_flags_fill_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f'"{p}",{s},{w}' for p, s, w in ROWS]
    path = write_csv(tmp_path / "nocost.csv", "prompt,score:big,score:small", lines)
    assert main(["eval", str(path), "--strong", "big", "--weak", "small", "--router", "length"]) == 0
    printed = capsys.readouterr().out
    assert "costs: none (shares only)" in printed
    assert "n/a" in printed
    prices = ["--cost-per-call", "big=0.01", "--cost-per-call", "small=0.001"]
    assert main(["eval", str(path), "--strong", "big", "--weak", "small", *prices]) == 0
    assert "costs: --cost-per-call" in capsys.readouterr().out


# --- N models: a SuccessPredictor loaded as an entry point from this module -----------------------

THREE = [  # prompt, quality of cheap/mid/top, the predictor's P(success) for each
    ("easy one", (1, 1, 1), (0.9, 0.95, 0.99)),
    ("medium one", (0, 1, 1), (0.2, 0.9, 0.95)),
    ("hard one", (0, 0, 1), (0.1, 0.2, 0.9)),
    ("impossible", (0, 0, 0), (0.1, 0.1, 0.2)),
]


class ThreeModelPredictor:
    name = "three"
    models = ("cheap", "mid", "top")

    def success(self, prompts: Sequence[str]) -> list[dict[str, float]]:
        table = {p: dict(zip(self.models, probs, strict=True)) for p, _, probs in THREE}
        return [table[p] for p in prompts]


def test_n_model_frontier_with_a_success_predictor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "prompt,score:cheap,score:mid,score:top,cost:cheap,cost:mid,cost:top"
    lines = [f"{p},{q[0]},{q[1]},{q[2]},0.001,0.01,0.1" for p, q, _ in THREE]
    path = write_csv(tmp_path / "three.csv", header, lines)
    out_json, out_png, out_scores = tmp_path / "f.json", tmp_path / "f.png", tmp_path / "p.csv"
    router = f"{__name__}:ThreeModelPredictor"
    args = ["eval", str(path), "--router", router, "--json", str(out_json), "--plot", str(out_png)]
    assert main([*args, "--scores", str(out_scores)]) == 0
    printed = capsys.readouterr().out
    assert "N-model frontier: 3 models on 4 rows" in printed
    frontier = json.loads(out_json.read_text())["frontier"]
    assert frontier["best_single_model"] == "top"
    # Perfect predictions here: the router's frontier reaches the oracle's best point, 0.75 quality for
    # cheap + mid + top + cheap = 0.112 / 4 rows, against 0.1 a row for top alone.
    assert max(frontier["router"]["quality"]) == 0.75
    assert frontier["router_cost_at_95"] == pytest.approx(0.028 / 0.1)
    assert frontier["oracle_cost_at_95"] == pytest.approx(0.028 / 0.1)
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    header_row = out_scores.read_text().splitlines()[0]
    assert header_row == "line,id,p:cheap,p:mid,p:top"


def test_missing_numpy_names_the_extra(
    small_csv: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(command, "_missing", lambda packages: packages)  # as if nothing were installed
    assert main(["eval", str(small_csv), "--plot", "x.png"]) == 2
    assert "numpy and matplotlib not installed: pip install 'turnout[eval]'" in capsys.readouterr().err


def test_the_sidecar_never_imports_numpy_matplotlib_and_evaluation_no_grpc_or_aiohttp() -> None:
    check = """
import sys
import sidecar.cli
sidecar.cli._parser()
assert "numpy" not in sys.modules and "matplotlib" not in sys.modules, "turnout's parser loaded numpy"
for name in list(sys.modules):
    if name.startswith(("grpc", "aiohttp")):
        del sys.modules[name]
import sidecar.offline.evaluation.run, sidecar.offline.evaluation.report
import sidecar.offline.evaluation.plot, sidecar.offline.evaluation.command
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("grpc", "aiohttp", "matplotlib"))
assert not leaked, leaked
"""
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_success_predictor_in_a_pair_is_scored_by_its_expected_gain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "prompt,score:cheap,score:mid,score:top"
    path = write_csv(tmp_path / "three.csv", header, [f"{p},{q[0]},{q[1]},{q[2]}" for p, q, _ in THREE])
    out = tmp_path / "scores.csv"
    args = [
        "eval",
        str(path),
        "--router",
        f"{__name__}:ThreeModelPredictor",
        "--strong",
        "top",
        "--weak",
        "cheap",
    ]
    assert main([*args, "--scores", str(out)]) == 0
    assert "three (under test)" in capsys.readouterr().out
    with out.open(newline="") as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    assert scores == pytest.approx([0.99 - 0.9, 0.95 - 0.2, 0.9 - 0.1, 0.2 - 0.1])
