"""Percentile summaries of latency samples, shared by the in-process benchmarks."""

from __future__ import annotations

import statistics


def summary_us(samples: list[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean of microsecond samples (sorted in place)."""
    samples.sort()
    return {
        "calls": len(samples),
        "p50_us": round(samples[len(samples) // 2], 2),
        "p90_us": round(samples[int(len(samples) * 0.9)], 2),
        "p99_us": round(samples[int(len(samples) * 0.99)], 2),
        "mean_us": round(statistics.fmean(samples), 2),
    }
