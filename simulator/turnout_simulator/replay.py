"""Replay mode: a dataset's prompts answered with each model's recorded outcome, not invented text.

With `replay:` in the config, a request to model M whose last user message matches a dataset prompt
(whitespace collapsed, case folded) is answered with what M really answered to that prompt:

- the recorded response text, when a `responses` file (RouterBench's `original/*.csv`: `sample_id`
  and `<model>|model_response`) has it, so a client sees real answers and a cascade can inspect them;
- otherwise a marker, `REPLAY:<sample_id>:<model>:correct` (or `incorrect`; `unscored` when the
  dataset has no score), so a client can still grade the answer it received.

Either way the client can grade end to end: the marker carries the verdict, and a recorded text
identifies (sample_id, model), whose score the dataset holds. Usage is counted as for any answer:
prompt tokens by the simulator's ~4 characters per token (tokens.py), completion tokens as 4-character
slices of the answer text, so the sidecar's cost (registry price x usage) follows the answer's real
length. Latency and logprobs come from the model's profile as usual; the refusal and bad_output faults
still replace the answer, and low_confidence still lowers its logprobs.

A prompt (or a model) the dataset has no outcome for is an HTTP 404 (code `replay_prompt_not_found` on
the OpenAI wire), unless `unknown_prompt: simulate` asks for a normal simulated answer: a benchmark
should fail loudly on a mismatch rather than grade invented text.

Duplicate prompts in the dataset keep the first row's outcomes; `duplicates` counts the others.
This module reads the CSV itself: the simulator imports nothing of the sidecar (whose
`normalize_prompt` this mirrors).
"""

from __future__ import annotations

import ast
import csv
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from turnout_simulator.confidence import draw_logprobs
from turnout_simulator.config import ModelProfile, ReplaySettings, SimulatorConfigError
from turnout_simulator.content import Answer
from turnout_simulator.errors import WireError
from turnout_simulator.request import ChatCall
from turnout_simulator.tokens import CHARS_PER_TOKEN

MARKER = "REPLAY"
SCORE_PREFIX = "score:"
RESPONSE_SUFFIX = "|model_response"
PROMPT_COLUMNS = ("question", "prompt")
CORRECT_AT = 0.5  # a score at or above this is "correct" in the marker (RouterBench scores are 0/1)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one model answered to one prompt: its score (None: not scored) and text (None: not kept)."""

    sample_id: str
    model: str
    score: float | None
    text: str | None

    @property
    def verdict(self) -> str:
        if self.score is None:
            return "unscored"
        return "correct" if self.score >= CORRECT_AT else "incorrect"

    @property
    def answer_text(self) -> str:
        """The recorded text, or the marker when the text was not recorded."""
        return self.text if self.text is not None else marker(self.sample_id, self.model, self.verdict)


def marker(sample_id: str, model: str, verdict: str) -> str:
    return f"{MARKER}:{sample_id}:{model}:{verdict}"


def parse_marker(text: str) -> tuple[str, str, str] | None:
    """(sample_id, model, verdict) of a marker answer, or None for any other text."""
    if not text.startswith(MARKER + ":"):
        return None
    body = text[len(MARKER) + 1 :]
    sample_id, _, rest = body.partition(":")
    model, _, verdict = rest.rpartition(":")
    return (sample_id, model, verdict) if sample_id and model and verdict else None


def normalize(prompt: str) -> str:
    """The same question with different spacing or case counts as the same question."""
    return _SPACE.sub(" ", prompt).strip().casefold()


