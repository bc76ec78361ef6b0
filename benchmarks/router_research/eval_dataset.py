"""RouterBench's recorded answers as a `turnout eval` dataset, answers included, so cascades replay.

    TURNOUT_DATA_ROOT=../shared/data python -m benchmarks.router_research.eval_dataset OUT.csv
    turnout eval OUT.csv --split test --cascade "A+B+C>gpt-4-1106-preview"

One row per prompt of both splits (`split`: train / test; test rows whose question is also in train
are left out, as recorded.py does): the real question as `prompt`, then `score:`, `cost:` and
`answer:` (the raw answer text) for every model.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from benchmarks.router_research.recorded import Recorded, train_test


def write(path: Path) -> int:
    train, test = train_test()
    models = train.models
    header = ["sample_id", "eval_name", "split", "prompt"]
    for prefix in ("score:", "cost:", "answer:"):
        header += [prefix + m for m in models]
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(header)
        for split, data in (("train", train), ("test", test)):
            for i in range(len(data)):
                out.writerow(_row(data, i, split))
                rows += 1
    return rows


def _row(d: Recorded, i: int, split: str) -> list[object]:
    return [
        d.ids[i],
        d.tasks[i],
        split,
        d.questions[i],
        *(repr(float(d.scores[m][i])) for m in d.models),
        *(repr(float(d.costs[m][i])) for m in d.models),
        *(d.answers[m][i] for m in d.models),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the CSV to write")
    args = parser.parse_args()
    print(f"wrote {write(args.out)} rows to {args.out}")


if __name__ == "__main__":
    main()
