"""The instruction-count bench: its child runs the real Route handler in process, its figures are
the steady-state difference of two runs, and without valgrind it says why it was skipped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import instructions_bench, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("variant", ["off", "all traces"])
def test_the_child_routes_in_process_and_exits_cleanly(variant: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.instructions_bench", "--child", variant, "20"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]


def test_without_valgrind_the_section_says_why_it_was_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions_bench.shutil, "which", lambda name: None)
    result = instructions_bench.run(quick=True)
    assert "valgrind" in result["skipped"]
    assert "Skipped: valgrind is not installed" in "\n".join(run._instructions_section(result))


def test_the_count_per_call_is_the_difference_of_the_two_runs_over_their_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # start-up costs 1,000,000 instructions; each Route 500 off, 600 with metrics and log, ...
    # (the variants `run` counts by default: off and the headline ones)
    per_call = {name: 500 + 100 * i for i, name in enumerate(["off", *instructions_bench.HEADLINE])}

    def count(valgrind: str, variant: str, calls: int) -> int:
        return 1_000_000 + per_call[variant] * (instructions_bench.WARMUP + calls)

    monkeypatch.setattr(instructions_bench.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions_bench, "_count", count)
    result: dict[str, Any] = instructions_bench.run(quick=True)
    assert result["instructions_per_call"] == per_call
    assert result["over_off"]["metrics and log, no traces"] == 1.2
    assert result["telemetry_instructions"]["all traces"] == 300
    table = "\n".join(run._instructions_section(result))
    assert "| off | 500 | 1 |  |" in table
    assert "| all traces | 800 | 1.6 | +300 |" in table
