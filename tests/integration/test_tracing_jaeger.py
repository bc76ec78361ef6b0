"""A real Jaeger receives the sidecar's OTLP spans: one trace per RPC with server, routing and GenAI
attempt spans, continuing the caller's W3C trace; over OTLP/gRPC and OTLP/HTTP, on both telemetry
paths (fast pieces, plain SDK) and with both GenAI namings (v1.41, latest)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import example_config, inject_fault
from tests.integration.services import Jaeger, span_tags
from tests.server.helpers import generate_request

pytestmark = pytest.mark.slow

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


def by_operation(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {span["operationName"]: span for span in trace["spans"]}


def parent_of(span: dict[str, Any]) -> str:
    refs = [r for r in span.get("references", []) if r["refType"] == "CHILD_OF"]
    return str(refs[0]["spanID"]) if refs else ""


async def generate_with_fallback(sidecar: Sidecar, simulator: Simulator, traceparent: str) -> Any:
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
    async with grpc.aio.insecure_channel(sidecar.address) as channel:
        return await pb_grpc.RouterServiceStub(channel).Generate(
            generate_request("where is my parcel?", tenant_id="acme"),
            metadata=(("traceparent", traceparent),),
        )


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_jaeger_holds_the_server_routing_and_attempt_spans_of_a_fallback(
    jaeger: Jaeger,
    simulator: Simulator,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
    telemetry_path: str,
    latest_names: bool,
):
    variant = (protocol == "grpc", telemetry_path == "fast", latest_names)
    number = 1 + sum(bit << i for i, bit in enumerate(variant))
    service = f"turnout-it-{number}"
    endpoint = jaeger.otlp_grpc_endpoint if protocol == "grpc" else jaeger.otlp_http_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    trace_id = CALLER_TRACE[:-4] + f"{number:04x}"
    sidecar = Sidecar(example_config(simulator.base_url), ListenOverrides(host="127.0.0.1", port=0))
    await sidecar.start()
    try:
        assert sidecar.telemetry.tracing  # `traces: auto` + an OTLP endpoint = export
        response = await generate_with_fallback(sidecar, simulator, f"00-{trace_id}-{CALLER_SPAN}-01")
    finally:
        await sidecar.stop(grace_s=0)  # flushes the span batch
    assert response.trace_id == trace_id
    # The route retries a failed model once after a backoff; on a slow machine that retry can
    # start before the fallback answers, and is then cancelled: a third attempt, a third span.
    settled = [a for a in response.attempts if a.outcome != pb.ATTEMPT_OUTCOME_CANCELLED]
    assert [a.model for a in settled] == ["gpt-4o-mini", "gemini-2.5-flash"]

    traces = await asyncio.to_thread(jaeger.wait_for_traces, service, 1, 30.0, 4)
    (trace,) = [t for t in traces if t["traceID"] == trace_id]
    spans = by_operation(trace)
    server = spans["turnout.v1.RouterService/Generate"]
    routing = spans["route default"]
    attempts = {
        span_tags(s)["turnout.attempt.number"]: s
        for s in trace["spans"]
        if s["operationName"].startswith("chat ")
    }
    failed, answered = attempts[1], attempts[2]
    assert (failed["operationName"], answered["operationName"]) == (
        "chat gpt-4o-mini",
        "chat gemini-2.5-flash",
    )
    assert parent_of(server) == CALLER_SPAN  # the caller's trace, continued
    for child in (routing, failed, answered):
        assert parent_of(child) == server["spanID"]

    tags = span_tags(server)
    assert tags["span.kind"] == "server"
    assert tags["rpc.system"] == "grpc"
    assert tags["rpc.method"] == "Generate"
    assert tags["turnout.winner"] == "gemini-2.5-flash"
    assert tags["turnout.tenant"].startswith("h:")
    routing_tags = span_tags(routing)
    assert routing_tags["turnout.decision.model"] == "gpt-4o-mini"
    assert routing_tags["turnout.strategy"] == "rules>capability>sla"
    assert routing_tags["turnout.decision.cache_hit"] is False
    if latest_names:  # the decision after the gen_ai.gateway.* proposal
        assert routing_tags["gen_ai.gateway.name"] == "turnout"
        assert routing_tags["gen_ai.gateway.request.model"] == "default"
        assert routing_tags["gen_ai.gateway.version"]
    else:
        assert not [key for key in routing_tags if key.startswith("gen_ai.gateway.")]
    failed_tags, answered_tags = span_tags(failed), span_tags(answered)
    assert failed_tags["span.kind"] == answered_tags["span.kind"] == "client"
    assert failed_tags["gen_ai.operation.name"] == "chat"
    assert failed_tags["gen_ai.provider.name"] == "openai"
    assert failed_tags["gen_ai.request.model"] == "gpt-4o-mini"
    assert failed_tags["error.type"] == "server_error"
    assert failed_tags["error"] is True  # Jaeger's rendering of an ERROR status
    assert answered_tags["gen_ai.provider.name"] == "gcp.gemini"
    assert answered_tags["gen_ai.response.model"] == "gemini-2.5-flash"
    assert answered_tags["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    assert answered_tags["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert answered_tags["turnout.attempt.cause"] == "fallback"
    assert answered_tags["turnout.fallback.reason"] == "server_error"
    assert answered_tags["turnout.cost.usd"] == pytest.approx(response.cost_usd_nanos / 1e9)
    assert answered_tags["server.address"] == "127.0.0.1"
    recorded = str(trace)
    assert "where is my parcel" not in recorded  # no content without the opt-in
    assert "acme" not in recorded.replace(tags["turnout.tenant"], "")  # the tenant, hashed only
