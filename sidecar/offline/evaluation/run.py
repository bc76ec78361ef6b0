"""One evaluation, options in, report out: load and dedupe the data, score it once, measure every router.

This is the only module that strings the steps together; `turnout eval` parses flags into
EvalOptions, calls `evaluate`, and renders the EvalReport (report.py, plot.py). Every failure the
user can fix is an EvalError with a one-line message; malformed rows are a MalformedRowsError that
carries each problem with its file and line.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.offline import metrics
from sidecar.offline.evaluation.cascade import CascadeError, CascadeReport, evaluate_cascade
from sidecar.offline.evaluation.dataset import Dataset, DatasetError, RowProblem, load_dataset
from sidecar.offline.evaluation.scorer import (
    LengthScorer,
    PromptScorer,
    ScorerError,
    SuccessPredictor,
    default_router,
    load_scorer,
)

# PairReport.results holds one PairMetrics per role, in this order.
PAIR_ROLES = ("router", "random", "length", "oracle")


class EvalError(Exception):
    """Something the user can fix (bad flag, unknown model, unusable file); the message is one line."""


class MalformedRowsError(EvalError):
    def __init__(self, problems: Sequence[tuple[str, RowProblem]]) -> None:
        self.problems = tuple(problems)
        rows = len({(path, p.line) for path, p in self.problems})
        super().__init__(
            f"{rows} malformed rows ({len(self.problems)} problems); fix them or pass --skip-malformed"
        )


@dataclass(frozen=True)
class EvalOptions:
    dataset: Path
    split: str | None = None
    dedupe_against: tuple[Path, ...] = ()
    router: str | None = None  # None: scorer.default_router()
    strong: str | None = None
    weak: str | None = None
    models: tuple[str, ...] | None = None  # N-model frontier; None with no strong/weak: every costed model
    cost_per_call: Mapping[str, float] = field(default_factory=dict)  # USD, where the data has no cost
    skip_malformed: bool = False
    seed: int = 0
    cascades: tuple[str, ...] = ()  # cascade.py's spelling, e.g. "A+B@2>C"; needs answer:<model> columns
    agree: str = "choice"  # how the cascades compare answers (sidecar/execution/agreement.py)


@dataclass(frozen=True)
class PairReport:
    strong: str
    weak: str
    rows: int
    dropped: Mapping[str, int]  # reason -> rows left out of this pair
    strong_quality: float
    weak_quality: float
    strong_cost: float | None  # mean USD per row
    weak_cost: float | None
    cost_source: str
    results: tuple[metrics.PairMetrics, ...]  # one per PAIR_ROLES
    label_types: tuple[str, ...]  # distinct `label_type` values of its rows (score scales), if any


@dataclass(frozen=True)
class FrontierReport:
    models: tuple[str, ...]
    rows: int
    dropped: int
    single: tuple[metrics.ModelPoint, ...]
    router: metrics.Frontier | None  # None: the router gives one score per prompt, not per model
    oracle: metrics.Frontier
    best_single: metrics.ModelPoint  # the best quality of any one model: the 95% target's reference
    router_cost_at_95: float | None  # fraction of best_single's cost
    oracle_cost_at_95: float | None
    label_types: tuple[str, ...]


@dataclass(frozen=True)
class EvalReport:
    dataset: str
    split: str | None
    rows: int  # evaluated rows, after split, malformed and dedupe
    skipped_malformed: int
    deduplicated: int
    router: str  # the spec
    router_name: str
    router_is_default: bool
    pair: PairReport | None
    frontier: FrontierReport | None
    notes: tuple[str, ...]
    skipped_problems: tuple[tuple[str, RowProblem], ...]
    line_numbers: tuple[int, ...]
    ids: tuple[str, ...]
    router_scores: tuple[float, ...] | None  # per evaluated row; None for a SuccessPredictor-only router
    router_success: tuple[Mapping[str, float], ...] | None
    cascades: tuple[CascadeReport, ...] = ()


def evaluate(options: EvalOptions) -> EvalReport:
    data, problems, deduplicated = _load(options)
    if len(data) == 0:
        raise EvalError(f"{options.dataset}: no rows left to evaluate")
    for model in [options.strong, options.weak, *(options.models or ())]:
        if model is not None and model not in data.models:
            raise EvalError(f"unknown model {model!r}; models in {options.dataset}: {', '.join(data.models)}")
    if (options.strong is None) != (options.weak is None):
        raise EvalError("give both --strong and --weak, or neither")
    for model in options.cost_per_call:
        if model not in data.models:
            raise EvalError(f"--cost-per-call for unknown model {model!r}; models: {', '.join(data.models)}")

    spec = options.router or default_router()
    try:
        router = load_scorer(spec, seed=options.seed)
    except ScorerError as exc:
        raise EvalError(str(exc)) from None
    scores = _router_scores(router, data.prompts, options)
    success = _router_success(router, data.prompts)

    pair = None
    if options.strong is not None and options.weak is not None:
        if options.strong == options.weak:
            raise EvalError("--strong and --weak name the same model")
        if scores is None:
            assert success is not None
            scores = tuple(p[options.strong] - p[options.weak] for p in success)  # expected gain
        pair = _pair_report(data, options.strong, options.weak, np.array(scores), router.name, options)
    frontier = None
    if options.models is not None or pair is None:
        frontier = _frontier_report(data, options, success)
    try:
        cascades = tuple(
            evaluate_cascade(
                data, spec, options.agree, lambda m: _cost_array(data, m, options.cost_per_call)[0]
            )
            for spec in options.cascades
        )
    except CascadeError as exc:
        raise EvalError(str(exc)) from None

    notes: list[str] = []
    if frontier is not None and frontier.router is None:
        notes.append(
            f"router {router.name} gives one score per prompt: the N-model frontier needs a SuccessPredictor "
            "(per-model success probabilities); showing single models and the oracle only"
        )
    for part, label_types in (
        ("the pair", pair.label_types if pair else ()),
        ("the frontier", frontier.label_types if frontier else ()),
    ):
        if len(label_types) > 1:
            notes.append(
                f"the rows of {part} mix score scales (label_type: {', '.join(label_types)}): mean quality "
                "averages them; evaluate one label type at a time for meaningful quality numbers"
            )
    return EvalReport(
        dataset=str(options.dataset),
        split=options.split,
        rows=len(data),
        skipped_malformed=len({(path, p.line) for path, p in problems}),
        deduplicated=deduplicated,
        router=spec,
        router_name=router.name,
        router_is_default=options.router is None,
        pair=pair,
        frontier=frontier,
        notes=tuple(notes),
        skipped_problems=tuple(problems),
        line_numbers=data.line_numbers,
        ids=data.ids,
        router_scores=scores,
        router_success=success,
        cascades=cascades,
    )


def write_scores(report: EvalReport, path: Path) -> None:
    """One line per evaluated row, in dataset order: line, id, score (p:<model> for a SuccessPredictor)."""
    models = sorted(report.router_success[0]) if report.router_success else []
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(
            [
                "line",
                "id",
                *(["score"] if report.router_scores is not None else []),
                *[f"p:{m}" for m in models],
            ]
        )
        for i, (line, row_id) in enumerate(zip(report.line_numbers, report.ids, strict=True)):
            row: list[object] = [line, row_id]
            if report.router_scores is not None:
                row.append(repr(report.router_scores[i]))
            if report.router_success is not None:
                row.extend(repr(report.router_success[i][m]) for m in models)
            out.writerow(row)


def _load(options: EvalOptions) -> tuple[Dataset, list[tuple[str, RowProblem]], int]:
    try:
        data = load_dataset(options.dataset, split=options.split)
        references = []
        for path in options.dedupe_against:
            reference = load_dataset(path)
            splits = reference.splits()
            # Deduplicating a split against its own file means "against the other splits".
            if options.split is not None and splits is not None and _same_file(path, options.dataset):
                reference = reference.take([s != options.split for s in splits])
            references.append(reference)
    except DatasetError as exc:
        raise EvalError(str(exc)) from None
    problems = [(d.path, p) for d in (data, *references) for p in d.problems]
    if problems and not options.skip_malformed:
        raise MalformedRowsError(problems)
    before = len(data)
    for reference in references:
        data = data.dedupe_against(reference)
    return data, problems, before - len(data)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _router_scores(
    router: PromptScorer | SuccessPredictor, prompts: Sequence[str], options: EvalOptions
) -> tuple[float, ...] | None:
    if not isinstance(router, PromptScorer):
        return None
    scores = router.scores(prompts)
    if len(scores) != len(prompts):
        raise EvalError(f"router {router.name} returned {len(scores)} scores for {len(prompts)} prompts")
    bad = next((i for i, s in enumerate(scores) if not math.isfinite(s)), None)
    if bad is not None:
        raise EvalError(f"router {router.name} scored row {bad + 1} as {scores[bad]!r}, not a finite number")
    return tuple(float(s) for s in scores)


def _router_success(
    router: PromptScorer | SuccessPredictor, prompts: Sequence[str]
) -> tuple[Mapping[str, float], ...] | None:
    if not isinstance(router, SuccessPredictor):
        return None
    success = router.success(prompts)
    if len(success) != len(prompts):
        raise EvalError(
            f"router {router.name} returned {len(success)} predictions for {len(prompts)} prompts"
        )
    for i, row in enumerate(success):
        missing = [m for m in router.models if m not in row]
        if missing or not all(math.isfinite(v) for v in row.values()):
            raise EvalError(
                f"router {router.name}: row {i + 1} lacks a finite P(success) for {missing or row}"
            )
    return tuple(success)


def _cost_array(data: Dataset, model: str, table: Mapping[str, float]) -> tuple[np.ndarray | None, str]:
    """Per-row cost of a model: the dataset's cells, with --cost-per-call filling in where they are empty."""
    column, price = data.costs.get(model), table.get(model)
    if column is None:
        return (None, "none") if price is None else (np.full(len(data), price), "--cost-per-call")
    cells = np.array(column, dtype=np.float64)
    if price is None or not np.isnan(cells).any():
        return cells, "dataset"
    return np.where(np.isnan(cells), price, cells), "dataset, --cost-per-call where empty"