@dataclass(slots=True)
class ReplayBook:
    """The recorded outcomes, by normalised prompt and model; counts hits and misses."""

    outcomes: dict[str, dict[str, Outcome]]  # normalised prompt -> model -> outcome
    unknown_prompt: str = "error"
    duplicates: int = 0
    hits: int = 0
    misses: int = 0
    models: tuple[str, ...] = field(default=())

    @classmethod
    def load(cls, settings: ReplaySettings) -> ReplayBook:
        """Read the dataset (and response files); SimulatorConfigError names the file and what is wrong."""
        csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # few-shot prompts exceed 128 KiB
        rows, models = _read_dataset(settings.dataset, settings.split)
        texts: dict[tuple[str, str], str] = {}
        wanted = {row["sample_id"] for row in rows}
        for path in (settings.dataset, *settings.responses):
            texts.update(_read_responses(path, wanted, models))
        outcomes: dict[str, dict[str, Outcome]] = {}
        duplicates = 0
        for row in rows:
            key = normalize(row["prompt"])
            if key in outcomes:
                duplicates += 1
                continue
            sample_id = row["sample_id"]
            outcomes[key] = {
                m: Outcome(sample_id, m, row["scores"].get(m), texts.get((sample_id, m))) for m in models
            }
        return cls(outcomes, settings.unknown_prompt, duplicates, models=models)

    def __len__(self) -> int:
        return len(self.outcomes)

    def outcome(self, call: ChatCall) -> Outcome | None:
        """The recorded outcome of `call.model` on the call's last user message, if there is one."""
        prompt = last_user_text(call.messages)
        found = self.outcomes.get(normalize(prompt)) if prompt is not None else None
        return found.get(call.model) if found is not None else None

    def answer(self, call: ChatCall, profile: ModelProfile, mean_logprob: float) -> Answer | None:
        """The replayed answer; None to simulate one instead; a 404 WireError for an unknown prompt."""
        outcome = self.outcome(call)
        if outcome is None:
            self.misses += 1
            if self.unknown_prompt == "simulate":
                return None
            raise WireError(
                404,
                f"Replay: no recorded outcome of model '{call.model}' for this prompt (the dataset has "
                f"{len(self)} prompts and models {', '.join(self.models)}).",
                param="messages",
                code="replay_prompt_not_found",
            )
        self.hits += 1
        text = outcome.answer_text
        pieces = tuple(text[i : i + CHARS_PER_TOKEN] for i in range(0, len(text), CHARS_PER_TOKEN))
        limit = min(call.max_tokens or profile.max_output_tokens, profile.context_window - call.prompt_tokens)
        cut = pieces[: max(limit, 0)]
        answer = Answer(
            pieces=cut, tool_call=None, finish_reason="length" if len(cut) < len(pieces) else "stop"
        )
        if not call.logprobs:
            return answer
        rng = random.Random(f"{outcome.sample_id}|{call.model}|replay-logprobs")
        drawn = draw_logprobs(len(cut), mean_logprob, rng)
        return replace(answer, logprobs=drawn, top_logprobs=call.top_logprobs)

    def snapshot(self) -> dict[str, int]:
        return {"prompts": len(self), "duplicates": self.duplicates, "hits": self.hits, "misses": self.misses}


def last_user_text(messages: tuple[Mapping[str, Any], ...]) -> str | None:
    """The text of the last user message (its text parts joined), or None without one."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(
                part["text"]
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
        return None
    return None


def _read_dataset(path: Path, split: str | None) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        prompt_column = next((c for c in PROMPT_COLUMNS if c in header), None)
        if prompt_column is None or "sample_id" not in header:
            raise SimulatorConfigError(
                f"{path}: replay needs a sample_id column and a question (or prompt) column"
            )
        models = tuple(c.removeprefix(SCORE_PREFIX) for c in header if c.startswith(SCORE_PREFIX))
        if not models:
            raise SimulatorConfigError(f"{path}: replay needs score:<model> columns")
        if split is not None and "split" not in header:
            raise SimulatorConfigError(f"{path}: replay.split is {split!r}, but the file has no split column")
        rows = []
        for record in reader:
            if split is not None and record.get("split") != split:
                continue
            scores = {m: _score(record.get(SCORE_PREFIX + m), path, reader.line_num) for m in models}
            rows.append(
                {
                    "sample_id": record["sample_id"],
                    "prompt": record[prompt_column] or "",
                    "scores": {m: s for m, s in scores.items() if s is not None},
                }
            )
    if not rows:
        raise SimulatorConfigError(f"{path}: no rows" + (f" in split {split!r}" if split else ""))
    return rows, models


def _score(value: str | None, path: Path, line: int) -> float | None:
    if value is None or value.strip().lower() in ("", "nan", "null", "none"):
        return None
    try:
        score = float(value)
    except ValueError:
        raise SimulatorConfigError(f"{path}: line {line}: score {value!r} is not a number") from None
    return None if math.isnan(score) else score


def _read_responses(path: Path, wanted: set[str], models: tuple[str, ...]) -> dict[tuple[str, str], str]:
    """(sample_id, model) -> recorded text, from the `<model>|model_response` columns (if any)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        columns = {m: m + RESPONSE_SUFFIX for m in models if m + RESPONSE_SUFFIX in header}
        if not columns:
            return {}
        if "sample_id" not in header:
            raise SimulatorConfigError(f"{path}: response columns need a sample_id column")
        out: dict[tuple[str, str], str] = {}
        for record in reader:
            sample_id = record["sample_id"]
            if sample_id not in wanted:
                continue
            for model, column in columns.items():
                raw = record.get(column)
                if raw is not None:
                    out[(sample_id, model)] = _response_text(raw)
    return out


def _response_text(raw: str) -> str:
    """RouterBench keeps each response as a Python list literal of one string: `['A']`."""
    if raw.startswith("[") and raw.endswith("]"):
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            return raw
        if isinstance(value, list):
            return str(value[0]) if value else ""
    return raw
