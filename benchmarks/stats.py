"""Summaries shared by the benchmarks: percentiles of latency samples, ratios of paired rounds."""

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


def round_ratios(on: list[float], off: list[float]) -> list[float]:
    """Each round's figure over the same round's reference (run beside it, so a slow moment of
    the shared machine lands on both)."""
    return [a / b for a, b in zip(on, off, strict=True)]