def _pair_report(
    data: Dataset, strong: str, weak: str, scores: np.ndarray, router_name: str, options: EvalOptions
) -> PairReport:
    q_strong = np.array(data.scores[strong], dtype=np.float64)
    q_weak = np.array(data.scores[weak], dtype=np.float64)
    c_strong, source_strong = _cost_array(data, strong, options.cost_per_call)
    c_weak, source_weak = _cost_array(data, weak, options.cost_per_call)
    if c_strong is None or c_weak is None:
        c_strong = c_weak = None  # one-sided costs cannot be compared: report shares only
        cost_source = "none (shares only)"
    else:
        cost_source = (
            source_strong
            if source_strong == source_weak
            else f"{strong}: {source_strong}; {weak}: {source_weak}"
        )

    reasons = {
        f"no score:{strong}": np.isnan(q_strong),
        f"no score:{weak}": np.isnan(q_weak),
    }
    if c_strong is not None and c_weak is not None:
        reasons[f"no cost:{strong}"] = np.isnan(c_strong)
        reasons[f"no cost:{weak}"] = np.isnan(c_weak)
    drop = np.logical_or.reduce(list(reasons.values()))
    keep = ~drop
    if not keep.any():
        raise EvalError(
            f"no row has both score:{strong} and score:{weak}"
            + (" and their costs" if c_strong is not None else "")
        )
    try:
        pair = metrics.Pair(
            strong_quality=q_strong[keep],
            weak_quality=q_weak[keep],
            strong_cost=None if c_strong is None else c_strong[keep],
            weak_cost=None if c_weak is None else c_weak[keep],
        )
    except metrics.DegeneratePairError as exc:
        raise EvalError(str(exc)) from None
    prompts = [p for p, k in zip(data.prompts, keep, strict=True) if k]
    results = (
        metrics.pair_metrics(router_name, pair, scores[keep]),
        metrics.random_metrics(pair, seed=options.seed),
        metrics.pair_metrics("length", pair, np.array(LengthScorer().scores(prompts))),
        metrics.pair_metrics("oracle", pair, metrics.oracle_scores(pair)),
    )
    return PairReport(
        strong=strong,
        weak=weak,
        rows=pair.n,
        dropped={reason: int(mask.sum()) for reason, mask in reasons.items() if mask.any()},
        strong_quality=float(pair.strong_quality.mean()),
        weak_quality=float(pair.weak_quality.mean()),
        strong_cost=None if pair.strong_cost is None else float(pair.strong_cost.mean()),
        weak_cost=None if pair.weak_cost is None else float(pair.weak_cost.mean()),
        cost_source=cost_source,
        results=results,
        label_types=_label_types(data, keep),
    )


