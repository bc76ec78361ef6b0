"""`turnout train`: fit the router on training data, calibrate it, score the test split, build the artifact.

    read -> split (test deduplicated against train) -> pair rows (target pair + weighted proxies)
      -> held-out figures (out-of-fold, leave-one-source-out, leave-one-task-out)
      -> calibration table from the out-of-fold predictions
      -> final pair head and one success head per model, on all training rows
      -> test-split figures against a random router and the length heuristic (report only)

Deterministic: the seed fixes the folds and the random baseline; lbfgs has no randomness; the
vocabulary is ordered by text; the artifact is written with sorted keys and no timestamp.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.offline.metrics import pair_metrics, random_metrics
from sidecar.offline.training.artifact import WEIGHT_DIGITS
from sidecar.offline.training.calibrate import Outcomes
from sidecar.offline.training.data import Example, file_digest, read_examples, split
from sidecar.offline.training.evaluate import (
    NgramEncoder,
    Scores,
    figures,
    held_out,
    is_calibration_row,
    pair_of,
    routing,
)
from sidecar.offline.training.fit import FeatureCache, Linear, fit_logistic
from sidecar.offline.training.labels import PROXY_PAIRS, Labelled, pair_rows, success_rows
from sidecar.policy.classifier import LengthClassifier
from sidecar.policy.learned import (
    FORMAT,
    FORMAT_VERSION,
    PAIR_HEAD,
    CalibrationPoint,
    Familiarity,
    FeatureConfig,
    coverage,
    resolve_threshold,
)
from sidecar.policy.specs import Target

STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/mixtral-8x7b-chat"
SUCCESS_MODELS = (
    # The 11 RouterBench models: every one is labelled on the same RouterBench prompts, so their
    # predicted successes compare; each head also learns from any other source that labels it.
    "WizardLM/WizardLM-13B-V1.2",
    "claude-instant-v1",
    "claude-v1",
    "claude-v2",
    "gpt-3.5-turbo-1106",
    "gpt-4-1106-preview",
    "meta/code-llama-instruct-34b-chat",
    "meta/llama-2-70b-chat",
    "mistralai/mistral-7b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
)
REPORTED_TARGETS = (
    Target("quality", 0.9),
    Target("quality", 0.95),
    Target("quality", 0.98),
    Target("cost", 0.3),
    Target("cost", 0.5),
)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    strong: str = STRONG
    weak: str = WEAK
    seed: int = 7
    features: FeatureConfig = field(default_factory=FeatureConfig)
    min_df: int = 3
    max_features: int = 20_000
    c: float = 3.0  # inverse L2 strength, chosen on held-out training data (docs/router.md)
    # Other sources' own pairs as extra labels, at this weight. 0: held-out figures were better
    # without them (docs/router.md); they then serve as unseen-source tests instead.
    proxy_weight: float = 0.0
    folds: int = 5
    # A prompt whose coverage (learned.coverage) is below this quantile of the training prompts'
    # own is unfamiliar: the safety net measured leave-one-source-out in docs/decisions/059.
    unfamiliar_quantile: float = 0.05
    success_models: tuple[str, ...] = SUCCESS_MODELS
    name: str = "router-v1"


@dataclass(frozen=True, slots=True)
class Trained:
    artifact: dict[str, Any]
    report: dict[str, Any]


def train(config: TrainConfig, paths: Sequence[Path]) -> Trained:
    examples = read_examples(paths)
    splits = split(examples)
    rows = pair_rows(splits.train, config.strong, config.weak, config.proxy_weight)
    if not any(r.target for r in rows):
        raise ValueError(f"no training row labels both {config.strong!r} and {config.weak!r}")
    cache = FeatureCache(config.features)
    encoder = NgramEncoder(cache, config.min_df, config.max_features)

    # Sources that only label other pairs do not train when proxy_weight is 0; they still test.
    probes = [r for r in pair_rows(splits.train, config.strong, config.weak, 1.0) if not r.target]
    probes = probes if config.proxy_weight == 0 else []
    held = held_out(rows, encoder, config.c, config.folds, config.seed, probes)
    target = [r for r in rows if r.target]
    calib = [i for i, r in enumerate(target) if is_calibration_row(r)]
    calibration = _outcomes([target[i] for i in calib], held.oof[calib]).table()

    texts = [r.example.question for r in rows]
    vocab = encoder.vocabulary(texts)
    x = vocab.matrix([cache(t) for t in texts])
    heads = {PAIR_HEAD: fit_logistic(x, [r.label for r in rows], [r.weight for r in rows], config.c)}
    success_counts = {}
    for model in config.success_models:
        srows = success_rows(splits.train, model)
        if len({r.label for r in srows}) < 2:
            continue  # unlabelled here (or one outcome only): this data cannot say when it succeeds
        success_counts[model] = len(srows)
        sx = vocab.matrix([cache(r.example.question) for r in srows])
        heads["success:" + model] = fit_logistic(sx, [r.label for r in srows], [1.0] * len(srows), config.c)
    trained = tuple(success_counts)

    def predict(head: str, exs: Sequence[Example]) -> npt.NDArray[np.float64]:
        return heads[head].predict(vocab.matrix([cache(e.question) for e in exs]))

    report: dict[str, Any] = {
        "config": _config_json(config),
        "data": _data_json(paths, examples),
        "rows": {
            "train": len(splits.train),
            "train_dropped_as_test_copies": splits.dropped_train,
            "test": len(splits.test),
            "test_dropped_as_train_duplicates": splits.dropped_test,
            "pair_target": len(target),
            "pair_proxy": len(rows) - len(target),
            "calibration": len(calib),
            "success_heads": success_counts,
        },
        "held_out": held.report,
    }
    report["test"] = _test_report(config, splits.test, lambda exs: predict(PAIR_HEAD, exs), calibration)
    report["test"]["n_model"] = _n_model_report(trained, splits.train, splits.test, predict)
    doc = _artifact(config, trained, vocab.terms, heads, calibration, report)
    known = frozenset(doc["vocabulary"])  # what serving will know: the artifact's, not the fit's
    familiarity = _familiarity(
        config, [coverage(cache(t), known) for t in texts], held.oof[calib], [target[i] for i in calib]
    )
    doc["familiarity"] = familiarity.to_json()
    report["test"]["unfamiliar"] = _unfamiliar_report(config, splits.test, predict, familiarity, known, cache)
    return Trained(doc, report)


QUANTILES = 100  # steps of the score distributions the artifact keeps for on_pair_scale


def _familiarity(
    config: TrainConfig, coverages: Sequence[float], oof: Scores, calib: Sequence[Labelled]
) -> Familiarity:
    """The coverage floor, and the out-of-fold pair score's and the length score's distributions on
    the calibration rows (the rows whose thresholds a route's target resolves to)."""
    qs = np.linspace(0.0, 1.0, QUANTILES + 1)
    lengths = [length_score(r.example.question) for r in calib]
    return Familiarity(
        round(float(np.quantile(coverages, config.unfamiliar_quantile)), 6),
        config.unfamiliar_quantile,
        tuple(round(float(v), 6) for v in np.quantile(np.asarray(oof), qs)),
        tuple(round(float(v), 6) for v in np.quantile(np.asarray(lengths), qs)),
    )


def _unfamiliar_report(
    config: TrainConfig,
    test: Sequence[Example],
    predict: Any,
    familiarity: Familiarity,
    known: frozenset[str],
    cache: FeatureCache,
) -> dict[str, Any]:
    """On the (in-domain) test split: how many prompts count as unfamiliar, and what the length
    fallback does to the routing figures there (it should cost little where the router is at home)."""
    rows = _test_rows(config, test)
    if not rows:
        return {"rows": 0}
    exs = [r.example for r in rows]
    p = np.asarray(predict(PAIR_HEAD, exs))
    unfamiliar = np.array([coverage(cache(e.question), known) < familiarity.min_coverage for e in exs])
    mapped = np.array([familiarity.on_pair_scale(length_score(e.question)) for e in exs])
    return {
        "rows": len(rows),
        "min_coverage": familiarity.min_coverage,
        "unfamiliar_share": round(float(unfamiliar.mean()), 4),
        "with_length_fallback": figures(rows, np.where(unfamiliar, mapped, p)),
    }


def _outcomes(rows: Sequence[Labelled], p: Scores) -> Outcomes:
    e = [r.example for r in rows]
    return Outcomes.of(
        p,
        [x.scores[r.weak] for x, r in zip(e, rows, strict=True)],
        [x.scores[r.strong] for x, r in zip(e, rows, strict=True)],
        [x.costs[r.weak] for x, r in zip(e, rows, strict=True)],
        [x.costs[r.strong] for x, r in zip(e, rows, strict=True)],
    )


def length_score(text: str) -> float:
    """The built-in `length` classifier on a one-message request: the heuristic baseline."""
    request = ChatRequest(messages=(Message(Role.USER, (TextPart(text),)),))
    return _LENGTH.predict(request)


_LENGTH = LengthClassifier()


def _test_report(
    config: TrainConfig,
    test: Sequence[Example],
    predict: Any,
    calibration: list[list[float]],
) -> dict[str, Any]:
    """The deduplicated test split of the target pair: learned vs random vs length; targets checked."""
    rows = _test_rows(config, test)
    if not rows:
        return {"rows": 0}
    exs = [r.example for r in rows]
    p = predict(exs)
    out: dict[str, Any] = {"learned": figures(rows, p)}
    out["length_heuristic"] = figures(rows, [length_score(e.question) for e in exs])
    # The literature's baseline too: longer prompts to the strong model, by characters alone.
    chars = np.asarray([float(len(e.question)) for e in exs])
    out["length_chars"] = routing(pair_of(rows), lambda pair: pair_metrics("length", pair, chars))
    c = out["learned"]
    cols = _outcomes(rows, p)
    out["random"] = routing(pair_of(rows), lambda pair: random_metrics(pair, seed=config.seed, seeds=50))
    by_task: dict[str, Any] = {}
    for task in sorted({e.task for e in exs}):
        idx = [i for i, e in enumerate(exs) if e.task == task]
        by_task[task] = figures([rows[i] for i in idx], p[idx])
    out["learned_by_task"] = by_task
    points = [CalibrationPoint(*row) for row in calibration]
    out["targets"] = {
        str(t): {"calibrated": _resolve(points, t), **cols.achieved(_resolve(points, t)["threshold"])}
        for t in REPORTED_TARGETS
    }
    out["rows"] = c["rows"]
    return out


def _test_rows(config: TrainConfig, test: Sequence[Example]) -> list[Labelled]:
    """The test split's rows that label the target pair."""
    return [
        Labelled(e, y, 1.0, True, config.strong, config.weak)
        for e in test
        if (y := e.weak_suffices(config.strong, config.weak)) is not None
    ]


def _resolve(points: list[Any], target: Target) -> dict[str, float]:
    t = resolve_threshold(points, target)
    row = next((p for p in points if p.threshold == t), None)
    found = {"threshold": t}
    if row is not None:
        found.update(strong_share=row.strong_share, quality=row.quality, cost=row.cost)
    return found


def _n_model_report(
    trained: Sequence[str], train: Sequence[Example], test: Sequence[Example], predict: Any
) -> dict[str, Any]:
    """N-model routing on the test split: the cheapest model predicted to do nearly as well as the best.

    Prices are each model's mean training cost per prompt; quality and cost are the test rows' own.
    """
    models = [m for m in trained if any(m in e.scores and m in e.costs for e in test)]
    rows = [e for e in test if all(m in e.scores and m in e.costs for m in models)]
    if not rows or not models:
        return {"rows": 0}
    price = {m: float(np.mean([e.costs[m] for e in train if m in e.costs] or [math.inf])) for m in models}
    success = {m: predict("success:" + m, rows) for m in models}
    best_single = max(models, key=lambda m: float(np.mean([e.scores[m] for e in rows])))
    best_quality = float(np.mean([e.scores[best_single] for e in rows]))
    best_cost = float(np.sum([e.costs[best_single] for e in rows]))
    out: dict[str, Any] = {"rows": len(rows), "models": len(models), "best_single_model": best_single}
    for q in (0.8, 0.9, 0.95, 1.0):
        chosen = []
        for i in range(len(rows)):
            top = max(success[m][i] for m in models)
            ok = [m for m in models if success[m][i] >= q * top]
            chosen.append(min(ok, key=lambda m: price[m]))
        quality = float(np.mean([e.scores[m] for e, m in zip(rows, chosen, strict=True)]))
        cost = float(np.sum([e.costs[m] for e, m in zip(rows, chosen, strict=True)]))
        share = {m: round(chosen.count(m) / len(chosen), 3) for m in sorted(set(chosen))}
        out[f"relative_success_{q:g}"] = {
            "quality_vs_best_single": round(quality / best_quality, 4),
            "cost_vs_best_single": round(cost / best_cost, 4),
            "share": share,
        }
    return out


def _artifact(
    config: TrainConfig,
    trained: Sequence[str],
    terms: Sequence[str],
    heads: dict[str, Linear],
    calibration: list[list[float]],
    report: dict[str, Any],
) -> dict[str, Any]:
    rounded = {name: np.round(h.weights, WEIGHT_DIGITS) for name, h in heads.items()}
    used = np.zeros(len(terms), dtype=bool)
    for w in rounded.values():
        used |= w != 0
    keep = np.nonzero(used)[0]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": config.name,
        "seed": config.seed,
        "created_by": "turnout train",
        "features": config.features.to_json(),
        "vocabulary": [terms[int(i)] for i in keep],
        "heads": {
            name: {"bias": round(h.bias, 6), "weights": [float(v) for v in rounded[name][keep]]}
            for name, h in sorted(heads.items())
        },
        "pair": {"strong": config.strong, "weak": config.weak},
        "models": list(trained),
        "calibration": {
            "about": "out-of-fold predictions on the target pair's training rows with 0/1 scores and costs",
            "columns": ["threshold", "strong_share", "quality", "cost"],
            "points": calibration,
        },
        "training": report["config"],
        "data": report["data"],
        "metrics": {
            "held_out": {
                k: report["held_out"][k]
                for k in (
                    "out_of_fold_calibration_rows",
                    "leave_one_source_out_mean_auc",
                    "leave_one_task_out_mean_apgr",
                    "unseen_sources_mean_auc",
                )
                if k in report["held_out"]
            },
            "test": {k: report["test"].get(k) for k in ("learned", "random", "length_heuristic")},
        },
    }


def _config_json(config: TrainConfig) -> dict[str, Any]:
    d = asdict(config)
    d["features"] = config.features.to_json()
    d["success_models"] = list(config.success_models)
    d["proxy_pairs"] = {k: list(v) for k, v in sorted(PROXY_PAIRS.items())}
    return d


def _data_json(paths: Sequence[Path], examples: Sequence[Example]) -> list[dict[str, Any]]:
    return [{"file": f"{p.parent.name}/{p.name}", "sha256": file_digest(p)} for p in paths] + [
        {"rows": len(examples)}
    ]
