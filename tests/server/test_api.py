"""The RouterService end to end over gRPC: sidecar -> OpenAI adapter -> simulator, all on loopback."""

from __future__ import annotations

import json

import grpc
import pytest
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from tests.conftest import inject_fault
from tests.server.helpers import generate_request, user


async def test_generate_returns_answer_decision_usage_cost_and_attempts(stub):
    response = await stub.Generate(
        generate_request(request_id="req-1", hints=pb.RoutingHints(task_type="classify"))
    )
    assert response.output.text
    assert response.finish_reason == pb.FINISH_REASON_STOP
    assert response.model == "gpt-4.1-nano"
    assert response.provider == "openai"
    assert response.request_id == "req-1"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens > 0
    # price: $0.10 in / $0.40 out per million tokens, in usd_nanos
    expected = round(response.usage.input_tokens * 100 + response.usage.output_tokens * 400)
    assert response.cost_usd_nanos == expected
    assert response.total_cost_usd_nanos == expected
    d = response.decision
    assert (d.model, d.route, d.strategy) == ("gpt-4.1-nano", "default", "rules>capability>sla")
    assert [c.model for c in d.stages[0].candidates] == ["gpt-4.1-nano", "gpt-4o-mini", "gemini-2.5-flash"]
    assert [(c.model, c.kept) for c in d.considered] == [
        ("gpt-4.1-nano", True),
        ("gpt-4o-mini", True),
        ("gemini-2.5-flash", True),
    ]
    assert d.considered[0].notes == ["listed by rule 'simple-tasks'"]
    assert [c.model for c in d.fallbacks] == ["gpt-4o-mini", "gemini-2.5-flash"]
    assert any("rule 'simple-tasks' matched" in r for r in d.reasons)
    assert d.estimated_input_tokens > 0
    assert d.estimated_cost_usd_nanos > 0
    assert d.HasField("estimated_latency")
    assert [(a.number, a.model, a.outcome) for a in response.attempts] == [
        (1, "gpt-4.1-nano", pb.ATTEMPT_OUTCOME_SUCCESS)
    ]
    assert response.attempts[0].latency.ToTimedelta().total_seconds() > 0


async def test_first_choice_failing_falls_back_and_lists_both_attempts(stub, simulator):
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", rate=1.0)  # the endpoint is down
    response = await stub.Generate(generate_request())
    assert response.model == "gemini-2.5-flash"
    first = response.attempts[0]
    assert (first.model, first.outcome, first.failure_class) == (
        "gpt-4o-mini",
        pb.ATTEMPT_OUTCOME_FAILURE,
        pb.FAILURE_CLASS_SERVER_ERROR,
    )
    assert "500" in first.error_message
    winner = next(a for a in response.attempts if a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS)
    assert winner.model == "gemini-2.5-flash"
    # The route retries once after a backoff: that retry of the failing model may show, never as a success.
    assert {a.model for a in response.attempts if a.number != winner.number} == {"gpt-4o-mini"}


async def test_stream_sends_deltas_then_one_end_event(stub):
    events = [e async for e in stub.GenerateStream(pb.GenerateStreamRequest(messages=[user("Tell a story")]))]
    deltas = [e.delta for e in events if e.HasField("delta")]
    ends = [e.end for e in events if e.HasField("end")]
    assert len(deltas) > 1
    assert len(ends) == 1
    assert events[-1].HasField("end")
    end = ends[0]
    assert "".join(d.text for d in deltas).strip()
    assert end.model == "gpt-4o-mini"
    assert end.usage.output_tokens > 0
    assert end.cost_usd_nanos > 0
    assert end.attempts[0].HasField("time_to_first_token")
    assert end.decision.model == "gpt-4o-mini"


async def test_stream_failover_before_first_token(stub, simulator):
    await inject_fault(simulator, model="gpt-4o-mini", kind="overloaded", rate=1.0)
    events = [e async for e in stub.GenerateStream(pb.GenerateStreamRequest(messages=[user("hi")]))]
    end = events[-1].end
    assert end.model == "gemini-2.5-flash"
    assert end.attempts[0].failure_class == pb.FAILURE_CLASS_OVERLOADED
    assert [a.model for a in end.attempts if a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS] == ["gemini-2.5-flash"]


async def test_json_schema_output_is_parsed(stub):
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["spam", "ham"]},
            "confidence": {"type": "number"},
        },
        "required": ["label", "confidence"],
    }
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA)
    fmt.json_schema.name = "verdict"
    fmt.json_schema.schema.update(schema)
    response = await stub.Generate(generate_request(response_format=fmt))
    parsed = json_format.MessageToDict(response.output.parsed_json)
    assert parsed == json.loads(response.output.text)
    assert parsed["label"] in ("spam", "ham")


