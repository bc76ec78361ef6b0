"""RouterBench's recorded answers as arrays: per prompt, every model's answer text, score and cost.

Reads `original/*.csv` (train and test) of the shared RouterBench subset. Test rows whose question is
also in train are dropped, as are rows without every model's score, so that every policy is graded
on the same prompts (the money bench's rule, benchmarks/replay/data.py). Research only: the numbers
go to docs/decisions/05x-*.md, nothing here runs in the sidecar.
"""

from __future__ import annotations

import ast
import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sidecar.offline.training.data import DATA_ROOT

# A worktree is not beside shared/: TURNOUT_DATA_ROOT points at shared/data from anywhere.
ROOT = Path(os.environ.get("TURNOUT_DATA_ROOT", DATA_ROOT))
ORIGINAL = ROOT / "routerbench-subset" / "original"
FILES = {"arc-challenge": "arc_challenge", "winogrande": "winograde", "mbpp": "mbpp"}
FRONTIER = "gpt-4-1106-preview"


@dataclass(frozen=True)
class Recorded:
    """Rows of one split: `answers[m][i]` is model m's raw answer to prompt i."""

    ids: list[str]
    tasks: np.ndarray  # eval_name per row
    questions: list[str]  # the real question (last block of the prompt)
    models: list[str]
    answers: dict[str, list[str]]
    scores: dict[str, np.ndarray]  # 0/1
    costs: dict[str, np.ndarray]  # recorded USD

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask: np.ndarray) -> Recorded:
        idx = np.flatnonzero(mask)
        return Recorded(
            [self.ids[i] for i in idx],
            self.tasks[idx],
            [self.questions[i] for i in idx],
            self.models,
            {m: [a[i] for i in idx] for m, a in self.answers.items()},
            {m: s[idx] for m, s in self.scores.items()},
            {m: c[idx] for m, c in self.costs.items()},
        )


def _question(prompt: str, task: str) -> str:
    return prompt if task == "mbpp" else prompt.strip().split("\n\n")[-1]


def _text(cell: str) -> str:
    try:
        value = ast.literal_eval(cell)
    except (ValueError, SyntaxError):
        return cell
    return str(value[0]) if isinstance(value, list) and value else str(value)


def _read(split: str) -> list[dict[str, str]]:
    csv.field_size_limit(2**31 - 1)
    rows: list[dict[str, str]] = []
    for task, stem in FILES.items():
        with (ORIGINAL / f"{stem}_{split}.csv").open(newline="", encoding="utf-8") as f:
            rows += [{**r, "eval_name": task} for r in csv.DictReader(f)]
    return rows


def _norm(q: str) -> str:
    return re.sub(r"\s+", " ", q).strip().lower()


def load(split: str, exclude: set[str] | None = None) -> Recorded:
    rows = _read(split)
    models = sorted(k.split("|")[0] for k in rows[0] if k.endswith("|total_cost"))
    kept = []
    seen = set(exclude or ())
    for r in rows:
        q = _question(_text(r["prompt"]), r["eval_name"])
        key = _norm(q)
        if key in seen or any(r[m] in ("", "nan") or math.isnan(float(r[m])) for m in models):
            continue
        seen.add(key)
        kept.append((r, q))
    return Recorded(
        [r["sample_id"] for r, _ in kept],
        np.array([r["eval_name"] for r, _ in kept]),
        [q for _, q in kept],
        models,
        {m: [_text(r[f"{m}|model_response"]) for r, _ in kept] for m in models},
        {m: np.array([float(r[m]) for r, _ in kept]) for m in models},
        {m: np.array([float(r[f"{m}|total_cost"] or "nan") for r, _ in kept]) for m in models},
    )


def train_test() -> tuple[Recorded, Recorded]:
    train = load("train")
    test = load("test", exclude={_norm(q) for q in train.questions})
    return train, test
