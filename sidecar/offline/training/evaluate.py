"""Held-out figures for a way of representing prompts: out-of-fold, leave-one-source-out, leave-one-task-out.

Everything here uses training rows only, so it is what model selection and calibration may look
at. The test split is scored once, by `train.py`, for the report. An `Encoder` turns prompts into
a matrix given the training prompts of one fit (the n-gram vocabulary is rebuilt per fit, so a
held-out source's words are never in the vocabulary that scores it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from sidecar.offline.metrics import DegeneratePairError, Pair, PairMetrics, pair_metrics
from sidecar.offline.training.data import ABSOLUTE_LABELS, Example, normalized
from sidecar.offline.training.fit import FeatureCache, Vocabulary, fit_logistic
from sidecar.offline.training.labels import Labelled

Matrix: TypeAlias = csr_matrix | npt.NDArray[np.float64]
Scores: TypeAlias = Sequence[float] | npt.NDArray[np.float64]
Transform = Callable[[Sequence[str]], Matrix]


class Encoder(Protocol):
    name: str

    def fit(self, texts: Sequence[str]) -> Transform: ...


class NgramEncoder:
    def __init__(self, cache: FeatureCache, min_df: int, max_features: int) -> None:
        self.name = "ngram"
        self._cache, self._min_df, self._max = cache, min_df, max_features

    def fit(self, texts: Sequence[str]) -> Transform:
        vocab = self.vocabulary(texts)
        return lambda xs: vocab.matrix([self._cache(t) for t in xs])

    def vocabulary(self, texts: Sequence[str]) -> Vocabulary:
        return Vocabulary.build([self._cache(t) for t in texts], self._min_df, self._max)


Predictor = Callable[[Sequence[Example]], npt.NDArray[np.float64]]


def fit_rows(rows: Sequence[Labelled], encoder: Encoder, c: float) -> Predictor:
    texts = [r.example.question for r in rows]
    transform = encoder.fit(texts)
    model = fit_logistic(transform(texts), [r.label for r in rows], [r.weight for r in rows], c)
    return lambda exs: model.predict(transform([e.question for e in exs]))


def task_kind(e: Example) -> str:
    """Task names as one kind across sources (llmrouter's arc_challenge is RouterBench's arc-challenge)."""
    return e.task.lower().replace("_", "-")


def folds(rows: Sequence[Labelled], k: int, seed: int) -> npt.NDArray[np.int64]:
    """A fold per row; copies of one question share a fold, so no question is on both sides."""
    questions = sorted({normalized(r.example.question) for r in rows})
    order = np.random.default_rng(seed).permutation(len(questions))
    fold_of = {q: int(order[i]) % k for i, q in enumerate(questions)}
    return np.asarray([fold_of[normalized(r.example.question)] for r in rows], dtype=np.int64)


def is_calibration_row(r: Labelled) -> bool:
    """Rows the calibration table is computed on: the target pair, 0/1 scores, real costs of both."""
    e = r.example
    return r.target and e.label_type in ABSOLUTE_LABELS and r.weak in e.costs and r.strong in e.costs


def pair_of(rows: Sequence[Labelled]) -> Pair:
    """The rows' outcomes for `sidecar.offline.metrics` (costs only if every row has both)."""
    e = [r.example for r in rows]
    with_costs = all(r.weak in x.costs and r.strong in x.costs for x, r in zip(e, rows, strict=True))

    def col(values: list[float]) -> npt.NDArray[np.float64]:
        return np.asarray(values, dtype=np.float64)

    return Pair(
        strong_quality=col([x.scores[r.strong] for x, r in zip(e, rows, strict=True)]),
        weak_quality=col([x.scores[r.weak] for x, r in zip(e, rows, strict=True)]),
        strong_cost=col([x.costs[r.strong] for x, r in zip(e, rows, strict=True)]) if with_costs else None,
        weak_cost=col([x.costs[r.weak] for x, r in zip(e, rows, strict=True)]) if with_costs else None,
    )


