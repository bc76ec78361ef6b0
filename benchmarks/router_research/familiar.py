"""Leave-one-source-out: the shipped recipe alone vs with its unfamiliar-prompt fallback.

For each of the eight groups of benchmarks/router_research/transfer.py, today's recipe is refitted on
the seven others; a held-out prompt whose coverage (sidecar.policy.learned.coverage: the share of its
words and bigrams the fitted vocabulary knows) is below the `--quantile` of the training prompts' own
is routed by the length heuristic, read on the router's scale by rank (learned.Familiarity, as the
sidecar does; here the ranks come from the fold's in-sample scores rather than out-of-fold ones).
No embedding table needed.

    python -m benchmarks.router_research.familiar [--quantile 0.05 0.1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.router_research.recorded import ROOT
from benchmarks.router_research.transfer import PAIRS, fit_today, group
from sidecar.offline.metrics import Pair, apgr, random_metrics, routing_curve
from sidecar.offline.training.data import normalized, read_examples
from sidecar.offline.training.fit import FeatureCache
from sidecar.offline.training.train import length_score
from sidecar.policy.learned import Familiarity, FeatureConfig, coverage


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quantile", type=float, nargs="*", default=[0.05, 0.1])
    parser.add_argument("--json")
    args = parser.parse_args()
    files = [
        ROOT / "routerbench-subset" / "compact_questions_scores_costs.csv",
        ROOT / "router-train-extra" / "merged_train.csv",
    ]
    examples = [e for e in read_examples(files) if e.scores]
    groups = [group(e) for e in examples]
    cache = FeatureCache(FeatureConfig())
    qs = np.linspace(0.0, 1.0, 101)
    folds: dict[str, object] = {}
    for held_name, (strong, weak) in PAIRS.items():
        held_keys = {normalized(e.question) for e, g in zip(examples, groups, strict=True) if g == held_name}
        train = [
            e
            for e, g in zip(examples, groups, strict=True)
            if g != held_name and normalized(e.question) not in held_keys
        ]
        held = [
            e
            for e, g in zip(examples, groups, strict=True)
            if g == held_name and strong in e.scores and e.scores.get(weak) is not None
        ]
        today = fit_today(train, cache)
        labelled, docs, vocab, model = today.labelled, today.docs, today.vocab, today.model
        known = frozenset(vocab.terms)
        hdocs = [cache(e.question) for e in held]
        p_tr = model.predict(vocab.matrix(docs))
        p_te = model.predict(vocab.matrix(hdocs))
        len_tr = np.array([length_score(e.question) for e in labelled])
        cov_tr = np.array([coverage(d, known) for d in docs])
        cov_te = np.array([coverage(d, known) for d in hdocs])
        pair = Pair(np.array([e.scores[strong] for e in held]), np.array([e.scores[weak] for e in held]))
        row: dict[str, object] = {
            "rows": len(held),
            "today": apgr(routing_curve(pair, 1.0 - p_te)),
            "length": apgr(routing_curve(pair, np.array([float(len(e.question)) for e in held]))),
            "random": random_metrics(pair, seed=7, seeds=20).apgr,
        }
        for q in args.quantile:
            fam = Familiarity(
                float(np.quantile(cov_tr, q)), q, tuple(np.quantile(p_tr, qs)), tuple(np.quantile(len_tr, qs))
            )
            unfamiliar = cov_te < fam.min_coverage
            mapped = np.array([fam.on_pair_scale(length_score(e.question)) for e in held])
            guarded = np.where(unfamiliar, mapped, p_te)
            row[f"fallback_{q:g}"] = apgr(routing_curve(pair, 1.0 - guarded))
            row[f"unfamiliar_share_{q:g}"] = float(unfamiliar.mean())
        row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
        folds[held_name] = row
        print(held_name, row, flush=True)
    text = json.dumps({"folds": folds}, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
