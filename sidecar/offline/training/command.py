"""`turnout train`: the command line of the training pipeline (arguments, printed summary, files written).

Imports nothing heavy at module level: `turnout serve` builds the same parser and must not need
numpy or scikit-learn, which only training uses (the `train` extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sidecar.policy.learned import DEFAULT_ARTIFACT


def add_train_command(sub: Any) -> None:
    from sidecar.offline.training.data import DEFAULT_FILES

    p = sub.add_parser(
        "train",
        help="train the learned router from labelled prompts and write its artifact",
        description="Train, calibrate and evaluate the learned router; write the artifact and a report.",
    )
    p.add_argument(
        "--data",
        nargs="+",
        type=Path,
        metavar="FILE",
        default=list(DEFAULT_FILES),
        help="CSV files of prompts with score:<model> (and cost:<model>) columns "
        "(default: the RouterBench subset and merged_train.csv under ../shared/data)",
    )
    p.add_argument("--strong", default=None, help="the strong model of the pair (gpt-4-1106-preview)")
    p.add_argument("--weak", default=None, help="the weak model of the pair (mistralai/mixtral-8x7b-chat)")
    p.add_argument("--seed", type=int, default=7, help="fixes the folds and the random baseline (7)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_ARTIFACT, help=f"artifact path ({DEFAULT_ARTIFACT.name})"
    )
    p.add_argument("--report", type=Path, metavar="FILE.json", help="also write every figure as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        from sidecar.offline.training import artifact
        from sidecar.offline.training.data import DataError
        from sidecar.offline.training.train import TrainConfig, train
    except ImportError as exc:
        print(
            f"turnout train: {exc.name} is missing; install the extra: pip install 'turnout[train]'",
            file=sys.stderr,
        )
        return 2
    config = TrainConfig(seed=args.seed)
    if args.strong or args.weak:
        config = TrainConfig(
            seed=args.seed, strong=args.strong or config.strong, weak=args.weak or config.weak
        )
    try:
        trained = train(config, args.data)
    except (DataError, ValueError) as exc:
        print(f"turnout train: {exc}", file=sys.stderr)
        return 2
    size = artifact.write(trained.artifact, args.out)
    if args.report:
        args.report.write_text(json.dumps(trained.report, indent=1, sort_keys=True) + "\n")
    print(summary(trained.report, trained.artifact))
    print(f"\nwrote {args.out} ({size / 1024:.0f} KiB, {len(trained.artifact['vocabulary'])} features)")
    return 0


def summary(report: dict[str, Any], doc: dict[str, Any]) -> str:
    """The held-out figures, the calibration table and the test split, as the terminal shows them."""
    cols = ("rows", "auc", "apgr", "cpt50", "cpt80", "cost_at_95")
    held, test = report["held_out"], report["test"]
    lines = [
        f"pair: {doc['pair']['strong']} (strong) vs {doc['pair']['weak']} (weak); seed {doc['seed']}",
        "",
    ]
    lines.append(f"{'held out (training data only)':44s}" + "".join(f"{c:>11s}" for c in cols))
    table = {"out-of-fold, calibration rows": held["out_of_fold_calibration_rows"]}
    table |= {f"leave task out: {k}": v for k, v in held["leave_one_task_out"].items()}
    table |= {f"leave source out: {k}": v for k, v in held["leave_one_source_out"].items()}
    table |= {f"unseen source (own pair): {k}": v for k, v in held.get("unseen_sources", {}).items()}
    lines += [f"{k:44s}" + "".join(f"{_fmt(v.get(c)):>11s}" for c in cols) for k, v in table.items()]
    lines += ["", "calibration (out-of-fold): weak model when P(weak suffices) >= threshold"]
    lines.append(f"{'threshold':>10s}{'strong share':>14s}{'quality':>10s}{'cost':>8s}")
    lines += [f"{t:>10.2f}{s:>14.3f}{q:>10.3f}{c:>8.3f}" for t, s, q, c in doc["calibration"]["points"][::5]]
    if test.get("rows"):
        lines += [
            "",
            f"test split (deduplicated), {test['rows']} prompts" + "".join(f"{c:>11s}" for c in cols[2:]),
        ]
        for name in ("learned", "random", "length_heuristic", "length_chars"):
            lines.append(f"{name:44s}" + "".join(f"{_fmt(test[name].get(c)):>11s}" for c in cols[2:]))
        lines += ["", "targets: calibrated threshold -> achieved on the test split"]
        for name, t in test["targets"].items():
            lines.append(
                f"  {name:14s} threshold {t['threshold']:.2f}: quality {t['quality']:.3f}, "
                f"cost {t['cost']:.3f}, "
                f"strong share {t['strong_share']:.3f}"
            )
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
