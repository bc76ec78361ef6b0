"""Reading datasets: the stated format, its aliases, splits, dedupe, and malformed rows by line number."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sidecar.offline.evaluation.dataset import DatasetError, RowProblem, load_dataset, normalize_prompt
from tests.offline.evaluation.conftest import ROWS, write_csv


def test_csv_columns_become_prompts_models_scores_and_costs(small_csv: Path) -> None:
    data = load_dataset(small_csv)
    assert len(data) == len(ROWS)
    assert data.prompts == tuple(p for p, _, _ in ROWS)
    assert data.models == ("big", "small")
    assert data.scores["big"] == tuple(s for _, s, _ in ROWS)
    assert data.costs["small"] == (0.1,) * len(ROWS)
    assert data.ids[:2] == ("r1", "r2")
    assert data.line_numbers == tuple(range(2, 2 + len(ROWS)))
    assert data.problems == ()


def test_jsonl_with_question_alias_reads_the_same(small_csv: Path, small_jsonl: Path) -> None:
    csv_data, json_data = load_dataset(small_csv), load_dataset(small_jsonl)
    assert json_data.prompts == csv_data.prompts
    assert json_data.scores == csv_data.scores
    assert json_data.costs == csv_data.costs
    assert json_data.ids[0] == "1"  # no id column: the line number


def test_missing_scores_are_nan_and_absent_or_empty_cost_columns_are_none(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "d.csv",
        "question,score:a,score:b,cost:a,cost:b",
        ["q1,1,,0.5,", "q2,nan,0,,", "q3,0.25,NaN,0.5,"],
    )
    data = load_dataset(path)
    assert data.scores["a"][0] == 1.0
    assert math.isnan(data.scores["a"][1])
    assert data.scores["a"][2] == 0.25
    assert all(math.isnan(v) for v in data.scores["b"][::2])
    costs_a = data.costs["a"]
    assert costs_a is not None
    assert math.isnan(costs_a[1])
    assert data.costs["b"] is None  # a column with no value at all is as good as absent


def test_csv_malformed_rows_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        "prompt,score:gpt-4,score:small,cost:gpt-4",
        [
            "fine,1,0,0.01",  # line 2
            '"a prompt over',  # line 3: a quoted prompt spanning lines 3-4
            'two lines",1,1,0.01',
            "bad score,abc,0,0.01",  # line 5
            ",1,0,0.01",  # line 6: no prompt
            "too,many,fields,here,really",  # line 7
            "",  # line 8: blank lines are not rows
            "negative,1,0,-0.5",  # line 9
            "infinite,inf,0,0.1",  # line 10
            "last,0,1,0.02",  # line 11
        ],
    )
    data = load_dataset(path)
    assert data.prompts == ("fine", "a prompt over\ntwo lines", "last")
    assert data.line_numbers == (2, 3, 11)
    assert [str(p) for p in data.problems] == [
        "line 5: score:gpt-4 is 'abc', not a number",
        "line 6: no prompt text",
        "line 7: has 5 fields, the header has 4",
        "line 9: cost:gpt-4 is -0.5, a negative cost",
        "line 10: score:gpt-4 is 'inf', not a finite number",
    ]


def test_jsonl_malformed_lines_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        json.dumps({"prompt": "ok", "score:a": 1, "score:b": 0}),
        "{not json",
        "[1, 2]",
        json.dumps({"prompt": "p", "score:a": "abc", "score:b": True}),
        "",
        json.dumps({"score:a": 1, "score:b": 0}),
        json.dumps({"prompt": "also ok", "score:a": None, "score:b": "0.5"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    data = load_dataset(path)
    assert data.prompts == ("ok", "also ok")
    assert math.isnan(data.scores["a"][1])
    assert data.scores["b"][1] == 0.5
    assert [(p.line, p.message) for p in data.problems] == [
        (2, "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (3, "a JSON list, not an object"),
        (4, "score:a is 'abc', not a number"),
        (4, "score:b is true, not a number"),
        (6, "no prompt text"),
    ]


def test_split_selection_and_dedupe_against_another_split(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "s.csv",
        "split,prompt,score:a,score:b",
        ["train,Same  Question,1,0", "test,same question,1,1", "test,new question,0,1", "train,other,1,1"],
    )
    test, train = load_dataset(path, split="test"), load_dataset(path, split="train")
    assert test.prompts == ("same question", "new question")
    assert test.splits() == ("test", "test")
    deduped = test.dedupe_against(train)
    assert deduped.prompts == ("new question",)
    assert deduped.line_numbers == (4,)
    assert normalize_prompt("  Same\n Question ") == "same question"


@pytest.mark.parametrize(
    ("header", "lines", "split", "message"),
    [
        ("prompt,quality", ["p,1"], None, "no score:<model> columns (columns: prompt, quality)"),
        ("text,score:a", ["p,1"], None, "no prompt column (looked for prompt or question)"),
        ("prompt,score:a", ["p,1"], "test", "--split test asked for, but the file has no split column"),
        ("split,prompt,score:a", ["train,p,1"], "test", "no rows in split 'test' (splits found: train)"),
        ("prompt,score:a,score:a", ["p,1,1"], None, "duplicate columns: score:a"),
    ],
)
def test_unusable_files_raise_one_clear_error(
    tmp_path: Path, header: str, lines: list[str], split: str | None, message: str
) -> None:
    path = write_csv(tmp_path / "x.csv", header, lines)
    with pytest.raises(DatasetError, match=f": {_escape(message)}$"):
        load_dataset(path, split=split)


def test_missing_files_unknown_formats_and_json_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "absent.csv")
    (tmp_path / "d.parquet").write_text("x")
    with pytest.raises(DatasetError, match=r"unknown format '\.parquet'"):
        load_dataset(tmp_path / "d.parquet")
    (tmp_path / "d.json").write_text('[{"prompt": "p", "score:a": 1}]\n')
    with pytest.raises(DatasetError, match="JSON array; write one JSON object per line"):
        load_dataset(tmp_path / "d.json")


def test_a_prompt_larger_than_the_csv_default_field_limit_is_read(tmp_path: Path) -> None:
    huge = "x" * 300_000  # the csv module refuses fields over 131072 characters unless told otherwise
    path = write_csv(tmp_path / "huge.csv", "prompt,score:a", [f"{huge},1", "small,0"])
    data = load_dataset(path)
    assert [len(p) for p in data.prompts] == [300_000, 5]
    assert data.problems == ()


def test_row_problem_reads_as_line_and_message() -> None:
    assert (
        str(RowProblem(17, "score:gpt-4 is 'abc', not a number"))
        == "line 17: score:gpt-4 is 'abc', not a number"
    )


def _escape(text: str) -> str:
    import re

    return re.escape(text)
