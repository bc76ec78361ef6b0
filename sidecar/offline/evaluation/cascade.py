"""Cascades replayed on recorded answers: their quality and cost, beside the routers' in one report.

A router decides from the prompt; a cascade decides from the answers, so it can be evaluated offline
only where the data records every model's answer: `answer:<model>` columns (the text that model
gave). Each stage's models "answer" with their recorded text and the stage accepts or escalates
with the code that serves (sidecar/execution/agreement.py). Every model a stage asks is paid for,
accepted or not; the quality is the recorded score of the answer returned.

A cascade is written `A+B+C@2>D`: stages separated by `>`; a stage's models, joined by `+`, answer
at once and `@N` of them must agree (default: all of them); the last stage is one model whose answer
is returned as it is, as the executor's last stage. A one-model stage accepts an answer that has
the form `agree` reads (a choice letter, a number, ...), as a plain `cascade` with
`expected_patterns` does; so `A>D` is the plain cascade and `A+B>D` the consensus route.

Its curve: the first stage's `@N` from all of its models down to one, the same cascade asking for
less agreement each step (cheaper, fewer escalations).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sidecar.execution.agreement import KINDS, tally
from sidecar.offline.evaluation.dataset import Dataset

ANSWER_PREFIX = "answer:"


class CascadeError(ValueError):
    """A cascade the data or its spelling cannot support; the message is one line."""


@dataclass(frozen=True, slots=True)
class CascadeStage:
    models: tuple[str, ...]
    need: int  # how many of `models` must agree


@dataclass(frozen=True, slots=True)
class Cascade:
    spec: str  # as written
    stages: tuple[CascadeStage, ...]  # every stage but the last
    top: str  # the last stage's one model

    @property
    def models(self) -> tuple[str, ...]:
        return (*(m for s in self.stages for m in s.models), self.top)


@dataclass(frozen=True, slots=True)
class CascadePoint:
    need: int  # the first stage's @N
    quality: float  # mean recorded score of the answers returned
    cost: float  # mean USD per row, every call counted
    escalated: float  # share of rows the first stage passed on


@dataclass(frozen=True)
class CascadeReport:
    spec: str
    agree: str
    rows: int
    dropped: int  # rows without a score and a cost for every model of the cascade
    point: CascadePoint  # the cascade as written
    curve: tuple[CascadePoint, ...]  # first stage's @N from all its models down to 1
    top_quality: float  # the last stage's model alone, on the same rows
    top_cost: float


def parse_cascade(spec: str) -> Cascade:
    parts = [p.strip() for p in spec.split(">")]
    if len(parts) < 2 or not all(parts):
        raise CascadeError(f"cascade {spec!r}: write stages as A+B@N>C (two stages or more, '>' between)")
    stages = tuple(_stage(spec, p) for p in parts[:-1])
    top = parts[-1]
    if "+" in top or "@" in top:
        raise CascadeError(f"cascade {spec!r}: the last stage is one model, not {top!r}")
    named = [*(m for s in stages for m in s.models), top]
    if len(set(named)) != len(named):
        raise CascadeError(f"cascade {spec!r}: a model appears twice")
    return Cascade(spec, stages, top)


def _stage(spec: str, text: str) -> CascadeStage:
    names, _, need_text = text.partition("@")
    models = tuple(m.strip() for m in names.split("+"))
    if not all(models):
        raise CascadeError(f"cascade {spec!r}: an empty model name in {text!r}")
    try:
        need = int(need_text) if need_text else len(models)
    except ValueError:
        need = 0
    if not 1 <= need <= len(models):
        raise CascadeError(f"cascade {spec!r}: @{need_text} must be a whole number from 1 to {len(models)}")
    return CascadeStage(models, need)


def evaluate_cascade(
    data: Dataset, spec: str, agree: str, cost_of: Callable[[str], np.ndarray | None]
) -> CascadeReport:
    """Replay `spec` over the rows where every model of it has a score, a cost and an answer column."""
    if agree not in KINDS:
        raise CascadeError(f"agreement {agree!r} is none of {', '.join(KINDS)}")
    cascade = parse_cascade(spec)
    for m in cascade.models:
        if m not in data.models:
            raise CascadeError(f"cascade {spec!r}: unknown model {m!r}; models: {', '.join(data.models)}")
        if ANSWER_PREFIX + m not in data.columns:
            raise CascadeError(f"cascade {spec!r}: no {ANSWER_PREFIX}{m} column: a cascade needs the answers")
    quality = {m: np.array(data.scores[m], dtype=np.float64) for m in cascade.models}
    cost: dict[str, np.ndarray] = {}
    for m in cascade.models:
        column = cost_of(m)
        if column is None:
            raise CascadeError(f"cascade {spec!r}: no cost for {m}; give --cost-per-call {m}=USD")
        cost[m] = column
    keep = np.logical_and.reduce([np.isfinite(quality[m]) & np.isfinite(cost[m]) for m in cascade.models])
    if not keep.any():
        raise CascadeError(f"cascade {spec!r}: no row has a score and a cost for every one of its models")
    rows = np.flatnonzero(keep)
    answers = {m: [_answer(data.columns[ANSWER_PREFIX + m][i]) for i in rows] for m in cascade.models}
    quality = {m: q[rows] for m, q in quality.items()}
    cost = {m: c[rows] for m, c in cost.items()}

    def at(need: int) -> CascadePoint:
        first = CascadeStage(cascade.stages[0].models, need)
        stages = (first, *cascade.stages[1:])
        return _replay(stages, cascade.top, agree, answers, quality, cost)

    voters = len(cascade.stages[0].models)
    return CascadeReport(
        spec=spec,
        agree=agree,
        rows=len(rows),
        dropped=len(data) - len(rows),
        point=at(cascade.stages[0].need),
        curve=tuple(at(n) for n in range(voters, 0, -1)),
        top_quality=float(quality[cascade.top].mean()),
        top_cost=float(cost[cascade.top].mean()),
    )


def _answer(cell: str) -> str | None:
    """A recorded answer; an empty cell is no answer (the model gave nothing: no vote)."""
    return cell if cell.strip() else None


def _replay(
    stages: Sequence[CascadeStage],
    top: str,
    agree: str,
    answers: Mapping[str, Sequence[str | None]],
    quality: Mapping[str, np.ndarray],
    cost: Mapping[str, np.ndarray],
) -> CascadePoint:
    n = len(quality[top])
    got, paid, passed = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    for i in range(n):
        for index, stage in enumerate(stages):
            paid[i] += sum(cost[m][i] for m in stage.models)  # every voter is paid, accepted or not
            verdict = tally([(m, answers[m][i]) for m in stage.models], agree, stage.need)
            if verdict.accepted is not None:
                got[i] = quality[stage.models[verdict.accepted]][i]
                break
            passed[i] |= index == 0
        else:
            got[i] = quality[top][i]
            paid[i] += cost[top][i]
    return CascadePoint(stages[0].need, float(got.mean()), float(paid.mean()), float(passed.mean()))
