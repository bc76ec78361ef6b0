"""The report's summary: one row per target measured, with the figure and an honest verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks import run

ROOT = Path(__file__).resolve().parents[2]


def _results() -> dict[str, Any]:
    return {
        "machine": {"date": "d", "commit": "c", "python": "3.11", "cores": 2, "cpu": "x"},
        "quick": True,
        "learned": {"predict": {"p50_us": 30.0, "p99_us": 250.0}},
        "proxy": {
            "comparison": {
                "added_at_goal_rate": {"rate": 500, "added_p50_ms": 0.9, "added_p99_ms": 1.8, "met": True},
                "turnout_idle_rss": {"mb": 80.0, "met": True},
                "telemetry_on_over_off": {
                    "rps": {"c1": 0.99, "c16": 0.76},
                    "cpu_ms_per_request": {"on": 2.46, "off": 1.67},
                    "met": False,
                },
            }
        },
        "money": {
            "target": {"cost_reduction": 0.6, "accuracy_points": 2.0},
            "vs_frontier": {
                "rules": {"cost_reduction": 0.71, "accuracy_delta_points": -11.2, "target_met": False},
                "learned": {"cost_reduction": 0.39, "accuracy_delta_points": -1.8, "target_met": False},
            },
        },
    }


def test_summary_states_each_target_measured_and_leaves_out_sections_that_did_not_run() -> None:
    table = run._summary(_results())
    text = "\n".join(table)
    assert table[0] == "## Summary: the targets"
    assert "| learned router inference p99 <= 200 µs | p50 30.0 µs, p99 250.0 µs | **not met** |" in text
    assert "p50 +0.9 ms, p99 +1.8 ms | met |" in text
    assert "ratio by concurrency 1: 0.99, 16: 0.76; CPU 2.46 vs 1.67 ms per request | **not met** |" in text
    assert "| sidecar RSS idle <= 100 MB | 80.0 MB (the overhead bench's 2-model config) | met |" in text
    assert "rules 71% cheaper, -11.2 pts; learned 39% cheaper, -1.8 pts | **not met** |" in text
    assert "LiteLLM" not in text  # those sections did not run
    assert "hedging" not in text
    assert run._summary({"machine": {}, "quick": True}) == []


def _render(out: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "benchmarks.run", "--render", "--out", str(out)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)


def test_render_rewrites_the_report_from_results_json(tmp_path: Path) -> None:
    results = {"machine": _results()["machine"], "quick": True, "money": {"skipped": "no data here"}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    done = _render(tmp_path)
    assert done.returncode == 0, done.stderr
    report = (tmp_path / "REPORT.md").read_text()
    assert report.startswith("# Turnout benchmark report")
    assert "## The money table" in report
    assert "skipped: no data here" in report


def test_render_without_results_is_a_usage_error(tmp_path: Path) -> None:
    done = _render(tmp_path)
    assert done.returncode == 2
    assert "results.json not found" in done.stderr
