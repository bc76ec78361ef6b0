"""The server span is started as the SDK's tracer starts a span, then written finished.

`FastSpans.start` makes the sampling decision and the span's context itself (the SDK's
`Tracer.start_span` costs ~50 µs a recorded span): these tests hold it to what the SDK makes of
the same sampler, parent and ids, and check the span the RPC writes at its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanKind, StatusCode, TraceState, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from sidecar.domain.observe import ObservedRpc, RpcEnded
from sidecar.telemetry import TelemetryOptions, build_telemetry
from sidecar.telemetry.fast.finished_spans import FastSpans

ATTRS = {"rpc.system": "grpc", "rpc.service": "turnout.v1.RouterService", "rpc.method": "Generate"}


class Counting(IdGenerator):
    """Ids from a counter, so two providers given the same start make the same ids."""

    def __init__(self, start: int, random: bool = True) -> None:
        self._next, self._random = start, random

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next & 0xFFFFFFFFFFFFFFFF

    def generate_trace_id(self) -> int:
        self._next += 1
        return (self._next * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF

    def is_trace_id_random(self) -> bool:
        return self._random


class Tagging(Sampler):
    """A sampler with opinions: records every other trace id, adds an attribute, edits trace state."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        decision = (Decision.RECORD_AND_SAMPLE, Decision.RECORD_ONLY, Decision.DROP)[trace_id % 3]
        state = get_current_span(parent_context).get_span_context().trace_state or TraceState()
        return SamplingResult(decision, {**(attributes or {}), "sampler.tag": name}, state.add("tagger", "1"))

    def get_description(self) -> str:
        return "Tagging"


SAMPLERS = {
    "parent-based 50%": ParentBased(TraceIdRatioBased(0.5)),
    "always on": ALWAYS_ON,
    "always off": ALWAYS_OFF,
    "ratio 50% (not parent-based)": TraceIdRatioBased(0.5),
    "tagging": Tagging(),
}
PARENTS = {
    "root": None,
    "caller sampled, with trace state": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "caller not sampled": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
    "caller sampled, random-trace-id flag": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
}


def _context(traceparent: str | None) -> Context | None:
    if traceparent is None:
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent, "tracestate": "vendor=abc"})


@pytest.mark.parametrize("random_ids", [True, False])
@pytest.mark.parametrize("parent", PARENTS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_the_start_is_what_the_sdks_tracer_makes_of_the_same_sampler_parent_and_ids(
    sampler: str, parent: str, random_ids: bool
) -> None:
    for start in range(0, 60, 3):  # ids that land on each side of the ratio samplers' bound
        sdk = TracerProvider(sampler=SAMPLERS[sampler], id_generator=Counting(start, random_ids))
        ours = TracerProvider(sampler=SAMPLERS[sampler], id_generator=Counting(start, random_ids))
        exporter = InMemorySpanExporter()
        sdk.add_span_processor(SimpleSpanProcessor(exporter))
        finished = FastSpans(ours, SimpleSpanProcessor(InMemorySpanExporter()), InstrumentationScope("t"))

        expected = sdk.get_tracer("t").start_span(
            "turnout.v1.RouterService/Generate", _context(PARENTS[parent]), SpanKind.SERVER, dict(ATTRS)
        )
        name = "turnout.v1.RouterService/Generate"
        got = finished.start(name, SpanKind.SERVER, _context(PARENTS[parent]), ATTRS)

        want = expected.get_span_context()
        assert got.context == want
        assert got.context.trace_flags == want.trace_flags  # SpanContext's == leaves flags out
        assert got.context.trace_state == want.trace_state
        assert got.context.is_remote is False
        assert got.recording == expected.is_recording()
        if expected.is_recording():
            assert dict(got.attributes or {}) == dict(expected.attributes)  # type: ignore[attr-defined]
            assert got.parent == expected.parent  # type: ignore[attr-defined]
        expected.end()


def _telemetry(ratio: float, exporter: InMemorySpanExporter) -> Any:
    options = TelemetryOptions(traces="none", metrics="none", prometheus=False, trace_sample_ratio=ratio)
    return build_telemetry(options, env={}, span_exporter=exporter)


def test_a_recorded_rpc_writes_its_server_span_under_the_callers_with_its_end_attributes_and_status() -> None:
    exporter = InMemorySpanExporter()
    t = _telemetry(1.0, exporter)
    metadata = (("traceparent", PARENTS["caller sampled, with trace state"]), ("tracestate", "vendor=abc"))
    with ObservedRpc(t, "Generate", metadata) as rpc:
        scope = rpc.call
        assert scope.span.recording
        current = get_current_span().get_span_context()
        assert current == scope.span.context  # the request's current span is the server span
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        rpc.ended = RpcEnded("UNAVAILABLE", 14, "unavailable")
    t.sdk.flush()
    [span] = exporter.get_finished_spans()
    assert span.name == "turnout.v1.RouterService/Generate"
    assert span.kind is SpanKind.SERVER
    assert span.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert span.parent is not None
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert span.parent.is_remote
    assert span.context.trace_state.get("vendor") == "abc"
    assert carrier["traceparent"] == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"
    assert span.attributes is not None
    assert {k: span.attributes[k] for k in ATTRS} == ATTRS
    assert span.attributes["rpc.grpc.status_code"] == 14
    assert span.attributes["error.type"] == "unavailable"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "UNAVAILABLE"
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time <= span.end_time
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "turnout"


def test_an_unrecorded_rpc_writes_nothing_yet_logs_and_propagates_its_trace() -> None:
    exporter = InMemorySpanExporter()
    options = TelemetryOptions(
        traces="none", metrics="none", prometheus=False, trace_sample_ratio=0.0, propagate_to_providers=True
    )
    t = build_telemetry(options, env={}, span_exporter=exporter)
    with ObservedRpc(t, "Route", ()) as rpc:
        scope = rpc.call
        assert not scope.span.recording
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    t.sdk.flush()
    assert exporter.get_finished_spans() == ()
    assert carrier["traceparent"].startswith(f"00-{scope.trace_id}-")
    assert carrier["traceparent"][-2:] in ("00", "02")  # not sampled (the random-trace-id bit may be set)


def test_an_unrecorded_rpc_that_propagates_nothing_leaves_the_current_context_alone() -> None:
    t = _telemetry(0.0, InMemorySpanExporter())  # propagate_to_providers off, the default
    with ObservedRpc(t, "Route", ()) as rpc:
        scope = rpc.call
        assert not scope.span.recording
        assert scope.trace_id  # still logged
        assert not get_current_span().get_span_context().is_valid
        assert scope.children_parent is False  # and its children are still not made