def figures(rows: Sequence[Labelled], p: Scores) -> dict[str, Any]:
    """AUC of the pair label and the routing figures (APGR, CPT, cost at 95%) on these rows.

    `p` is P(weak suffices); the evaluator's convention is the opposite (higher = strong), so 1 - p.
    """
    y = [r.label for r in rows]
    out: dict[str, Any] = {"rows": len(rows), "weak_suffices_rate": round(float(np.mean(y)), 4)}
    out["auc"] = round(float(roc_auc_score(y, p)), 4) if 0 < sum(y) < len(y) else None
    out |= routing(
        pair_of(rows), lambda pair: pair_metrics("learned", pair, 1.0 - np.asarray(p, dtype=np.float64))
    )
    return out


def routing(pair: Pair, compute: Callable[[Pair], PairMetrics]) -> dict[str, Any]:
    try:
        m = compute(pair)
    except DegeneratePairError:
        return {"apgr": None, "cpt50": None, "cpt80": None, "cost_at_95": None}
    return {
        "apgr": _r(m.apgr),
        "cpt50": _r(m.cpt50),
        "cpt80": _r(m.cpt80),
        "cost_at_95": _r(m.cost_at_95),
        "weak_quality": _r(float(np.mean(pair.weak_quality))),
        "strong_quality": _r(float(np.mean(pair.strong_quality))),
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


@dataclass(frozen=True, slots=True)
class HeldOut:
    oof: npt.NDArray[np.float64]  # out-of-fold P(weak suffices) for every target-pair row
    report: dict[str, Any]


def held_out(
    rows: Sequence[Labelled], encoder: Encoder, c: float, k: int, seed: int, probes: Sequence[Labelled] = ()
) -> HeldOut:
    """Out-of-fold figures on the target pair, then whole sources and whole tasks left out.

    `probes` are rows of sources that do not train (their own pairs' labels): the model fitted on
    every training row scores them, per source, as the plainest test of unseen kinds of prompts.
    """
    target = [r for r in rows if r.target]
    proxies = [r for r in rows if not r.target]
    # Out-of-fold over the target rows; proxies always train (they are never scored here).
    fold = folds(target, k, seed)
    oof = np.zeros(len(target))
    for f in range(k):
        inside = [r for r, g in zip(target, fold, strict=True) if g != f] + proxies
        held = np.nonzero(fold == f)[0]
        oof[held] = fit_rows(inside, encoder, c)([target[i].example for i in held])
    calib = [i for i, r in enumerate(target) if is_calibration_row(r)]
    report: dict[str, Any] = {
        "out_of_fold_target_pair": figures(target, oof),
        "out_of_fold_calibration_rows": figures([target[i] for i in calib], oof[calib]),
        "leave_one_source_out": {},
        "leave_one_task_out": {},
    }
    for source in sorted({r.example.source for r in rows}):
        inside = [r for r in rows if r.example.source != source]
        out = [r for r in rows if r.example.source == source]
        if not inside:
            continue  # a single source: nothing to train on without it
        report["leave_one_source_out"][source] = figures(
            out, fit_rows(inside, encoder, c)([r.example for r in out])
        )
    # Unseen kinds of prompts: each task of the target pair's 0/1 data, removed from every source.
    for task in sorted({task_kind(target[i].example) for i in calib}):
        inside = [r for r in rows if task_kind(r.example) != task]
        out = [target[i] for i in calib if task_kind(target[i].example) == task]
        if not inside:
            continue
        report["leave_one_task_out"][task] = figures(
            out, fit_rows(inside, encoder, c)([r.example for r in out])
        )
    if probes:
        fitted = fit_rows(rows, encoder, c)
        report["unseen_sources"] = {}
        for source in sorted({r.example.source for r in probes}):
            out = [r for r in probes if r.example.source == source]
            report["unseen_sources"][source] = figures(out, fitted([r.example for r in out]))
        report["unseen_sources_mean_auc"] = _mean(report["unseen_sources"], "auc")
    report["leave_one_source_out_mean_auc"] = _mean(report["leave_one_source_out"], "auc")
    report["leave_one_task_out_mean_apgr"] = _mean(report["leave_one_task_out"], "apgr")
    return HeldOut(oof, report)


def _mean(by: dict[str, dict[str, Any]], key: str) -> float | None:
    vals = [v[key] for v in by.values() if v.get(key) is not None]
    return round(float(np.mean(vals)), 4) if vals else None
