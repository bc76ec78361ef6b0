"""Pieces of the request log line (one JSON line per RPC, no content), written from parts.

What a caller or the config chose is escaped by orjson; the rest is plain ASCII by construction.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from sidecar.domain.outcome import AttemptRecord
from sidecar.telemetry.shared import NANOS_PER_USD


def json_string(text: str) -> str:
    """A JSON string literal of `text`."""
    return orjson.dumps(text).decode()


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second formatted; replaced whole (drains may race)
_MILLIS = [f".{i:03d}Z" for i in range(1000)]
THOUSANDTHS = [f"{i:03d}" for i in range(1000)]


def timestamp(ns: int) -> str:
    """`ns` since the epoch in UTC, to the millisecond, ISO 8601 with a Z; the seconds part is
    formatted once per second."""
    ms = ns // 1_000_000
    whole = ms // 1000
    second = _SECOND[0]
    if second[0] != whole:
        second = _SECOND[0] = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return second[1] + _MILLIS[ms - whole * 1000]


def attempt_entry(a: AttemptRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "n": a.number,
        "model": a.model,
        "cause": a.cause,
        "outcome": a.outcome.value,
        "latency_ms": round(a.latency_s * 1000, 3),
    }
    if a.failure_class is not None:
        entry["failure"] = a.failure_class.value
    if a.time_to_first_token_s is not None:
        entry["ttft_ms"] = round(a.time_to_first_token_s * 1000, 3)
    if a.retry_of:
        entry["retry_of"] = a.retry_of
    if a.escalated:
        entry["escalated"] = a.escalated
    if a.usage.input_tokens or a.usage.output_tokens:
        entry["tokens"] = [a.usage.input_tokens, a.usage.output_tokens]
    if a.cost_usd_nanos:
        entry["cost_usd"] = a.cost_usd_nanos / NANOS_PER_USD
    return entry
