"""The span encoder writes the message the SDK's OTLP encoder makes, for every kind of span content."""

from __future__ import annotations

import logging
import random
import string
from typing import Any

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from sidecar.telemetry.fast.otlp_spans import SpanEncoder, grpc_span_exporter


def decoded(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans))


def provider(
    resource: Resource, limits: SpanLimits | None = None
) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=resource, span_limits=limits)
    tp.add_span_processor(SimpleSpanProcessor(memory))
    return tp, memory


EVERY_KIND: dict[str, Any] = {
    "str": "chat",
    "str.empty": "",
    "str.unicode": "héllo → 世界 🚀",
    "str.long": "x" * 20_000,  # a length beyond the one-byte and two-byte varints
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.small": 7,
    "int.negative": -42,
    "int.max": (1 << 63) - 1,
    "int.min": -(1 << 63),
    "float": 0.00012,
    "float.negative": -3.5,
    "float.zero": 0.0,
    "bytes": b"\x00\x01\xff",
    "list.str": ["stop", "length"],
    "list.int": [1, -2, 3],
    "list.bool": [True, False],
    "list.float": [0.5, 1.5],
    "list.empty": [],
    "mapping": {"a": 1, "b": "two", "c": [True]},
}


def test_every_attribute_type_event_link_status_and_parent_match_the_sdk_encoder() -> None:
    tp, memory = provider(Resource.create({"service.name": "turnout", "host.name": "pod-1"}))
    tracer = tp.get_tracer("turnout", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.41.0")
    remote = SpanContext(
        trace_id=0x0123456789ABCDEF0123456789ABCDEF,
        span_id=0x1122334455667788,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
        trace_state=TraceState([("vendor", "value"), ("other", "x")]),
    )
    server = tracer.start_span(
        "turnout.v1.Router/Generate",
        context=set_span_in_context(NonRecordingSpan(remote)),
        kind=SpanKind.SERVER,
        attributes=EVERY_KIND,
    )
    linked = SpanContext(trace_id=5, span_id=6, is_remote=True, trace_flags=TraceFlags(1))
    child = tracer.start_span(
        "chat gpt-4o-mini",
        context=set_span_in_context(server),
        kind=SpanKind.CLIENT,
        links=[Link(linked, {"why": "hedge", "n": 2}), Link(server.get_span_context())],
    )
    child.add_event("first chunk", {"gen_ai.response.time_to_first_chunk": 0.01})
    child.add_event("bare")
    child.set_status(Status(StatusCode.ERROR, "upstream 503"))
    child.end()
    for kind in (SpanKind.INTERNAL, SpanKind.PRODUCER, SpanKind.CONSUMER):
        tracer.start_span(kind.name.lower(), kind=kind).end()
    server.set_status(Status(StatusCode.OK))
    server.end()
    spans = list(memory.get_finished_spans())
    assert len(spans) == 5
    assert decoded(spans) == encode_spans(spans)


def test_spans_of_several_resources_and_scopes_are_grouped_as_the_sdk_groups_them() -> None:
    spans: list[ReadableSpan] = []
    for name in ("a", "b"):
        tp, memory = provider(Resource.create({"service.name": name}))
        for scope in ("turnout", "turnout.policy"):
            tracer = tp.get_tracer(scope)
            for i in range(3):
                tracer.start_span(f"{scope} {i}", attributes={"i": i}).end()
        spans.extend(memory.get_finished_spans())
    random.Random(7).shuffle(spans)
    ours = decoded(spans)
    assert len(ours.resource_spans) == 2
    assert all(len(rs.scope_spans) == 2 for rs in ours.resource_spans)
    assert ours == encode_spans(spans)


def test_dropped_counts_under_span_limits_are_carried() -> None:
    limits = SpanLimits(max_span_attributes=2, max_events=1, max_links=1, max_event_attributes=1)
    tp, memory = provider(Resource.create({}), limits)
    link = Link(SpanContext(1, 2, is_remote=False), {"x": 1})
    span = tp.get_tracer("t").start_span("s", attributes={"a": 1, "b": 2, "c": 3}, links=[link, link])
    span.add_event("e1")
    span.add_event("e2", {"k1": 1, "k2": 2})  # the one kept: the oldest event is dropped
    span.end()
    spans = list(memory.get_finished_spans())
    ours = decoded(spans)
    pb = ours.resource_spans[0].scope_spans[0].spans[0]
    assert (pb.dropped_attributes_count, pb.dropped_events_count, pb.dropped_links_count) == (1, 1, 1)
    assert pb.events[0].dropped_attributes_count == 1
    assert ours == encode_spans(spans)


def test_an_int_beyond_64_bits_is_dropped_with_a_log_and_the_rest_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tp, memory = provider(Resource.create({}))
    tp.get_tracer("t").start_span("s", attributes={"big": 1 << 64, "small": 1, "list": [1, 1 << 70]}).end()
    spans = list(memory.get_finished_spans())
    with caplog.at_level(logging.ERROR, logger="sidecar.telemetry.fast.otlp_spans"):
        ours = decoded(spans)
    attributes = ours.resource_spans[0].scope_spans[0].spans[0].attributes
    assert [kv.key for kv in attributes] == ["small"]
    assert "big" in caplog.text
    assert "list" in caplog.text
    logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal").disabled = True
    try:
        assert ours == encode_spans(spans)  # the SDK drops the same ones (and logs each)
    finally:
        logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal").disabled = False


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(8 if depth == 0 else 6)
    if choice == 0:
        return "".join(rng.choices(string.printable + "éü世", k=rng.randrange(0, 300)))
    if choice == 1:
        return rng.random() < 0.5
    if choice == 2:
        return rng.randrange(-(1 << 63), 1 << 63)
    if choice == 3:
        return rng.uniform(-1e9, 1e9)
    if choice == 4:
        return rng.randbytes(rng.randrange(0, 40))
    if choice == 5:
        return rng.randrange(0, 200)
    if choice == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(0, 4))}


