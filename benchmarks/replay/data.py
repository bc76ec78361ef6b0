"""The prompts the money bench sends: RouterBench's test split, each with its recorded outcomes.

Rows are read with the evaluation loader (sidecar/offline/evaluation/dataset.py) and deduplicated against
the train split as `turnout eval --dedupe-against` does. A question repeated within the test split
keeps its first row only, as the simulator's replay does. A row without every model's score is
dropped, so that every route is graded on the same prompts. The original prompt (RouterBench
`original/*.csv`) is the question preceded by instructions and, for ARC and Winogrande, five solved
examples. That part becomes the request's `context`, so the models are asked exactly what they
answered.
"""

from __future__ import annotations

import ast
import csv
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.offline.evaluation.dataset import load_dataset, normalize_prompt


@dataclass(frozen=True, slots=True)
class Prompt:
    sample_id: str
    task: str  # eval_name: arc-challenge, winogrande, mbpp
    question: str  # the last user message: what the router reads and was trained on
    context: str  # what the original prompt carried before the question ("" when nothing)
    scores: Mapping[str, float]  # model -> recorded score (0/1)
    recorded_cost: Mapping[str, float]  # model -> USD RouterBench recorded for the call (NaN: none)

    def messages(self) -> list[dict[str, str]]:
        """The request as the provider sees it (OpenAI shape), for counting its tokens offline."""
        head = [{"role": "system", "content": self.context}] if self.context else []
        return [*head, {"role": "user", "content": self.question}]


@dataclass(frozen=True)
class PromptSet:
    prompts: tuple[Prompt, ...]
    facts: dict[str, int] = field(default_factory=dict)  # rows read and dropped, and why


def load_prompts(data: Path, original: Path | None, models: Sequence[str]) -> PromptSet:
    """The test split, without rows whose question is in train, repeated, or unscored for a model."""
    test = load_dataset(data, split="test")
    deduped = test.dedupe_against(load_dataset(data, split="train"))
    contexts = _original_prompts(original) if original is not None and original.is_dir() else {}
    tasks = deduped.columns.get("eval_name", ("",) * len(deduped))
    prompts: list[Prompt] = []
    seen: set[str] = set()
    repeated = unscored = 0
    for i, question in enumerate(deduped.prompts):
        key = normalize_prompt(question)
        if key in seen:
            repeated += 1
            continue
        seen.add(key)
        scores = {m: deduped.scores[m][i] for m in models}
        if any(math.isnan(s) for s in scores.values()):
            unscored += 1
            continue
        costs = {m: (c[i] if (c := deduped.costs.get(m)) is not None else math.nan) for m in models}
        full = contexts.get(deduped.ids[i], "")
        context = full[: -len(question)].rstrip() if full.endswith(question) else ""
        prompts.append(Prompt(deduped.ids[i], tasks[i], question, context, scores, costs))
    facts = {
        "test_rows": len(test),
        "dropped_in_train": len(test) - len(deduped),
        "dropped_repeated": repeated,
        "dropped_unscored": unscored,
        "prompts": len(prompts),
        "with_context": sum(bool(p.context) for p in prompts),
        "malformed_rows": len(test.problems),
    }
    return PromptSet(tuple(prompts), facts)


def _original_prompts(original: Path) -> dict[str, str]:
    """sample_id -> the original prompt (RouterBench keeps it as a list literal of one string)."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    out: dict[str, str] = {}
    for path in sorted(original.glob("*_test.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                value = ast.literal_eval(row["prompt"])
                out[row["sample_id"]] = str(value[0]) if isinstance(value, list) and value else ""
    return out


def stratified_sample(prompts: Sequence[Prompt], size: int, seed: int) -> list[Prompt]:
    """`size` prompts, each task in proportion (largest remainders), seeded, in the data's order."""
    if size >= len(prompts):
        return list(prompts)
    by_task: dict[str, list[int]] = {}
    for i, p in enumerate(prompts):
        by_task.setdefault(p.task, []).append(i)
    exact = {t: size * len(ix) / len(prompts) for t, ix in by_task.items()}
    counts = {t: int(x) for t, x in exact.items()}
    for t in sorted(exact, key=lambda t: counts[t] - exact[t])[: size - sum(counts.values())]:
        counts[t] += 1
    rng = random.Random(seed)
    chosen = sorted(i for t, ix in sorted(by_task.items()) for i in rng.sample(ix, counts[t]))
    return [prompts[i] for i in chosen]
