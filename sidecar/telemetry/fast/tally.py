"""The fast path's tally: per-request metrics aggregated in plain Python, read out through the
OpenTelemetry SDK's readers (`telemetry.fast_path` with `tally`; the plain path is tally.SdkTally).

Why not the SDK's synchronous instruments: each measurement's attributes are validated, copied
and hashed recursively, an exemplar is considered and the view pipeline walked, and a Generate
records about ten, which cost as much CPU as the rest of the sidecar's own work on a request. Here
a measurement is a frozenset of its attributes, a dict lookup and a few additions under one lock,
the same way Ray answered the same cost (ray-project/ray#59337). Figures: decision 030.

What is aggregated is exactly what the SDK would have made of it: cumulative (or delta) sums and
explicit-bucket histograms with count, sum, min, max, one point per attribute set, at most
CARDINALITY_LIMIT sets per metric and an `otel.metric.overflow` point beyond. At each collection
the points are added to the SDK's own MetricsData under Turnout's instrumentation scope, through
`MetricReader._receive_metrics` (the hook the SDK documents for reader subclasses), so the
Prometheus endpoint, OTLP push, resource and naming are the SDK's. What is not kept: exemplars.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from sidecar.telemetry.tally import Key, series_key

CARDINALITY_LIMIT = 2000  # attribute sets per metric, as the SDK's default
OVERFLOW = frozenset({("otel.metric.overflow", True)})

# count, sum, buckets, min, max, and min and max since the last delta readout
HistogramState = tuple[int, float, list[int], float, float, float, float]


def _bounded(series: Mapping[Key, object], attributes: Mapping[str, Any] | Key) -> Key:
    """The series key of an attribute set: its own, or the overflow point's once a metric holds
    CARDINALITY_LIMIT sets and this one is new. Called with the tally's lock held."""
    key = attributes if type(attributes) is frozenset else series_key(attributes)  # type: ignore[arg-type]
    if key not in series and len(series) >= CARDINALITY_LIMIT:
        return OVERFLOW
    return key


class Counter:
    """A sum: monotonic (a counter) or not (an up-down counter)."""

    __slots__ = ("_lock", "_series", "description", "monotonic", "name", "unit")

    def __init__(
        self, name: str, unit: str, description: str, *, monotonic: bool, lock: threading.Lock
    ) -> None:
        self.name, self.unit, self.description, self.monotonic = name, unit, description, monotonic
        self._series: dict[Key, float] = {}
        self._lock = lock

    def add(self, amount: float, attributes: Mapping[str, Any] | Key) -> None:
        with self._lock:
            series = self._series
            key = _bounded(series, attributes)
            series[key] = series.get(key, 0) + amount

    def snapshot(self) -> dict[Key, float]:
        with self._lock:
            return dict(self._series)


class _Point:
    __slots__ = ("buckets", "count", "max", "min", "total", "window_max", "window_min")

    def __init__(self, n_buckets: int) -> None:
        self.count = 0
        self.total: float = 0
        self.buckets = [0] * n_buckets
        self.min = self.window_min = float("inf")
        self.max = self.window_max = float("-inf")


class HistogramSeries:
    """An explicit-bucket histogram; a value v falls in the first bucket whose bound is >= v."""

    __slots__ = ("_lock", "_series", "bounds", "description", "name", "unit")

    def __init__(
        self, name: str, unit: str, description: str, bounds: Sequence[float], lock: threading.Lock
    ) -> None:
        self.name, self.unit, self.description = name, unit, description
        self.bounds = tuple(bounds)
        self._series: dict[Key, _Point] = {}
        self._lock = lock

    def record(self, value: float, attributes: Mapping[str, Any] | Key) -> None:
        with self._lock:
            series = self._series
            point = series.get(attributes) if type(attributes) is frozenset else None
            if point is None:
                key = _bounded(series, attributes)
                point = series.get(key)
                if point is None:
                    point = series[key] = _Point(len(self.bounds) + 1)
            point.count += 1
            point.total += value
            point.buckets[bisect_left(self.bounds, value)] += 1
            if value < point.min:
                point.min = value
            if value > point.max:
                point.max = value
            if value < point.window_min:
                point.window_min = value
            if value > point.window_max:
                point.window_max = value

    def snapshot(self, *, reset_window: bool) -> dict[Key, HistogramState]:
        with self._lock:
            out = {
                key: (p.count, p.total, list(p.buckets), p.min, p.max, p.window_min, p.window_max)
                for key, p in self._series.items()
            }
            if reset_window:
                for p in self._series.values():
                    p.window_min, p.window_max = float("inf"), float("-inf")
            return out


