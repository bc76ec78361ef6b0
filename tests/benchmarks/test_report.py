"""The report's summary: one row per target measured, with the figure and an honest verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def test_only_reruns_one_section_in_the_results_mode_and_stamps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {"machine": _results()["machine"], "quick": True, "money": {"skipped": "no data here"}}
    (tmp_path / "results.json").write_text(json.dumps(results))
    floor = {
        "rounds": 2,
        "calls_per_round": 60,
        "direct_ms": {"p50": 20.0, "p99": 21.0},
        "added_ms": {"passthrough": {"p50": 0.8, "p99": 1.0}, "turnout http": {"p50": 1.2, "p99": 1.5}},
        "turnout_above_floor_ms": {"p50": 0.4, "p99": 0.5},
        "litellm": "skipped: TURNOUT_BENCH_LITELLM=skip",
    }
    modes: list[bool] = []
    monkeypatch.setitem(run._ALONE, "http_floor", lambda quick: modes.append(quick) or floor)
    monkeypatch.setattr(sys, "argv", ["run", "--only", "http_floor", "--out", str(tmp_path)])
    run.main()
    assert modes == [True]  # the mode of the results it joins
    merged = json.loads((tmp_path / "results.json").read_text())
    assert merged["money"] == results["money"]  # the other sections are kept as they were
    assert merged["http_floor"]["added_ms"] == floor["added_ms"]
    assert set(merged["http_floor"]["measured_at"]) >= {"date", "commit"}
    report = (tmp_path / "REPORT.md").read_text()
    assert "| turnout http | +1.200 | +1.500 |" in report
    assert "http_floor (" in report  # named among the sections measured on their own


def test_the_goal_rate_is_sent_near_capacity_and_other_rates_only_below_80_percent() -> None:
    from benchmarks.proxy_bench import GOAL_RATE, _sends

    assert _sends(GOAL_RATE, 600.0)  # 83 % of the best: the goal's figure is still measured
    assert not _sends(GOAL_RATE, 480.0)  # never reached in closed loop: over capacity
    assert _sends(250, 400.0)
    assert not _sends(250, 300.0)  # 83 %, and not the goal rate


def test_summary_says_why_the_goal_rate_was_not_measured_and_what_was() -> None:
    results = _results()
    results["proxy"]["comparison"]["added_at_goal_rate"] = {
        "rate": 500,
        "skipped": "over capacity (best 420.0 req/s)",
        "met": False,
        "highest_measured": {"rate": 250.0, "added_p50_ms": 3.85, "added_p99_ms": 15.6},
    }
    text = "\n".join(run._summary(results))
    assert (
        "| added latency over direct at 500 req/s: p50 <= 1 ms, p99 <= 2 ms | not measured: Turnout over "
        "capacity (best 420.0 req/s); at 250 req/s p50 +3.85 ms, p99 +15.6 ms | **not met** |"
    ) in text


def test_summary_states_the_machine_speed_against_the_issues_echo_figures() -> None:
    results = _results()
    results["rpc"] = {"results": {"echo (ceiling)": {"c1": {"rps": 600.0}, "c64": {"rps": 2000.0}}}}
    text = "\n".join(run._summary(results))
    assert "did 600 calls/s at concurrency 1 and 2000 at 64" in text
    assert "about 4.0x slower" in text  # (2400 / 600 + 8000 / 2000) / 2


def test_settle_waits_for_the_servers_to_go_quiet_and_gives_up_after_its_limit() -> None:
    from benchmarks import proxy_bench

    now = [0.0]
    used = iter([0.0, 0.2, 0.2, 0.3, 0.3, 0.301])  # busy, busy, then 1 ms over a window: quiet

    def sleep(s: float) -> None:
        now[0] += s

    waited = proxy_bench.settle([1], cpu=lambda _: next(used), sleep=sleep, clock=lambda: now[0])
    assert waited == 3 * proxy_bench.SETTLE_WINDOW_S

    busy = iter(range(0, 10_000, 1))  # a full core's second of CPU each window: never quiet
    waited = proxy_bench.settle([1], cpu=lambda _: float(next(busy)), sleep=sleep, clock=lambda: now[0])
    assert proxy_bench.SETTLE_MAX_S <= waited < proxy_bench.SETTLE_MAX_S + proxy_bench.SETTLE_WINDOW_S