def test_random_spans_with_repeated_attribute_values_match_the_sdk_encoder() -> None:
    """Many batches through one encoder: its caches of keys and pairs must never change a byte."""
    rng = random.Random(20261129)
    tp, memory = provider(Resource.create({"service.name": "turnout"}))
    tracer = tp.get_tracer("turnout")
    keys = [f"turnout.attr.{i}" for i in range(30)]
    encoder = SpanEncoder()
    for _ in range(40):
        memory.clear()
        for _ in range(rng.randrange(1, 30)):
            attrs = {rng.choice(keys): _random_value(rng) for _ in range(rng.randrange(0, 15))}
            # repeats of the same key with values of equal hash but another type (1, 1.0, True)
            attrs[rng.choice(keys)] = rng.choice([1, 1.0, True, 0, 0.0, False, "1"])
            span = tracer.start_span(
                rng.choice(["a", "b", ""]), kind=rng.choice(list(SpanKind)), attributes=attrs
            )
            span.end()
        spans = list(memory.get_finished_spans())
        assert ExportTraceServiceRequest.FromString(encoder.encode(spans)) == encode_spans(spans)


class _Collector:
    """An OTLP/gRPC trace collector on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.server = grpc.server(__import__("concurrent.futures").futures.ThreadPoolExecutor(2))

        def export(request: bytes, context: Any) -> bytes:
            self.requests.append(request)
            return b""

        handler = grpc.unary_unary_rpc_method_handler(export)
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}
                ),
            )
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()


def test_the_grpc_exporter_sends_the_encoded_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = _Collector()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{collector.port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
        encoded: list[int] = []
        real_encode = SpanEncoder.encode

        def spy(self: SpanEncoder, spans: Any) -> bytes:
            encoded.append(len(spans))
            return real_encode(self, spans)

        monkeypatch.setattr(SpanEncoder, "encode", spy)
        exporter = grpc_span_exporter()
        tp, memory = provider(Resource.create({"service.name": "turnout"}))
        tp.get_tracer("turnout").start_span("chat m", attributes={"gen_ai.operation.name": "chat"}).end()
        spans = list(memory.get_finished_spans())
        assert exporter.export(spans).name == "SUCCESS"
        exporter.shutdown()
    finally:
        collector.server.stop(0)
    assert len(collector.requests) == 1
    assert encoded == [1]  # our encoder made the request, not the SDK's (same message either way)
    assert ExportTraceServiceRequest.FromString(collector.requests[0]) == encode_spans(spans)