def _frontier_report(
    data: Dataset, options: EvalOptions, success: Sequence[Mapping[str, float]] | None
) -> FrontierReport:
    costs = {m: _cost_array(data, m, options.cost_per_call)[0] for m in data.models}
    if options.models is not None:
        models = options.models
        uncosted = [m for m in models if costs[m] is None]
        if uncosted:
            raise EvalError(
                f"no cost for {', '.join(uncosted)}: the data has none; give --cost-per-call MODEL=USD"
            )
    else:
        models = tuple(m for m in data.models if costs[m] is not None)
    if len(models) < 2:
        raise EvalError(
            "the N-model frontier needs 2 or more models with both scores and costs "
            f"(found {len(models)}); use --strong/--weak, --models, or --cost-per-call"
        )
    quality = np.column_stack([np.array(data.scores[m], dtype=np.float64) for m in models])
    cost = np.column_stack([c for m in models if (c := costs[m]) is not None]).astype(np.float64)
    keep = np.asarray(np.isfinite(quality).all(axis=1) & np.isfinite(cost).all(axis=1), dtype=np.bool_)
    if not keep.any():
        raise EvalError(
            f"no row has a score and a cost for all of {', '.join(models)}; choose fewer with --models"
        )
    outcomes = metrics.Outcomes(models, quality[keep], cost[keep])

    router_frontier = None
    if success is not None:
        missing = [m for m in models if m not in success[0]]
        if missing:
            raise EvalError(f"the router predicts no success for {', '.join(missing)}")
        p = np.array([[row[m] for m in models] for row in success], dtype=np.float64)[keep]
        router_frontier = metrics.lambda_frontier("router", outcomes, p)
    oracle = metrics.lambda_frontier("oracle", outcomes, outcomes.quality)
    single = tuple(metrics.single_model_points(outcomes))
    best = max(single, key=lambda s: (s.quality, -s.cost))
    target = metrics.QUALITY_TARGET * best.quality

    def fraction(frontier: metrics.Frontier | None) -> float | None:
        cheapest = None if frontier is None else metrics.cheapest_reaching(frontier, target)
        return None if cheapest is None or best.cost <= 0 else cheapest / best.cost

    return FrontierReport(
        models=models,
        rows=int(keep.sum()),
        dropped=int((~keep).sum()),
        single=single,
        router=router_frontier,
        oracle=oracle,
        best_single=best,
        router_cost_at_95=fraction(router_frontier),
        oracle_cost_at_95=fraction(oracle),
        label_types=_label_types(data, keep),
    )


def _label_types(data: Dataset, keep: npt.NDArray[np.bool_]) -> tuple[str, ...]:
    """Scores compare only within one label type (router-train-extra's README): which ones are here."""
    column = data.columns.get("label_type")
    return () if column is None else tuple(sorted({t for t, k in zip(column, keep, strict=True) if k}))
