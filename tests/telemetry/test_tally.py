"""The Tally exports what the SDK's own instruments would have, for the same measurements."""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from sidecar.telemetry.fast import tally as tally_module
from sidecar.telemetry.fast.tally import Tally

BOUNDS = (0.01, 0.1, 1.0, 10.0)
DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}


def points(reader: InMemoryMetricReader) -> dict[str, Any]:
    """metric name -> (kind facts, {sorted attributes: point facts}) from one collection."""
    out: dict[str, Any] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = (
                    type(m.data).__name__,
                    getattr(m.data, "aggregation_temporality", None),
                    getattr(m.data, "is_monotonic", None),
                )
                facts = {}
                for p in m.data.data_points:
                    key = tuple(sorted(p.attributes.items()))
                    if hasattr(p, "bucket_counts"):
                        facts[key] = (p.count, round(p.sum, 9), tuple(p.bucket_counts), p.min, p.max)
                    else:
                        facts[key] = round(p.value, 9)
                out[m.name] = (m.unit, m.description, kind, facts)
    return out


def pair(delta: bool = False) -> tuple[Any, Any, InMemoryMetricReader, InMemoryMetricReader]:
    """SDK instruments and Tally instruments of the same shape, each read by its own reader."""
    sdk_reader = InMemoryMetricReader(preferred_temporality=DELTA if delta else None)
    meter = MeterProvider(metric_readers=[sdk_reader]).get_meter("turnout")
    sdk = {
        "h": meter.create_histogram(
            "h", unit="s", description="d", explicit_bucket_boundaries_advisory=BOUNDS
        ),
        "c": meter.create_counter("c", unit="{x}", description="d"),
        "u": meter.create_up_down_counter("u", unit="{USD}", description="d"),
    }
    tally_reader = InMemoryMetricReader()
    anchor = MeterProvider(metric_readers=[tally_reader]).get_meter("turnout")
    # As Instruments does with turnout.build.info: the SDK calls a reader back only with data.
    anchor.create_observable_gauge("info", callbacks=[lambda _: [Observation(1)]])
    t = Tally(InstrumentationScope("turnout"), Resource.get_empty())
    t.attach(tally_reader, delta=delta)
    ours = {
        "h": t.histogram("h", unit="s", description="d", bounds=BOUNDS),
        "c": t.counter("c", unit="{x}", description="d"),
        "u": t.up_down_counter("u", unit="{USD}", description="d"),
    }
    return sdk, ours, sdk_reader, tally_reader


def feed(instruments: dict[str, Any], rng: random.Random, n: int) -> None:
    for _ in range(n):
        attrs = {"model": rng.choice("abc"), "ok": rng.random() < 0.7}
        if rng.random() < 0.3:
            attrs["error.type"] = "timeout"
        value = rng.choice((0.01, 10.0, 0.0, 55.0, rng.random(), rng.random() * 5))  # bounds included
        instruments["h"].record(value, attrs)
        instruments["c"].add(rng.randint(1, 3), attrs)
        instruments["u"].add(rng.uniform(-1, 1), {"model": attrs["model"]})


@pytest.mark.parametrize("delta", [False, True], ids=["cumulative", "delta"])
def test_the_tally_exports_what_the_sdk_would_for_the_same_measurements(delta: bool):
    sdk, ours, sdk_reader, tally_reader = pair(delta)
    for seed in (1, 2, 3):  # three collections: deltas must restart from each one
        for instruments in (sdk, ours):
            feed(instruments, random.Random(seed), 300)
        expected, got = points(sdk_reader), points(tally_reader)
        del got["info"]
        assert set(got) == {"h", "c", "u"}
        assert got == expected


def test_a_delta_reader_gets_only_what_changed_since_its_last_collection():
    _, ours, _, reader = pair(delta=True)
    ours["c"].add(2, {"model": "a"})
    ours["h"].record(0.5, {"model": "a"})
    ours["h"].record(3.0, {"model": "a"})
    assert points(reader)["h"][3] == {(("model", "a"),): (2, 3.5, (0, 0, 1, 1, 0), 0.5, 3.0)}
    ours["c"].add(1, {"model": "b"})
    ours["h"].record(0.05, {"model": "a"})
    after = points(reader)
    assert after["c"][3] == {(("model", "b"),): 1}  # "a" did not change: no point
    assert after["h"][3] == {
        (("model", "a"),): (1, 0.05, (0, 1, 0, 0, 0), 0.05, 0.05)
    }  # min/max of the window


def test_attribute_sets_beyond_the_limit_go_to_one_overflow_point(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tally_module, "CARDINALITY_LIMIT", 3)
    _, ours, _, reader = pair()
    for i in range(10):
        ours["c"].add(1, {"tenant": f"t{i}"})
        ours["h"].record(1.0, {"tenant": f"t{i}"})
    got = points(reader)
    assert len(got["c"][3]) == 4
    assert got["c"][3][(("otel.metric.overflow", True),)] == 7
    assert got["h"][3][(("otel.metric.overflow", True),)][0] == 7
    assert sum(p[0] for p in got["h"][3].values()) == 10  # nothing lost


def test_only_one_reader_takes_deltas():
    t = Tally(InstrumentationScope("turnout"), Resource.get_empty())
    t.attach(InMemoryMetricReader(), delta=True)
    with pytest.raises(ValueError, match="at most one"):
        t.attach(InMemoryMetricReader(), delta=True)
