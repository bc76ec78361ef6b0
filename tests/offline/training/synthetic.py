"""A small synthetic routing dataset in the RouterBench compact layout, with a learnable signal.

Prompts about "arithmetic" are easy (the weak model is as good as the strong one 90% of the
time); prompts about "proofs" are hard (30%). A seeded generator makes the file reproducible.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

STRONG = "big-model"
WEAK = "small-model"

_EASY = ["add two numbers", "what is 3 plus 4", "simple arithmetic question", "count the apples"]
_HARD = ["prove the theorem rigorously", "derive the closed form proof", "formal proof by induction"]


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hard = rng.random() < 0.4
        text = rng.choice(_HARD if hard else _EASY) + f" about item {rng.randint(0, 50)}"
        strong = 1.0 if rng.random() < (0.8 if hard else 0.97) else 0.0
        weak_ok = rng.random() < (0.3 if hard else 0.9)
        weak = strong if weak_ok else (0.0 if strong else 1.0)
        if not weak_ok and strong == 0.0:
            weak = 0.0  # both wrong: the weak one is still "as good"
        out.append(
            {
                "sample_id": f"synthetic.{i}",
                "eval_name": "proofs" if hard else "arithmetic",
                "split": "test" if i % 5 == 0 else "train",
                "question": text,
                f"score:{STRONG}": str(strong),
                f"score:{WEAK}": str(weak),
                f"cost:{STRONG}": "0.01",
                f"cost:{WEAK}": "0.001",
            }
        )
    return out


def write(path: Path, n: int = 400, seed: int = 1) -> Path:
    data = rows(n, seed)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(data[0]))
        w.writeheader()
        w.writerows(data)
    return path
