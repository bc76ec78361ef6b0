"""`turnout eval`: its flags, and the runner from parsed flags to printed report, files and exit code.

Exit codes: 0 done; 2 the user can fix something (a flag, a model name, the file, malformed rows,
the `eval` extra not installed). This module imports only the standard library at import time, so
building the `turnout` parser never loads numpy; the evaluation itself is imported when it runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

SHOWN_PROBLEMS = 20
INSTALL_HINT = "pip install 'turnout[eval]'"


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "dataset", metavar="DATASET", type=Path, help="CSV or JSONL: prompt, score:<model>, cost:<model>"
    )
    p.add_argument("--split", help="evaluate only the rows whose split column has this value (e.g. test)")
    p.add_argument(
        "--dedupe-against",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="drop rows whose prompt also appears in FILE (repeatable); DATASET itself: its other splits",
    )
    p.add_argument(
        "--router",
        metavar="SPEC",
        help="length | random | builtin:<classifier> | <module>:<attr> | a registered name "
        "(default: learned if registered, else builtin:length)",
    )
    p.add_argument("--strong", metavar="MODEL", help="the strong model of a two-model comparison")
    p.add_argument("--weak", metavar="MODEL", help="the weak (cheap) model of a two-model comparison")
    p.add_argument(
        "--models",
        metavar="A,B,C",
        type=_model_list,
        help="N-model cost/quality frontier over these models (default without --strong/--weak: every "
        "model with scores and costs)",
    )
    p.add_argument(
        "--cost-per-call",
        metavar="MODEL=USD",
        type=_price,
        action="append",
        default=[],
        help="a model's cost per call where the data has none (repeatable)",
    )
    p.add_argument(
        "--cascade",
        metavar="A+B@N>C",
        action="append",
        default=[],
        help="also replay this cascade on the answer:<model> columns (repeatable): stages joined by '>', "
        "a stage's models by '+' (they answer at once; @N of them must agree, default all), the last "
        "stage one model",
    )
    p.add_argument(
        "--agree",
        choices=("choice", "number", "text", "json"),
        default="choice",
        help="how --cascade compares answers: a choice letter, a number, normalised text, a JSON value",
    )
    p.add_argument("--json", metavar="FILE", type=Path, help="write every number, curves included, as JSON")
    p.add_argument("--plot", metavar="FILE.png", type=Path, help="draw the curves into a PNG (matplotlib)")
    p.add_argument(
        "--scores",
        metavar="FILE",
        type=Path,
        help="write the router's score for every evaluated row (CSV: line, id, score), in dataset order",
    )
    p.add_argument(
        "--skip-malformed", action="store_true", help="skip malformed rows (counted) instead of failing"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="first seed of the random router's 10 seeds (default 0)"
    )


def run_eval(args: argparse.Namespace) -> int:
    # Checked up front: failing on a missing package after the work would waste the work.
    needed = ["numpy", *(["matplotlib"] if args.plot is not None else [])]
    missing = _missing(needed)
    if missing:
        print(f"turnout eval: {' and '.join(missing)} not installed: {INSTALL_HINT}", file=sys.stderr)
        return 2
    from sidecar.offline.evaluation.report import render_text, to_json
    from sidecar.offline.evaluation.run import (
        EvalError,
        EvalOptions,
        MalformedRowsError,
        evaluate,
        write_scores,
    )

    options = EvalOptions(
        dataset=args.dataset,
        split=args.split,
        dedupe_against=tuple(args.dedupe_against),
        router=args.router,
        strong=args.strong,
        weak=args.weak,
        models=args.models,
        cost_per_call=dict(args.cost_per_call),
        skip_malformed=args.skip_malformed,
        seed=args.seed,
        cascades=tuple(args.cascade),
        agree=args.agree,
    )
    try:
        report = evaluate(options)
    except MalformedRowsError as exc:
        _print_problems(exc.problems)
        print(f"turnout eval: {exc}", file=sys.stderr)
        return 2
    except EvalError as exc:
        print(f"turnout eval: {exc}", file=sys.stderr)
        return 2
    if report.skipped_problems:
        print(f"skipped {report.skipped_malformed} malformed rows (--skip-malformed):", file=sys.stderr)
        _print_problems(report.skipped_problems)
    print(render_text(report), end="")
    try:
        if args.json is not None:
            args.json.write_text(json.dumps(to_json(report), indent=1) + "\n", encoding="utf-8")
            print(f"wrote {args.json}")
        if args.scores is not None:
            write_scores(report, args.scores)
            print(f"wrote {args.scores}")
        if args.plot is not None:
            from sidecar.offline.evaluation.plot import plot_report

            plot_report(report, args.plot)
            print(f"wrote {args.plot}")
    except OSError as exc:
        print(f"turnout eval: cannot write {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


def _missing(packages: list[str]) -> list[str]:
    return [name for name in packages if importlib.util.find_spec(name) is None]


def _print_problems(problems: tuple[tuple[str, object], ...]) -> None:
    for path, problem in problems[:SHOWN_PROBLEMS]:
        print(f"{path}: {problem}", file=sys.stderr)
    if len(problems) > SHOWN_PROBLEMS:
        print(f"... and {len(problems) - SHOWN_PROBLEMS} more problems", file=sys.stderr)


def _model_list(text: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if len(models) < 2:
        raise argparse.ArgumentTypeError(f"name two or more models separated by commas, not {text!r}")
    return models


def _price(text: str) -> tuple[str, float]:
    model, sep, usd = text.rpartition("=")
    try:
        price = float(usd)
    except ValueError:
        price = -1.0
    if not sep or not model or not (math.isfinite(price) and price >= 0):
        raise argparse.ArgumentTypeError(f"expected MODEL=USD with USD a number >= 0, not {text!r}")
    return model, price
