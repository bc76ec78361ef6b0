"""Bad input gets the right status code and details naming the field; the server keeps serving."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from tests.conftest import inject_fault
from tests.server.helpers import details, generate_request, user, violated_fields


async def call_fails(stub, request, *, deadline_s=None):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(request, timeout=deadline_s)
    return info.value


def bad_schema_request() -> pb.GenerateRequest:
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA)
    fmt.json_schema.name = "out"
    fmt.json_schema.schema.update({"type": "banana", "properties": {"x": {"minimum": "five"}}})
    return generate_request(response_format=fmt)


@pytest.mark.parametrize(
    ("request_", "code", "reason", "fields"),
    [
        (pb.GenerateRequest(), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", ["messages"]),
        (
            pb.GenerateRequest(messages=[pb.Message(content=[pb.ContentPart(text="no role")])]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            ["messages[0].role"],
        ),
        (
            pb.GenerateRequest(messages=[user("hi"), pb.Message(role=pb.ROLE_USER)]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            ["messages[1].content"],
        ),
        (
            generate_request(hints=pb.RoutingHints(pinned_model="gpt-99")),
            grpc.StatusCode.NOT_FOUND,
            "MODEL_NOT_FOUND",
            ["hints.pinned_model"],
        ),
        (
            generate_request(hints=pb.RoutingHints(route="no-such-route")),
            grpc.StatusCode.NOT_FOUND,
            "ROUTE_NOT_FOUND",
            ["hints.route"],
        ),
        (
            bad_schema_request(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            [  # each problem at its path in the schema
                "response_format.json_schema.schema.properties.x.minimum",
                "response_format.json_schema.schema.type",
            ],
        ),
        (
            generate_request(
                params=pb.GenerationParams(
                    max_output_tokens=-5,
                    temperature=3.0,
                    logprobs=True,
                    top_logprobs=21,
                    frequency_penalty=2.5,
                    presence_penalty=float("nan"),
                ),
                hints=pb.RoutingHints(quality_floor=1.5),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            [
                "params.max_output_tokens",
                "params.temperature",
                "params.top_logprobs",
                "params.frequency_penalty",
                "params.presence_penalty",
                "hints.quality_floor",
            ],
        ),
        (
            pb.GenerateRequest(
                messages=[
                    pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(image=pb.Image(data=b"\x89PNG"))])
                ]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            ["messages[0].content[0].image.media_type"],
        ),
        (
            generate_request(tool_choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            ["tool_choice.function_name", "tool_choice.mode"],
        ),
        (
            generate_request(hints=pb.RoutingHints(route="support-chat", task_type="poetry")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_REQUEST",
            ["hints.task_type"],
        ),
    ],
)
async def test_bad_requests_name_the_field(stub, request_, code, reason, fields):
    error = await call_fails(stub, request_)
    assert error.code() == code
    found = details(error)
    assert found["ErrorInfo"].reason == reason
    assert found["ErrorInfo"].domain == "turnout.dev"
    assert violated_fields(error) == fields
    # the server is still up and serving
    assert (await stub.Generate(generate_request())).output.text


async def test_malformed_schema_error_says_what_is_wrong(stub):
    error = await call_fails(stub, bad_schema_request())
    minimum, type_ = details(error)["BadRequest"].field_violations
    assert "not a valid JSON Schema" in type_.description
    assert "banana" in type_.description
    assert '"five" is not of type "number"' in minimum.description


async def test_message_over_the_size_limit(simulator):
    from sidecar.app import ListenOverrides, Sidecar
    from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
    from tests.conftest import example_config

    sidecar = Sidecar(example_config(simulator.base_url, max_request_mb=1), ListenOverrides(port=0))
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            error = await call_fails(stub, generate_request("x" * (2 * 1024 * 1024)))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert details(error)["ErrorInfo"].reason == "REQUEST_TOO_LARGE"
            assert violated_fields(error) == ["messages"]
            assert "over the limit of 1,048,576" in error.details()
    finally:
        await sidecar.stop(grace_s=0)


async def test_input_over_every_context_window_is_failed_precondition(stub):
    error = await call_fails(
        stub, generate_request("word " * 1_000_000, hints=pb.RoutingHints(pinned_model="mixtral-8x7b"))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    found = details(error)
    assert found["ErrorInfo"].reason == "NO_CANDIDATE"
    assert found["ErrorInfo"].metadata["rejected.mixtral-8x7b"].startswith("context 32,768 < ")
    assert "exceeds the largest context window by" in error.details()


async def test_no_candidate_lists_every_rejection(stub):
    request = generate_request(
        hints=pb.RoutingHints(
            denied_providers=["openai", "google"], required_capabilities=[pb.CAPABILITY_VISION]
        )
    )
    error = await call_fails(stub, request)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    metadata = details(error)["ErrorInfo"].metadata
    assert metadata["rejected.gpt-4o-mini"] == "provider openai denied by hints.denied_providers"
    assert metadata["rejected.gemini-2.5-flash"] == "provider google denied by hints.denied_providers"


async def test_grpc_deadline_is_honoured(stub, simulator):
    await inject_fault(simulator, model="*", kind="hang", count=1)
    error = await call_fails(stub, generate_request(), deadline_s=0.3)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The hang was one request's: the next one is answered.
    answer = await stub.Generate(generate_request(), timeout=10)
    assert answer.output.text.strip()
    assert answer.model in {a.model for a in answer.attempts if a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS}


async def test_latency_budget_ends_the_request_with_details(stub, simulator):
    await inject_fault(simulator, model="*", kind="hang", count=5)
    budget = pb.RoutingHints(pinned_model="gpt-4o-mini")  # pinned: no SLA filter, straight to the model
    budget.latency_budget.FromTimedelta(timedelta(milliseconds=300))
    error = await call_fails(stub, generate_request(hints=budget), deadline_s=10)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "latency budget of 0.300s" in error.details()
    assert details(error)["ErrorInfo"].reason == "DEADLINE_EXCEEDED"


async def test_route_rpc_validates_too(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Route(pb.RouteRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(info.value) == ["messages"]


async def test_stream_rpc_validates_too(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.GenerateStream(
            pb.GenerateStreamRequest(hints=pb.RoutingHints(pinned_model="nope"))
        ):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(info.value) == ["messages"]


async def test_a_budget_no_model_can_meet_is_refused_up_front(stub):
    hints = pb.RoutingHints()
    hints.latency_budget.FromTimedelta(timedelta(milliseconds=300))
    error = await call_fails(stub, generate_request(hints=hints))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    metadata = details(error)["ErrorInfo"].metadata
    assert metadata["rejected.gpt-4o-mini"] == "latency 0.80 s > budget 0.30 s"