async def test_tool_call_is_returned(stub):
    tool = pb.Tool(name="lookup_order", description="Find an order")
    tool.parameters.update(
        {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
    )
    response = await stub.Generate(
        generate_request(
            "Where is order 42?", tools=[tool], tool_choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)
        )
    )
    assert response.finish_reason == pb.FINISH_REASON_TOOL_CALLS
    (call,) = response.output.tool_calls
    assert call.name == "lookup_order"
    assert "order_id" in json.loads(call.arguments_json)


async def test_route_decides_without_calling_a_provider(stub, simulator):
    before = simulator.state.stats.snapshot() if hasattr(simulator.state.stats, "snapshot") else None
    response = await stub.Route(
        pb.RouteRequest(messages=[user("hello")], hints=pb.RoutingHints(user_tier="enterprise"))
    )
    assert response.decision.model == "gpt-4o"
    assert response.request_id  # generated when the caller gives none
    if before is not None:
        assert simulator.state.stats.snapshot() == before


async def test_list_models_reports_registry_and_live_health(stub):
    await stub.Generate(generate_request())
    response = await stub.ListModels(pb.ListModelsRequest())
    by_name = {m.name: m for m in response.models}
    assert len(by_name) == 9
    mini = by_name["gpt-4o-mini"]
    assert mini.input_price_usd_nanos_per_mtok == 150_000_000
    assert mini.context_window == 128000
    assert pb.CAPABILITY_TOOLS in mini.capabilities
    assert mini.health.state == pb.HEALTH_STATE_HEALTHY
    assert mini.health.attempts == 1
    assert by_name["gpt-4o"].health.state == pb.HEALTH_STATE_UNKNOWN
    assert mini.endpoint.startswith("http://127.0.0.1:")


async def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "turnout.v1.RouterService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = [
        r
        async for r in reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    ]
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"turnout.v1.RouterService", "grpc.health.v1.Health"} <= names


async def test_every_provider_down_gives_unavailable_with_retry_info(stub, simulator):
    await inject_fault(simulator, model="*", kind="rate_limit", count=10, retry_after_s=2)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(generate_request())
    from tests.server.helpers import details

    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    found = details(info.value)
    assert found["ErrorInfo"].reason == "ALL_CANDIDATES_FAILED"
    assert found["RetryInfo"].retry_delay.seconds == 2
    for model in ("gpt-4o-mini", "gemini-2.5-flash", "gpt-4o"):
        assert f"{model}: rate_limited" in info.value.details()


async def test_route_explains_every_model_and_marks_cache_hits(stub):
    request = pb.RouteRequest(
        messages=[user("Help with my invoice")],
        hints=pb.RoutingHints(route="support-chat", task_type="answer", user_tier="free"),
    )
    first = (await stub.Route(request)).decision
    second = (await stub.Route(request)).decision
    assert first.strategy == "rules>capability>sla>scoring>cascade"
    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert second.model == first.model
    kept = {c.model: c for c in first.considered if c.kept}
    dropped = {c.model: c for c in first.considered if not c.kept}
    assert set(kept) | set(dropped) == {"claude-3-5-haiku", "gpt-4o-mini", "gpt-4o", "claude-sonnet-4"}
    assert dropped["gpt-4o"].notes[-1] == "not allowed for tier 'free'"
    assert any(n.startswith("score ") for n in kept["gpt-4o-mini"].notes)
    assert [r.model for r in first.rejected] == [c.model for c in first.considered if not c.kept]
    # Free tier: mini and haiku are left, haiku is no better, so one stage with a fallback.
    assert [[c.model for c in s.candidates] for s in first.stages] == [["gpt-4o-mini", "claude-3-5-haiku"]]
    request.hints.user_tier = "pro"
    pro = (await stub.Route(request)).decision
    assert [s.candidates[0].model for s in pro.stages] == ["gpt-4o-mini", "gpt-4o"]
    assert list(pro.stages[0].escalate_on) == ["invalid_output", "length", "refusal"]


async def test_input_over_every_window_is_trimmed_and_the_decision_says_so(stub):
    # About 1.1M tokens for every tokenizer: over the ~1M windows of every model of the route.
    giant = "word " * 1_100_000
    messages = [
        user("Here is the log: " + giant),
        pb.Message(role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(text="Got it.")]),
        user("What went wrong?"),
    ]
    request = pb.GenerateRequest(messages=messages, hints=pb.RoutingHints(route="long-context"))
    response = await stub.Generate(request)
    t = response.decision.truncation
    assert t.strategy == "trim_middle"
    assert t.removed_tokens > 50_000
    assert any("trim_middle removed" in r for r in response.decision.reasons)
    assert response.output.text
    assert response.usage.input_tokens < 1_048_576
