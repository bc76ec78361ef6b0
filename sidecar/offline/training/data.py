"""Read labelled routing data (per-prompt scores and costs of several models) into typed examples.

Two CSV layouts are read, both documented in `../shared/data`: RouterBench's compact file
(`sample_id, eval_name, split, question, score:<model>..., cost:<model>...`, every score 0/1) and
`merged_train.csv` (adds `source`, `label_type` and `dup_of_existing_subset`). Scores compare only
within a row and label type, so what "success" means is decided here, once, per label type.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REFERENCE_MODEL = "gpt-4-1106-preview"
"""The model the judged label types compare against: alpaca_eval's p_win is relative to it, and
arena-bench's judge scores are read relative to its score on the same prompt."""

RELATIVE_LABELS = frozenset({"judge_score_1to10", "p_win_vs_gpt4_1106_preview"})
ABSOLUTE_LABELS = frozenset({"binary_correctness", "binary_correctness_loglik_mc", "metric_0to1"})

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
ROUTERBENCH = DATA_ROOT / "routerbench-subset" / "compact_questions_scores_costs.csv"
MERGED = DATA_ROOT / "router-train-extra" / "merged_train.csv"
DEFAULT_FILES = (ROUTERBENCH, MERGED)


class DataError(Exception):
    """A data file is missing or not in a layout we read."""


@dataclass(frozen=True, slots=True)
class Example:
    sample_id: str
    source: str  # the `source` column, else the data folder's name (e.g. routerbench-subset)
    task: str  # eval_name
    split: str  # "train" or "test"; files without a split column are training data
    label_type: str
    question: str
    scores: Mapping[str, float]  # model -> score; models without a score on this row are absent
    costs: Mapping[str, float]  # model -> USD for this prompt, where the file has it
    dup_of: str = ""  # `dup_of_existing_subset`, e.g. "mbpp.dev.87(test)"

    def weak_suffices(self, strong: str, weak: str) -> bool | None:
        """The pair label: the weak model scores at least as well as the strong one (None: unlabelled)."""
        s, w = self.scores.get(strong), self.scores.get(weak)
        return None if s is None or w is None else w >= s

    def success(self, model: str) -> bool | None:
        """Did `model` answer acceptably? Absolute labels: score >= 0.5 (correct). Relative labels
        (judge score, win rate): at least as good as the reference model on this prompt."""
        score = self.scores.get(model)
        if score is None:
            return None
        if self.label_type in RELATIVE_LABELS:
            if self.label_type == "p_win_vs_gpt4_1106_preview":
                return score >= 0.5
            ref = self.scores.get(REFERENCE_MODEL)
            return None if ref is None else score >= ref
        return score >= 0.5


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_examples(paths: Iterable[Path]) -> list[Example]:
    out: list[Example] = []
    for p in paths:
        out += read_file(p)
    return out


def read_file(path: Path) -> list[Example]:
    if not path.is_file():
        raise DataError(f"{path}: no such data file")
    csv.field_size_limit(sys.maxsize)  # some prompts are long (few-shot, code)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        if "question" not in fields or not any(c.startswith("score:") for c in fields):
            raise DataError(f"{path}: expected a `question` column and `score:<model>` columns")
        return [_example(row, path) for row in reader]


def _example(row: Mapping[str, str], path: Path) -> Example:
    scores = {k[6:]: v for k, v in _numbers(row, "score:")}
    costs = {k[5:]: v for k, v in _numbers(row, "cost:")}
    return Example(
        sample_id=row.get("sample_id", ""),
        source=row.get("source") or path.parent.name,
        task=row.get("eval_name") or row.get("source") or path.parent.name,
        split=row.get("split") or "train",
        label_type=row.get("label_type") or "binary_correctness",
        question=row["question"],
        scores=scores,
        costs=costs,
        dup_of=row.get("dup_of_existing_subset") or "",
    )


def _numbers(row: Mapping[str, str], prefix: str) -> list[tuple[str, float]]:
    out = []
    for k, v in row.items():
        if k.startswith(prefix) and v not in ("", None):
            x = float(v)
            if not math.isnan(x):
                out.append((k, x))
    return out


_SPACE = re.compile(r"\s+")


def normalized(question: str) -> str:
    """What counts as the same question when deduplicating: case and whitespace ignored."""
    return _SPACE.sub(" ", question).strip().lower()


@dataclass(frozen=True, slots=True)
class Splits:
    train: list[Example]
    test: list[Example]  # deduplicated against train
    dropped_train: int  # training rows flagged as copies of a test question
    dropped_test: int  # test rows whose question is also in train


def split(examples: Sequence[Example]) -> Splits:
    """Train on `split == train` rows, report on `split == test` rows, with no question on both sides.

    Extra rows flagged as copies of a test question (`dup_of_existing_subset` ending in "(test)")
    leave training; then test rows whose normalized question still occurs in training leave the
    test set (RouterBench itself has 8 questions in both of its splits).
    """
    train = [e for e in examples if e.split != "test" and not e.dup_of.endswith("(test)")]
    seen = {normalized(e.question) for e in train}
    tests = [e for e in examples if e.split == "test"]
    test = [e for e in tests if normalized(e.question) not in seen]
    dropped_train = sum(1 for e in examples if e.split != "test") - len(train)
    return Splits(train, test, dropped_train, len(tests) - len(test))
