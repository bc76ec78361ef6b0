"""The real Jaeger and Prometheus work on their own, before any sidecar telemetry is involved: a span
exported with the OpenTelemetry SDK comes back from Jaeger's query API with its attributes, and
Prometheus scrapes a prometheus_client endpoint and answers PromQL about it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry, Counter, start_http_server

from tests.integration.services import Jaeger, Prometheus, free_port, span_tags

pytestmark = pytest.mark.slow


def exporter(jaeger: Jaeger, protocol: str) -> SpanExporter:
    if protocol == "grpc":
        return GrpcSpanExporter(endpoint=jaeger.otlp_grpc_endpoint, insecure=True, timeout=10)
    return HttpSpanExporter(endpoint=f"{jaeger.otlp_http_endpoint}/v1/traces", timeout=10)


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_jaeger_stores_an_otlp_span_with_its_attributes(jaeger: Jaeger, protocol: str) -> None:
    service = f"smoke-{protocol}-{uuid.uuid4().hex[:8]}"
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter(jaeger, protocol)))
    tracer = provider.get_tracer("turnout.tests")
    with tracer.start_as_current_span("route") as parent:
        parent.set_attributes({"turnout.route": "chat", "turnout.attempts": 2, "turnout.cost_usd": 0.25})
        with tracer.start_as_current_span("attempt") as child:
            child.set_attribute("turnout.model", "tiny")
            child.set_attribute("turnout.hedged", False)
    provider.shutdown()

    (trace,) = jaeger.wait_for_traces(service, spans=2)
    spans = {span["operationName"]: span for span in trace["spans"]}
    assert set(spans) == {"route", "attempt"}
    route, attempt = span_tags(spans["route"]), span_tags(spans["attempt"])
    assert route.items() >= {"turnout.route": "chat", "turnout.attempts": 2, "turnout.cost_usd": 0.25}.items()
    assert attempt.items() >= {"turnout.model": "tiny", "turnout.hedged": False}.items()
    (parent_ref,) = spans["attempt"]["references"]
    assert parent_ref["refType"] == "CHILD_OF"
    assert parent_ref["spanID"] == spans["route"]["spanID"]
    assert trace["processes"][spans["route"]["processID"]]["serviceName"] == service


@pytest.fixture
def metrics_endpoint() -> Iterator[tuple[str, Counter]]:
    """A prometheus_client /metrics endpoint on 127.0.0.1 with one counter."""
    registry = CollectorRegistry()
    counter = Counter("smoke_requests", "Requests seen by the smoke test.", ["outcome"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", counter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_prometheus_scrapes_an_endpoint_and_answers_promql(
    prometheus: Prometheus, metrics_endpoint: tuple[str, Counter]
) -> None:
    target, counter = metrics_endpoint
    counter.labels(outcome="ok").inc(3)
    counter.labels(outcome="error").inc()
    prometheus.set_targets([target])

    (up,) = prometheus.wait_for(f'up{{instance="{target}"}} == 1')
    assert up["metric"]["job"] == prometheus.job
    result = prometheus.wait_for(f'sum by (outcome) (smoke_requests_total{{instance="{target}"}})')
    assert {r["metric"]["outcome"]: float(r["value"][1]) for r in result} == {"ok": 3.0, "error": 1.0}
    assert [t["health"] for t in prometheus.targets() if t["labels"]["instance"] == target] == ["up"]
