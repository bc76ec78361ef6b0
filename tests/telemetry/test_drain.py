"""What ends on the request path is recorded a few milliseconds later, in a batch (Telemetry.drain).

An RPC's metrics, spans and log line, and an attempt's, are made at the next drain: on the event
loop within DRAIN_DELAY_S, before any metric collection, flush or shutdown, and at once on a thread
without an event loop. Nothing is lost or reordered, and times are those of the events themselves.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sidecar.domain.observe import QUIET, ObservedRpc, RpcEnded
from sidecar.telemetry import TelemetryOptions, build_telemetry
from sidecar.telemetry.pending import DRAIN_DELAY_S
from sidecar.telemetry.recorder import Telemetry
from sidecar.telemetry.request_line import timestamp as _timestamp


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def lines() -> Iterator[Lines]:
    logger = logging.getLogger("turnout.access")
    handler, old = Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def _telemetry(**options: object) -> tuple[Telemetry, InMemorySpanExporter, InMemoryMetricReader]:
    exporter, reader = InMemorySpanExporter(), InMemoryMetricReader()
    opts = TelemetryOptions(**{"prometheus": False, "trace_sample_ratio": 1.0, **options})  # type: ignore[arg-type]
    t = build_telemetry(opts, env={}, span_exporter=exporter, metric_readers=(reader,))
    return t, exporter, reader


def _requests(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "turnout.request.duration":
                    return sum(p.count for p in m.data.data_points)
    return 0


async def test_rpcs_are_recorded_together_at_the_next_drain_in_the_order_they_ended(lines: Lines) -> None:
    t, exporter, _ = _telemetry()
    for method in ("Route", "Generate", "Route"):
        with ObservedRpc(t, method, ()):
            pass
    assert lines.lines == []  # noted, not yet recorded
    await asyncio.sleep(DRAIN_DELAY_S * 4)
    assert [line["rpc"] for line in lines.lines] == ["Route", "Generate", "Route"]
    t.sdk.flush()
    assert len(exporter.get_finished_spans()) == 3
    t.shutdown()


async def test_a_metric_collection_a_flush_and_a_shutdown_each_drain_first(lines: Lines) -> None:
    t, exporter, reader = _telemetry()
    with ObservedRpc(t, "Route", ()):
        pass
    assert _requests(reader) == 1  # the collection drained it
    with ObservedRpc(t, "Route", ()):
        pass
    t.sdk.flush()
    assert len(lines.lines) == 2
    assert len(exporter.get_finished_spans()) == 2
    with ObservedRpc(t, "Route", ()):
        pass
    t.shutdown()
    assert len(lines.lines) == 3
    assert len(exporter.get_finished_spans()) == 3


def test_without_an_event_loop_an_rpc_is_recorded_as_it_ends(lines: Lines) -> None:
    t, _, reader = _telemetry()
    with ObservedRpc(t, "Route", ()):
        pass
    assert len(lines.lines) == 1
    assert _requests(reader) == 1
    t.shutdown()


async def test_the_times_recorded_are_the_events_own_not_the_drains(lines: Lines) -> None:
    t, exporter, _ = _telemetry()
    before = time.time_ns()
    with ObservedRpc(t, "Route", ()):
        await asyncio.sleep(0.01)
    ended = time.time_ns()
    await asyncio.sleep(0.05)  # the drain comes later than the end
    t.sdk.flush()
    [span] = exporter.get_finished_spans()
    assert span.end_time is not None
    assert before <= span.end_time <= ended
    assert 0.01 <= lines.lines[0]["latency_ms"] / 1000 < 0.05  # type: ignore[operator]
    assert lines.lines[0]["ts"] in (_timestamp(span.end_time), _timestamp(span.end_time + 1_000_000))
    t.shutdown()


async def test_a_drain_from_another_thread_takes_each_record_once(lines: Lines) -> None:
    t, _, reader = _telemetry(request_log=True)
    collected = threading.Event()

    def scrape() -> None:
        while not collected.is_set():
            reader.collect()

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for i in range(500):
            with ObservedRpc(t, "Route", ()):
                pass
            if i % 50 == 0:
                await asyncio.sleep(0)
    finally:
        collected.set()
        scraper.join()
    t.drain()
    assert len(lines.lines) == 500
    assert _requests(reader) == 500
    t.shutdown()


def test_the_timestamp_is_utc_to_the_millisecond() -> None:
    assert _timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123Z"
    assert _timestamp(1_700_000_001_999_999_999) == "2023-11-14T22:13:21.999Z"


def test_with_nothing_to_record_an_rpc_is_not_observed_at_all() -> None:
    options = TelemetryOptions(traces="none", metrics="none", prometheus=False, request_log=False)
    t = build_telemetry(options, env={})
    assert not t.active
    with ObservedRpc(t, "Route", ()) as rpc:
        assert rpc.call is QUIET
        rpc.ended = RpcEnded("INTERNAL", 13, "boom")
    assert rpc.call.trace_id == ""


def test_a_record_that_fails_is_reported_once_and_the_next_ones_still_recorded(
    lines: Lines, caplog: pytest.LogCaptureFixture
) -> None:
    t, _, _ = _telemetry()

    def broken() -> None:
        raise RuntimeError("broken")

    t.later(broken)
    t.later(broken)
    with ObservedRpc(t, "Route", ()):
        pass
    assert len(lines.lines) == 1
    assert len([r for r in caplog.records if "telemetry: recording failed" in r.getMessage()]) == 1
    t.shutdown()
