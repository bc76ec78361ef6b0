"""Budget windows: which counter a moment falls in, and when that window resets.

A calendar window (hour, day, month) is one counter per window, named by its start in the
configured time zone. A rolling window is `BUCKETS` counters of window/BUCKETS seconds each; its
total is the sum of the buckets that overlap the last window, so it forgets spend in steps of one
bucket rather than exactly: at most one bucket's spend is counted longer than the window says.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

BUCKETS = 12


class Period(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    ROLLING = "rolling"


@dataclass(frozen=True, slots=True)
class Span:
    """The counters one moment reads (the first is the one it adds to) and when the total resets."""

    buckets: tuple[str, ...]
    resets_at: float  # unix seconds: the window's end (calendar) or when the oldest bucket leaves
    ttl_s: int  # how long the counter must live: the window and a margin
    since: float = 0.0  # unix seconds: from when on this span holds (until resets_at)


@dataclass(frozen=True, slots=True)
class Window:
    period: Period
    timezone: str = "UTC"
    rolling_s: int = 3600  # the length of a rolling window

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # an unknown zone fails here, at config load, not per request
        if self.period is Period.ROLLING and self.rolling_s < BUCKETS:
            raise ValueError(f"a rolling window needs at least {BUCKETS} s, not {self.rolling_s}")

    @property
    def label(self) -> str:
        return f"rolling {self.rolling_s}s" if self.period is Period.ROLLING else self.period.value

    def span(self, now: float) -> Span:
        """The span `now` falls in. Each request asks it of each budget, and a span holds for a
        window or a bucket: the last one per window is kept (a few per config), so the calendar
        arithmetic (tens of microseconds) runs once per window, not per request."""
        last = _LAST.get(self)
        if last is not None and last.since <= now < last.resets_at:
            return last
        span = _LAST[self] = self._span(now)
        return span

    def _span(self, now: float) -> Span:
        if self.period is Period.ROLLING:
            step = self.rolling_s / BUCKETS
            current = math.floor(now / step)
            names = tuple(f"r{self.rolling_s}:{current - i}" for i in range(BUCKETS))
            return Span(names, (current + 1) * step, self.rolling_s + math.ceil(step) + 60, current * step)
        zone = ZoneInfo(self.timezone)
        # Wall-clock arithmetic on the local time, then back to an instant: a day across a DST
        # change lasts 23 or 25 hours, a month its own number of days.
        local = datetime.fromtimestamp(now, zone).replace(tzinfo=None)
        if self.period is Period.HOUR:
            start = local.replace(minute=0, second=0, microsecond=0)
            end = start + timedelta(hours=1)
        elif self.period is Period.DAY:
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
            end = start + timedelta(days=1)
        else:
            start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            end = (start + timedelta(days=32)).replace(day=1)
        start_s = start.replace(tzinfo=zone).timestamp()
        end_s = end.replace(tzinfo=zone).timestamp()
        name = f"{self.period.value}:{start.strftime('%Y%m%dT%H')}"
        return Span((name,), end_s, math.ceil(end_s - start_s) + 3600, start_s)


_LAST: dict[Window, Span] = {}  # per window, the span last asked for
