"""The soak harness (benchmarks/soak.py): its slope and verdict, and a 15-second live run."""

from __future__ import annotations

import random
import sys

import pytest

from benchmarks.soak import ROOT, Sample, failures, run_soak, slope_per_min, summarise


def test_the_slope_is_per_minute_and_least_squares() -> None:
    line = [(t, 100 + 2 * t / 60) for t in range(0, 600, 1)]  # 2 MB a minute, sampled every second
    assert slope_per_min(line) == pytest.approx(2.0)
    rng = random.Random(3)
    noisy = [(float(t), 150 + rng.uniform(-3, 3)) for t in range(480)]  # flat, a few MB of noise
    assert abs(slope_per_min(noisy)) < 0.2
    assert slope_per_min([(5.0, 1.0)]) == 0.0
    assert slope_per_min([(5.0, 1.0), (5.0, 9.0)]) == 0.0


def _result(samples: list[Sample], **over: object) -> dict[str, object]:
    result: dict[str, object] = {
        "died": "",
        "hangs": 0,
        "memory": summarise(samples, minutes=1),
        "bounds": {"rss_slope_mb_per_min": 2.0, "fd_growth": 16},
    }
    return {**result, **over}


def test_growth_after_the_warm_up_fails_and_growth_in_it_does_not() -> None:
    # RSS and fds climb in the first 12 s (within the warm-up: the first half of the run), then stay flat
    warming = [Sample(t, 100 + min(t, 12) * 5, 20 + int(min(t, 12))) for t in range(60)]
    assert failures(_result(warming)) == []
    leaking = [Sample(t, 100 + t * 0.1, 20) for t in range(60)]  # 6 MB/min
    assert failures(_result(leaking)) == ["RSS grew 6.0 MB/min, over 2.0"]
    fds = [Sample(t, 100, 20 + t) for t in range(60)]  # the medians of the first and last tenth after it
    assert failures(_result(fds)) == ["open fds grew from 51 to 78, more than 16"]
    flat = [Sample(t, 100, 20) for t in range(60)]
    assert failures(_result(flat, hangs=2, died="exit code -9")) == [
        "the sidecar died: exit code -9",
        "2 calls outlived their deadline by more than 5 s",
    ]


@pytest.mark.slow
def test_a_short_live_soak_runs_every_kind_of_call_through_faults_and_an_outage() -> None:
    result = run_soak(ROOT, sys.executable, minutes=0.25)
    assert not result["died"]
    assert result["hangs"] == 0
    by_status = result["by_status"]
    assert by_status.get("Generate OK", 0) > 0
    assert by_status.get("GenerateStream OK", 0) > 0
    assert by_status.get("Route OK", 0) > 0
    assert by_status.get("bad request INVALID_ARGUMENT", 0) > 0
    assert not any(status.endswith(("INTERNAL", "UNKNOWN")) for status in by_status), by_status
    assert result["faults"]["full outage"] == 1
    memory = result["memory"]
    assert memory["samples"] >= 10
    assert memory["rss_mb"]["peak"] > 20
    assert memory["fds"]["max"] > 5
