"""Replay mode: dataset prompts answered with each model's recorded outcome, usage from the answer."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from turnout_simulator import SimulatorConfigError, load_simulator_config
from turnout_simulator.replay import marker, parse_marker
from turnout_simulator.tokens import estimate_prompt

from .conftest import MakeSim
from .helpers import add_fault, read_sse, stats

STRONG, WEAK = "big/model-1", "small-model"
Q1 = "Which gas do plants take in?\nA) oxygen\nB) carbon dioxide\nAnswer:"
Q2 = "Write a python function to add two numbers."
Q_TRAIN = "A question only in the training split."
CODE = "Here is the function:\n\n```python\ndef add(a, b):\n    return a + b\n```"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    header = ["sample_id", "eval_name", "split", "question", f"score:{STRONG}", f"score:{WEAK}"]
    rows = [
        ["arc.test.1", "arc", "test", Q1, "1.0", "0.0"],
        ["mbpp.test.2", "mbpp", "test", Q2, "1.0", "nan"],
        ["arc.train.3", "arc", "train", Q_TRAIN, "1.0", "1.0"],
        [
            "arc.test.4",
            "arc",
            "test",
            "  which GAS do plants\ttake in?\nA) oxygen\nB) carbon dioxide\nAnswer: ",
            "0",
            "0",
        ],
    ]
    return write_csv(tmp_path / "data.csv", header, rows)


@pytest.fixture
def responses(tmp_path: Path) -> Path:
    header = ["", "sample_id", f"{STRONG}|model_response", f"{WEAK}|model_response"]
    rows = [["0", "arc.test.1", "['B']", "['A\\n']"], ["1", "mbpp.test.2", repr([CODE]), "[]"]]
    return write_csv(tmp_path / "original.csv", header, rows)


def body(model: str, prompt: str, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}]
    return {"model": model, "messages": messages, **extra}


async def chat(http: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{url}/chat/completions", json=payload) as response:
        return response.status, await response.json()


async def test_each_model_answers_with_its_recorded_text_and_usage_counts_it(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path, responses: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "split": "test", "responses": [responses]})

    for model, expected in ((STRONG, "B"), (WEAK, "A\n")):
        status, answer = await chat(http, sim.base_url, body(model, Q1))
        assert status == 200, answer
        assert answer["choices"][0]["message"]["content"] == expected
        assert answer["choices"][0]["finish_reason"] == "stop"
        assert answer["usage"]["prompt_tokens"] == estimate_prompt(body(model, Q1)["messages"])
        assert answer["usage"]["completion_tokens"] == 1

    status, answer = await chat(http, sim.base_url, body(STRONG, Q2))
    assert answer["choices"][0]["message"]["content"] == CODE
    assert answer["usage"]["completion_tokens"] == math.ceil(len(CODE) / 4)
    # An empty recorded response (`[]`) is an empty answer, not the marker.
    status, answer = await chat(http, sim.base_url, body(WEAK, Q2))
    assert (status, answer["choices"][0]["message"]["content"]) == (200, "")


async def test_without_recorded_text_the_answer_is_a_marker_with_the_verdict(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "split": "test"})

    verdicts = {}
    for model, prompt in ((STRONG, Q1), (WEAK, Q1), (WEAK, Q2)):
        _, answer = await chat(http, sim.base_url, body(model, prompt))
        text = answer["choices"][0]["message"]["content"]
        assert answer["usage"]["completion_tokens"] == math.ceil(len(text) / 4)
        parsed = parse_marker(text)
        assert parsed is not None
        verdicts[model, prompt] = parsed
    assert verdicts[STRONG, Q1] == ("arc.test.1", STRONG, "correct")
    assert verdicts[WEAK, Q1] == ("arc.test.1", WEAK, "incorrect")
    assert verdicts[WEAK, Q2] == ("mbpp.test.2", WEAK, "unscored")  # the score is NaN


def test_markers_round_trip_model_names_with_colons() -> None:
    assert parse_marker(marker("a.test.1", "org/model:v2", "correct")) == (
        "a.test.1",
        "org/model:v2",
        "correct",
    )
    assert parse_marker("The answer is B") is None


async def test_prompts_match_whitespace_and_case_insensitively_first_row_wins(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "split": "test"})

    _, answer = await chat(
        http, sim.base_url, body(STRONG, "WHICH gas do   plants take in? A) oxygen B) carbon dioxide Answer:")
    )

    # arc.test.4 normalises to the same prompt: the first row (arc.test.1) keeps it.
    assert parse_marker(answer["choices"][0]["message"]["content"]) == ("arc.test.1", STRONG, "correct")
    replay = (await stats(http, sim))["replay"]
    assert replay == {"prompts": 2, "duplicates": 1, "hits": 1, "misses": 0}


async def test_content_parts_are_read_as_the_prompt(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "split": "test"})
    parts = [{"type": "text", "text": Q2[:10]}, {"type": "text", "text": Q2[10:]}]

    status, answer = await chat(
        http, sim.base_url, {"model": STRONG, "messages": [{"role": "user", "content": parts}]}
    )

    assert status == 200
    assert parse_marker(answer["choices"][0]["message"]["content"]) == ("mbpp.test.2", STRONG, "correct")


async def test_an_unknown_prompt_or_model_is_a_404_naming_the_problem(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "split": "test"})

    for model, prompt in ((STRONG, "Something never recorded."), (STRONG, Q_TRAIN), ("other-model", Q1)):
        status, answer = await chat(http, sim.base_url, body(model, prompt))
        assert status == 404
        assert answer["error"]["code"] == "replay_prompt_not_found"
        assert model in answer["error"]["message"]
    assert (await stats(http, sim))["replay"]["misses"] == 3


async def test_unknown_prompts_can_get_a_normal_simulated_answer(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "split": "test", "unknown_prompt": "simulate"})

    status, answer = await chat(http, sim.base_url, body(STRONG, "Something never recorded."))

    assert status == 200
    assert parse_marker(answer["choices"][0]["message"]["content"]) is None
    assert answer["usage"]["completion_tokens"] > 0


async def test_max_tokens_cuts_the_recorded_answer(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path, responses: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "responses": [responses]})

    _, answer = await chat(http, sim.base_url, body(STRONG, Q2, max_tokens=3))

    assert answer["choices"][0]["message"]["content"] == CODE[:12]
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 3


async def test_streams_carry_the_same_recorded_text(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path, responses: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "responses": [responses]})
    payload = body(STRONG, Q2, stream=True, stream_options={"include_usage": True})

    async with http.post(f"{sim.base_url}/chat/completions", json=payload) as response:
        events = [json.loads(e) for e in await read_sse(response) if e != "[DONE]"]

    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c["choices"])
    assert text == CODE
    assert events[-1]["usage"]["completion_tokens"] == math.ceil(len(CODE) / 4)


async def test_logprobs_follow_the_profile_and_answer_faults_still_apply(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path, responses: Path
) -> None:
    sim = await make_sim(
        replay={"dataset": dataset, "responses": [responses]}, models={STRONG: {"confidence": -0.1}}
    )

    _, sure = await chat(http, sim.base_url, body(STRONG, Q2, logprobs=True))
    entries = sure["choices"][0]["logprobs"]["content"]
    assert "".join(e["token"] for e in entries) == CODE
    assert -0.2 < sum(e["logprob"] for e in entries) / len(entries) < 0

    await add_fault(http, sim, model=STRONG, kind="low_confidence", count=1, mean_logprob=-3.0)
    _, doubtful = await chat(http, sim.base_url, body(STRONG, Q2, logprobs=True))
    assert doubtful["choices"][0]["message"]["content"] == CODE
    entries = doubtful["choices"][0]["logprobs"]["content"]
    assert sum(e["logprob"] for e in entries) / len(entries) < -2

    await add_fault(http, sim, model=STRONG, kind="refusal", count=1)
    _, refused = await chat(http, sim.base_url, body(STRONG, Q2))
    assert refused["choices"][0]["message"]["content"] is None
    assert refused["choices"][0]["message"]["refusal"]


async def test_other_wires_replay_too(
    make_sim: MakeSim, http: aiohttp.ClientSession, dataset: Path, responses: Path
) -> None:
    sim = await make_sim(replay={"dataset": dataset, "responses": [responses]})
    payload = {"model": STRONG, "max_tokens": 100, "messages": [{"role": "user", "content": Q1}]}

    async with http.post(f"{sim.root_url}/v1/messages", json=payload) as response:
        answer = await response.json()

    assert answer["content"][0]["text"] == "B"


def test_yaml_paths_are_relative_to_the_config_file(tmp_path: Path, dataset: Path, responses: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text("replay:\n  dataset: data.csv\n  responses: [original.csv]\n  split: test\n")

    replay = load_simulator_config(config).replay

    assert replay is not None
    assert (replay.dataset, replay.responses) == (dataset, (responses,))


def test_a_missing_replay_file_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "sim.yaml"
    config.write_text("replay:\n  dataset: nowhere.csv\n")

    with pytest.raises(SimulatorConfigError, match=r"replay: .*no such file: .*nowhere\.csv"):
        load_simulator_config(config)


async def test_a_dataset_without_scores_is_refused_at_start(make_sim: MakeSim, tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "bad.csv", ["sample_id", "question"], [["1", "hi"]])

    with pytest.raises(SimulatorConfigError, match="score:<model>"):
        await make_sim(replay={"dataset": bad})