class Tally:
    """The instruments, and their readout for each SDK reader they are attached to."""

    def __init__(
        self, scope: InstrumentationScope, resource: Resource, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._scope = scope
        self._resource = resource
        self._clock = clock
        self._start = clock()
        self._lock = threading.Lock()  # one for all: recording is on one thread, reading on another
        self._counters: list[Counter] = []
        self._histograms: list[HistogramSeries] = []
        self._delta_attached = False
        # What records measurements still pending (Telemetry.drain): run before every collection,
        # so that a scrape or an export includes every request that ended before it.
        self.drains: list[Callable[[], None]] = []

    def run_drains(self) -> None:
        """Record what is still pending (see `drains`)."""
        for drain in self.drains:
            drain()

    @property
    def version(self) -> str:
        return self._scope.version or ""

    def counter(self, name: str, unit: str, description: str) -> Counter:
        made = Counter(name, unit, description, monotonic=True, lock=self._lock)
        self._counters.append(made)
        return made

    def up_down_counter(self, name: str, unit: str, description: str) -> Counter:
        made = Counter(name, unit, description, monotonic=False, lock=self._lock)
        self._counters.append(made)
        return made

    def histogram(self, name: str, unit: str, description: str, bounds: Sequence[float]) -> HistogramSeries:
        made = HistogramSeries(name, unit, description, bounds, self._lock)
        self._histograms.append(made)
        return made

    def attach(self, reader: MetricReader, *, delta: bool = False) -> None:
        """Have `reader` export these metrics with what the SDK collects for it.

        `delta`: counters and histograms as deltas since this reader's last collection (OTLP with
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta or lowmemory); up-down counters
        stay cumulative, as the specification has it. One delta reader at most: the window's
        min and max are kept once.
        """
        if delta:
            if self._delta_attached:
                raise ValueError("telemetry: at most one metric reader can take deltas")
            self._delta_attached = True
        readout = _Readout(self, delta)
        receive = reader._receive_metrics

        def merged(metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
            self.run_drains()
            receive(readout.merge(metrics_data), timeout_millis=timeout_millis, **kwargs)

        reader._receive_metrics = merged  # type: ignore[method-assign]

    def _metadata(self) -> tuple[InstrumentationScope, Resource, int, int]:
        return self._scope, self._resource, self._start, self._clock()


class _Readout:
    """One reader's view: its temporality, and for deltas what it was last given."""

    def __init__(self, tally: Tally, delta: bool) -> None:
        self._tally = tally
        self._delta = delta
        self._last_time = tally._start
        self._sums: dict[str, dict[Key, float]] = {}
        self._histograms: dict[str, dict[Key, tuple[int, float, list[int]]]] = {}

    def merge(self, data: MetricsData | None) -> MetricsData:
        scope, resource, start, now = self._tally._metadata()
        ours = self._metrics(start, now)
        self._last_time = now
        resources = list(data.resource_metrics) if data is not None else []
        if not ours:
            return data if data is not None else MetricsData(resource_metrics=[])
        for i, rm in enumerate(resources):
            scopes = list(rm.scope_metrics)
            for j, sm in enumerate(scopes):
                if sm.scope.name == scope.name:
                    scopes[j] = ScopeMetrics(sm.scope, [*sm.metrics, *ours], sm.schema_url)
                    resources[i] = ResourceMetrics(rm.resource, scopes, rm.schema_url)
                    return MetricsData(resource_metrics=resources)
        own = ScopeMetrics(scope, ours, scope.schema_url or "")
        if resources:
            rm = resources[0]
            resources[0] = ResourceMetrics(rm.resource, [*rm.scope_metrics, own], rm.schema_url)
        else:
            resources = [ResourceMetrics(resource, [own], resource.schema_url)]
        return MetricsData(resource_metrics=resources)

    def _metrics(self, start: int, now: int) -> list[Metric]:
        out: list[Metric] = []
        for counter in self._tally._counters:
            points = self._sum_points(counter, start, now)
            if points:
                delta = self._delta and counter.monotonic
                temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
                data = Sum(
                    data_points=points, aggregation_temporality=temporality, is_monotonic=counter.monotonic
                )
                out.append(Metric(counter.name, counter.description, counter.unit, data))
        for histogram in self._tally._histograms:
            hpoints = self._histogram_points(histogram, start, now)
            if hpoints:
                temporality = (
                    AggregationTemporality.DELTA if self._delta else AggregationTemporality.CUMULATIVE
                )
                hdata = Histogram(data_points=hpoints, aggregation_temporality=temporality)
                out.append(Metric(histogram.name, histogram.description, histogram.unit, hdata))
        return out

    def _sum_points(self, counter: Counter, start: int, now: int) -> list[NumberDataPoint]:
        current = counter.snapshot()
        if not (self._delta and counter.monotonic):
            return [NumberDataPoint(dict(key), start, now, value) for key, value in current.items()]
        last = self._sums.get(counter.name, {})
        self._sums[counter.name] = current
        return [
            NumberDataPoint(dict(key), self._last_time, now, value - last.get(key, 0))
            for key, value in current.items()
            if value != last.get(key, 0)
        ]

    def _histogram_points(self, histogram: HistogramSeries, start: int, now: int) -> list[HistogramDataPoint]:
        current = histogram.snapshot(reset_window=self._delta)
        bounds = histogram.bounds
        if not self._delta:
            return [
                HistogramDataPoint(dict(key), start, now, count, total, buckets, bounds, low, high)
                for key, (count, total, buckets, low, high, _, _) in current.items()
            ]
        last = self._histograms.get(histogram.name, {})
        self._histograms[histogram.name] = {key: (c, t, b) for key, (c, t, b, *_) in current.items()}
        points = []
        for key, (count, total, buckets, _, _, low, high) in current.items():
            before = last.get(key)
            if before is not None:
                if count == before[0]:
                    continue
                count, total = count - before[0], total - before[1]
                buckets = [now_b - then_b for now_b, then_b in zip(buckets, before[2], strict=True)]
            points.append(
                HistogramDataPoint(dict(key), self._last_time, now, count, total, buckets, bounds, low, high)
            )
        return points
