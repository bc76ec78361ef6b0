"""Shadow evaluation settings for one route, as the runner uses them (built from config)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Compare(enum.StrEnum):
    EXACT = "exact"  # the same text, ignoring case, spacing and a trailing full stop
    JSON = "json"  # the same JSON value
    JUDGE = "judge"  # a judge model says the two answers agree


@dataclass(frozen=True, slots=True)
class ShadowSpec:
    route: str
    reference_model: str
    share: float  # of the route's answered requests, in [0, 1]
    compare: Compare = Compare.EXACT
    judge_model: str = ""
    max_usd_per_hour: float = 1.0  # the shadow calls' spend, reference and judge together
    alert_below: float = 0.8  # agreement under this, over the window, raises the alert
    window: int = 200  # the last N comparisons
    min_samples: int = 30  # no alert before this many comparisons
    timeout_s: float = 60.0
    max_in_flight: int = 4
