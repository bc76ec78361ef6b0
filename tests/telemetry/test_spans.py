"""Spans: one SERVER span per RPC (continuing the caller's trace), a routing span, and one CLIENT span
per provider attempt named and attributed by the GenAI semantic conventions."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from turnout_simulator.server import Simulator

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from tests.conftest import inject_fault
from tests.server.helpers import generate_request, user
from tests.telemetry.conftest import Lines, Observed, observed_sidecar

GENERATE = "turnout.v1.RouterService/Generate"


def assert_has(span: Any, expected: dict[str, Any]) -> None:
    attrs = dict(span.attributes)
    assert {k: attrs.get(k) for k in expected} == expected


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def test_a_fallback_is_one_trace_server_routing_and_two_genai_attempt_spans(
    observed: Observed, simulator
):
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
    response = await observed.stub.Generate(generate_request("hello there", tenant_id="acme"))
    # The route retries a failed model once after a backoff; on a slow machine that retry can
    # start before the fallback answers, and is then cancelled: a third attempt, a third span.
    settled = [a for a in response.attempts if a.outcome != pb.ATTEMPT_OUTCOME_CANCELLED]
    assert [a.model for a in settled] == ["gpt-4o-mini", "gemini-2.5-flash"]

    server = observed.span(GENERATE)
    routing = observed.span("route default")
    attempts = {
        s.attributes["turnout.attempt.number"]: s for s in observed.spans() if s.name.startswith("chat ")
    }
    failed, answered = attempts[1], attempts[2]
    assert (failed.name, answered.name) == ("chat gpt-4o-mini", "chat gemini-2.5-flash")
    assert server.kind is SpanKind.SERVER
    assert server.parent is None
    assert routing.kind is SpanKind.INTERNAL
    assert failed.kind is answered.kind is SpanKind.CLIENT
    for child in (routing, failed, answered):
        assert child.context.trace_id == server.context.trace_id
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
    assert response.trace_id == format(server.context.trace_id, "032x")

    assert_has(
        server,
        {
            "rpc.system": "grpc",
            "rpc.service": "turnout.v1.RouterService",
            "rpc.method": "Generate",
            "rpc.grpc.status_code": 0,
            "turnout.route": "default",
            "turnout.attempts": len(response.attempts),
            "turnout.winner": "gemini-2.5-flash",
        },
    )
    assert_has(
        routing,
        {
            "turnout.route": "default",
            "turnout.strategy": "rules>capability>sla",
            "turnout.decision.model": "gpt-4o-mini",
            "turnout.decision.candidates": "gpt-4o-mini, gemini-2.5-flash, gpt-4o",
            "turnout.decision.cache_hit": False,
        },
    )
    assert routing.attributes["turnout.decision.reasons"]  # the decision explains itself
    assert routing.end_time - routing.start_time == routing.attributes["turnout.decision.time_us"] * 1000

    port = int(simulator.root_url.rsplit(":", 1)[1])
    assert_has(
        failed,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "server.address": "127.0.0.1",
            "server.port": port,
            "error.type": "server_error",
            "turnout.attempt.number": 1,
            "turnout.attempt.cause": "primary",
            "turnout.attempt.outcome": "failure",
            "turnout.breaker.state": "closed",
        },
    )
    assert failed.status.status_code is StatusCode.ERROR
    assert_has(
        answered,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "gcp.gemini",
            "gen_ai.request.model": "gemini-2.5-flash",
            "gen_ai.response.model": "gemini-2.5-flash",
            "gen_ai.usage.input_tokens": response.usage.input_tokens,
            "gen_ai.usage.output_tokens": response.usage.output_tokens,
            "gen_ai.response.finish_reasons": ("stop",),
            "turnout.attempt.number": 2,
            "turnout.attempt.cause": "fallback",
            "turnout.fallback.reason": "server_error",
            "turnout.attempt.outcome": "success",
            "turnout.cost.usd": pytest.approx(response.cost_usd_nanos / 1e9),
        },
    )
    assert "error.type" not in answered.attributes
    assert failed.end_time <= answered.start_time  # the fallback started after the failure


async def test_the_server_span_continues_the_callers_w3c_trace(observed: Observed):
    traceparent = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
    response = await observed.stub.Generate(generate_request(), metadata=(("traceparent", traceparent),))
    server = observed.span(GENERATE)
    assert format(server.context.trace_id, "032x") == CALLER_TRACE == response.trace_id
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == CALLER_SPAN
    assert server.parent.is_remote
    assert all(format(s.context.trace_id, "032x") == CALLER_TRACE for s in observed.spans())


async def test_route_rpc_has_a_server_and_a_routing_span_and_no_attempts(observed: Observed):
    await observed.stub.Route(pb.RouteRequest(messages=[user("hi")], hints=pb.RoutingHints(route="balanced")))
    names = sorted(s.name for s in observed.spans())
    assert names == ["route balanced", "turnout.v1.RouterService/Route"]


async def test_a_failed_rpc_records_its_status_and_error_type(observed: Observed):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await observed.stub.Generate(pb.GenerateRequest(messages=[]))
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    server = observed.span(GENERATE)
    assert server.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert server.attributes["error.type"] == "InvalidRequest"
    assert server.status.status_code is StatusCode.ERROR


async def test_streams_record_time_to_first_chunk(observed: Observed):
    stream = observed.stub.GenerateStream(pb.GenerateStreamRequest(messages=[user("tell me a story")]))
    events = [e async for e in stream]
    assert events[-1].HasField("end")
    server = observed.span("turnout.v1.RouterService/GenerateStream")
    (attempt,) = [s for s in observed.spans() if s.kind is SpanKind.CLIENT]
    assert attempt.parent is not None
    assert attempt.parent.span_id == server.context.span_id
    assert 0 < attempt.attributes["gen_ai.response.time_to_first_chunk"] < 5
    assert events[-1].end.trace_id == format(server.context.trace_id, "032x")


async def test_with_otel_sdk_disabled_there_are_no_spans_and_no_trace_id(
    simulator: Simulator, access_log: Lines
):
    async with observed_sidecar(simulator, access_log, env={"OTEL_SDK_DISABLED": "true"}) as o:
        response = await o.stub.Generate(generate_request())
        assert response.trace_id == ""
        assert not o.telemetry.tracing
        assert o.log_lines()[0]["status"] == "OK"  # the request log is not OpenTelemetry: it stays
