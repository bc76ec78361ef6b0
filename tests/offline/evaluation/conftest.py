"""Small synthetic datasets written into tmp_path, and the location of the shared real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO.parent / "shared" / "data"
ROUTERBENCH = SHARED_DATA / "routerbench-subset" / "compact_questions_scores_costs.csv"

# Eight prompts, two models: the strong model wins on the long ones (rows 5-8), ties on the rest.
ROWS = [
    ("what is 2+2?", 1.0, 1.0),
    ("name a colour", 1.0, 1.0),
    ("capital of France?", 1.0, 1.0),
    ("say hi", 1.0, 0.0),
    ("prove that there are infinitely many primes, step by step, with care", 1.0, 0.0),
    ("write a parser for arithmetic expressions with precedence and parentheses", 1.0, 0.0),
    ("explain the proof of the four colour theorem and why it needed a computer", 0.0, 0.0),
    ("derive the closed form of the fibonacci sequence using generating functions", 1.0, 1.0),
]


def write_csv(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text(header + "\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def small_csv(tmp_path: Path) -> Path:
    """ROWS as CSV: strong model `big` (cost 1.0 per call), weak model `small` (0.1)."""
    lines = [f'r{i},"{p}",{s},{w},1.0,0.1' for i, (p, s, w) in enumerate(ROWS, start=1)]
    return write_csv(tmp_path / "small.csv", "id,prompt,score:big,score:small,cost:big,cost:small", lines)


@pytest.fixture
def small_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "small.jsonl"
    records = [
        {"question": p, "score:big": s, "score:small": w, "cost:big": 1.0, "cost:small": 0.1}
        for p, s, w in ROWS
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def require_shared_data() -> Path:
    if not ROUTERBENCH.is_file():
        pytest.skip(
            f"the shared RouterBench data is not here ({ROUTERBENCH}); only the project's own checkout has it"
        )
    return ROUTERBENCH
