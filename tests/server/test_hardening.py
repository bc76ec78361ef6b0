"""Issue 20, findings 3, 4 and 8: client input never ends as INTERNAL or UNKNOWN, error details
are bounded in size, and the smaller edge cases (blank text, oversized requests) are refused
clearly. Each test here failed before its fix."""

from __future__ import annotations

import asyncio
import logging
import math

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from sidecar.domain.errors import FieldViolation, InvalidRequest, NoCandidate, NotFound
from sidecar.domain.plan import Rejection
from sidecar.server import errors, servicer
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.convert_in import MAX_DURATION_S, to_chat_request
from sidecar.server.errors import (
    MAX_METADATA,
    MAX_STATUS_BYTES,
    MAX_VIOLATIONS,
    LogLimiter,
    shorten,
    to_status,
)
from tests.server.helpers import details, generate_request, user, violated_fields

SERVICE = "/turnout.v1.RouterService/"


def schema_request(schema: dict) -> pb.GenerateRequest:
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA)
    fmt.json_schema.name = "out"
    fmt.json_schema.schema.update(schema)
    return generate_request(response_format=fmt)


def refused(request: pb.GenerateRequest) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequest) as info:
        to_chat_request(request)  # conversion runs before any provider is called
    return [(v.field, v.description) for v in info.value.violations]


# --- finding 3: client input that ended as INTERNAL ------------------------------------------


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_or_infinity_in_a_schema_is_a_violation_at_its_path(number):
    [(field, description)] = refused(
        schema_request({"type": "object", "properties": {"x": {"type": "number", "maximum": number}}})
    )
    assert field == "response_format.json_schema.schema.properties.x.maximum"
    assert "NaN and Infinity are not JSON numbers" in description


def test_nan_in_a_tool_schema_is_a_violation_at_its_path():
    tool = pb.Tool(name="t")
    tool.parameters.update({"type": "object", "enum": [1, math.nan], "$defs": {"a b": {"minimum": math.inf}}})
    fields = sorted(f for f, _ in refused(generate_request(tools=[tool])))  # a Struct's map has no order
    assert fields == ['tools[0].parameters.$defs["a b"].minimum', "tools[0].parameters.enum[1]"]


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(2**62, 0), (-(2**62), 0), (MAX_DURATION_S + 1, 0), (1, -5), (1, 1_000_000_000), (-1, 0), (0, 0)],
)
def test_a_latency_budget_out_of_range_is_a_violation(seconds, nanos):
    hints = pb.RoutingHints()
    hints.latency_budget.seconds, hints.latency_budget.nanos = seconds, nanos
    [(field, _)] = refused(generate_request(hints=hints))
    assert field == "hints.latency_budget"


def test_the_largest_latency_budget_is_accepted():
    hints = pb.RoutingHints()
    hints.latency_budget.seconds, hints.latency_budget.nanos = MAX_DURATION_S, 999_999_999
    assert to_chat_request(generate_request(hints=hints)).hints.latency_budget_s == pytest.approx(
        MAX_DURATION_S
    )


async def test_nan_and_a_huge_budget_are_invalid_argument_over_grpc(stub):
    hints = pb.RoutingHints()
    hints.latency_budget.seconds = 2**62
    for request in (schema_request({"maximum": math.nan}), generate_request(hints=hints)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Generate(request)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert details(info.value)["ErrorInfo"].reason == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("method", "streaming"),
    [
        ("Route", False),
        ("Generate", False),
        ("GenerateStream", True),
        ("ListModels", False),
        ("GetBudgets", False),
    ],
)
async def test_undecodable_protobuf_is_invalid_argument_without_a_log_line(
    channel, caplog, method, streaming
):
    call = (channel.unary_stream if streaming else channel.unary_unary)(SERVICE + method)

    async def send() -> None:
        if streaming:
            async for _ in call(b"\x0a\xff\xff\xff\x0f"):
                pass
        else:
            await call(b"\x0a\xff\xff\xff\x0f")

    with caplog.at_level(logging.DEBUG), pytest.raises(grpc.aio.AioRpcError) as info:
        await send()
    error = info.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert details(error)["ErrorInfo"].reason == "UNDECODABLE_REQUEST"
    assert f"not a valid turnout.v1.{method}Request" in error.details()
    assert "class" not in error.details()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_burst_of_bad_requests_writes_no_log_line(channel, stub, caplog):
    raw = channel.unary_unary(SERVICE + "Generate")
    hints = pb.RoutingHints()
    hints.latency_budget.seconds = 2**62
    bad = [schema_request({"maximum": math.inf}), generate_request(hints=hints), generate_request("  ")]

    async def one(i: int) -> None:
        call = raw(b"\xff" * (i % 7 + 1)) if i % 4 == 3 else stub.Generate(bad[i % 3])
        with pytest.raises(grpc.aio.AioRpcError):
            await call

    with caplog.at_level(logging.DEBUG):
        await asyncio.gather(*(one(i) for i in range(400)))
    # Only the request log, when it is on (the example config has it): one line per request.
    access = [r for r in caplog.records if r.name == "turnout.access"]
    assert len(access) <= 400  # a line may still be on its way when the client has its answer
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and r not in access] == []


async def test_unexpected_errors_are_logged_rate_limited_with_a_count_of_the_rest(stub, caplog, monkeypatch):
    def broken(request):
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(servicer, "to_chat_request", broken)
    monkeypatch.setattr(servicer, "_log_limit", LogLimiter(per_second=0.001, burst=3))
    with caplog.at_level(logging.ERROR):
        for _ in range(50):
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Route(pb.RouteRequest(messages=[user("hi")]))
            assert info.value.code() is grpc.StatusCode.INTERNAL
            assert info.value.details() == "internal error"
    lines = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 3  # one each (with its traceback) until the bucket is empty
    assert all(r.exc_info for r in lines)


def test_the_log_limiter_lets_a_burst_through_then_counts_what_it_held_back():
    now = [0.0]
    limiter = LogLimiter(per_second=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take() for _ in range(5)] == [0, 0, 0, None, None]
    now[0] += 0.5  # one token back
    assert limiter.take() == 2  # "2 similar lines suppressed"
    assert limiter.take() is None


# --- finding 4: error details without a size bound -------------------------------------------


def status_of(exc: Exception) -> tuple[grpc.Status, status_pb2.Status, int]:
    """The status, its google.rpc.Status as a client decodes it, and the trailer's size."""
    result = to_status(exc)
    trailer = dict(result.trailing_metadata)["grpc-status-details-bin"]
    return result, status_pb2.Status.FromString(trailer), len(trailer)


def unpack(status, cls):
    for packed in status.details:
        if packed.Is(cls.DESCRIPTOR):
            value = cls()
            packed.Unpack(value)
            return value
    return None


def test_an_echoed_10_kb_value_is_shortened_with_a_count():
    message = f"pinned model {'m' * 10_000!r} unknown"
    result, status, size = status_of(NotFound("MODEL_NOT_FOUND", "hints.pinned_model", message))
    assert size < 1_500
    assert len(result.details.encode()) <= errors.MAX_MESSAGE_BYTES
    assert "more)" in result.details
    (violation,) = unpack(status, error_details_pb2.BadRequest).field_violations
    assert violation.description.endswith(f"…({len(message) - errors.MAX_DESCRIPTION:,} more)")


def test_field_violations_are_capped_with_a_count_of_the_rest():
    exc = InvalidRequest([FieldViolation(f"tools[{i}].name", "x" * 1_000) for i in range(500)])
    _, status, size = status_of(exc)
    assert size <= MAX_STATUS_BYTES
    listed = unpack(status, error_details_pb2.BadRequest).field_violations
    assert 0 < len(listed) <= MAX_VIOLATIONS
    info = unpack(status, error_details_pb2.ErrorInfo)
    assert int(info.metadata["omitted_violations"]) == 500 - len(listed)
    assert info.reason == "INVALID_REQUEST"


def test_metadata_is_capped_and_the_whole_status_bounded():
    rejections = tuple(Rejection(f"model-{i}-" + "x" * 300, "p", "why " * 100) for i in range(1_000))
    _, status, size = status_of(NoCandidate("default", rejections))
    assert size <= MAX_STATUS_BYTES
    info = unpack(status, error_details_pb2.ErrorInfo)
    assert len(info.metadata) <= MAX_METADATA + 1
    assert int(info.metadata["omitted_metadata"]) >= 1_000 + 1 - MAX_METADATA
    assert info.reason == "NO_CANDIDATE"


def test_a_non_ascii_message_is_bounded_in_bytes():
    result, _, size = status_of(NotFound("ROUTE_NOT_FOUND", "hints.route", "é" * 50_000))
    assert len(result.details.encode()) <= errors.MAX_MESSAGE_BYTES
    assert size <= MAX_STATUS_BYTES


def test_shorten():
    assert shorten("abc", 3) == "abc"
    assert shorten("abcdef", 3) == "abc…(3 more)"


async def test_hundreds_of_violations_reach_a_default_client_as_invalid_argument(stub):
    """Before: ~300 violations made a 17 KB trailer; a default client saw RESOURCE_EXHAUSTED."""
    long = "x" * 300
    request = generate_request(
        tools=[pb.Tool(name=f"bad name {i}") for i in range(128)],
        hints=pb.RoutingHints(allowed_models=[long] * 64, denied_models=[long] * 64, tags=[long] * 64),
    )
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Generate(request)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    found = details(info.value)
    assert len(found["BadRequest"].field_violations) <= MAX_VIOLATIONS
    assert int(found["ErrorInfo"].metadata["omitted_violations"]) >= 300


class _FakeError(grpc.RpcError):
    """A failed call as the sync client raises it, with details that disagree with its code."""

    def __init__(self, code: grpc.StatusCode, message: str, trailer: bytes | None) -> None:
        self._code, self._message, self._trailer = code, message, trailer

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self):
        return (("grpc-status-details-bin", self._trailer),) if self._trailer is not None else ()


@pytest.mark.parametrize(
    "error",
    [
        _FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "Stream removed", None),
        # the status in the trailer says INVALID_ARGUMENT: grpc_status raises ValueError on it
        _FakeError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "Stream removed",
            to_status(InvalidRequest([FieldViolation("messages", "bad")])).trailing_metadata[0][1],
        ),
        _FakeError(grpc.StatusCode.INVALID_ARGUMENT, "two\nlines", b"\xff\xfenot a status"),
    ],
)
def test_the_client_prints_one_line_and_exits_1_on_any_server_error(error, capsys):
    from sidecar.client import _print_error

    assert _print_error(error) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"error: {error.code().name}: ")
    assert "Traceback" not in "\n".join(err)


async def test_turnout_generate_reports_a_refused_request_in_one_line(sidecar, capsys):
    from sidecar.cli import main

    code = await asyncio.to_thread(main, ["generate", "--target", sidecar.address, "   "])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: INVALID_ARGUMENT: invalid request: messages[0].content[0].text: ")
    assert "Traceback" not in err


# --- finding 8: the smaller ones ------------------------------------------------------------


@pytest.mark.parametrize("text", ["", " ", "\n\t  \n"])
def test_blank_text_is_refused_naming_the_field(text):
    assert refused(generate_request(text)) == [
        ("messages[0].content[0].text", "the text is empty or only whitespace")
    ]
    two = pb.GenerateRequest(
        messages=[user("hi"), pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)] * 2)]
    )
    assert [f for f, _ in refused(two)] == ["messages[1].content[0].text", "messages[1].content[1].text"]


def test_blank_text_beside_real_content_is_accepted():
    image = pb.ContentPart(image=pb.Image(url="https://example.com/a.png"))
    with_image = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=" "), image])
    calls = pb.Message(
        role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(text="")], tool_calls=[pb.ToolCall(id="c1", name="f")]
    )
    empty_result = pb.Message(role=pb.ROLE_TOOL, content=[pb.ContentPart(text="")], tool_call_id="c1")
    mixed = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=" "), pb.ContentPart(text="hi")])
    request = pb.GenerateRequest(messages=[with_image, calls, empty_result, mixed])
    assert len(to_chat_request(request).messages) == 4


async def test_blank_text_is_invalid_argument_over_grpc(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Generate(generate_request(" \n "))
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(info.value) == ["messages[0].content[0].text"]


async def test_oversized_requests_up_to_the_transport_limit_get_request_too_large(simulator):
    """The documented boundary: over server.max_request_mb and up to 4 MiB past it (the
    transport's headroom) INVALID_ARGUMENT / REQUEST_TOO_LARGE, checked on the wire size before
    parsing; beyond it gRPC's own RESOURCE_EXHAUSTED, refused before the message is buffered."""
    from sidecar.app import ListenOverrides, Sidecar
    from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
    from sidecar.server.serve import TRANSPORT_HEADROOM_BYTES
    from tests.conftest import example_config

    sidecar = Sidecar(example_config(simulator.base_url, max_request_mb=1), ListenOverrides(port=0))
    await sidecar.start()
    limit = 1024 * 1024
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            raw = channel.unary_unary(SERVICE + "Generate")
            for size in (limit + 1, limit + TRANSPORT_HEADROOM_BYTES):
                payload = b"\xff" * size  # not even a valid message: the size is checked first
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await raw(payload)
                assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert details(info.value)["ErrorInfo"].reason == "REQUEST_TOO_LARGE"
                assert f"the request is {size:,} bytes, over the limit of {limit:,}" in info.value.details()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await raw(b"\xff" * (limit + TRANSPORT_HEADROOM_BYTES + 1))
            assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert (await stub.Route(pb.RouteRequest(messages=[user("hi")]))).decision.model
    finally:
        await sidecar.stop(grace_s=0)


def test_a_stream_failure_names_the_attempt_that_failed_not_a_cancelled_hedge():
    """The winner's answer was not valid JSON; the hedge that lost the race to the first token
    was started after it, so it came last and the message blamed it."""
    from sidecar.domain.errors import StreamInterrupted
    from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass

    winner = AttemptRecord(
        1,
        "gpt-4o-mini",
        "openai",
        AttemptOutcome.FAILURE,
        0.5,
        FailureClass.INVALID_OUTPUT,
        "output is not valid JSON: Expecting value at character 0",
    )
    hedge = AttemptRecord(2, "claude-haiku", "anthropic", AttemptOutcome.CANCELLED, 0.2, hedged=True)
    message = str(StreamInterrupted((winner, hedge), delivered_chars=12))
    assert message.startswith("the stream from gpt-4o-mini failed after 12 characters were sent")
    assert "invalid_output: output is not valid JSON" in message
    assert message.endswith("the answer is incomplete")


def test_a_stream_failure_names_the_stream_that_broke_not_a_continuation_that_never_started():
    """stream_failover: continue. The stream broke mid-way on malformed JSON; the model asked to
    continue it failed before its first token and came last, so the message blamed it."""
    from sidecar.domain.errors import StreamInterrupted
    from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass

    malformed = FailureClass.MALFORMED_RESPONSE
    broke = AttemptRecord(
        1,
        "gemini-2.5-flash",
        "google",
        AttemptOutcome.FAILURE,
        0.4,
        malformed,
        "the body is not valid JSON",
        time_to_first_token_s=0.1,
    )
    refused = AttemptRecord(2, "gpt-4o-mini", "openai", AttemptOutcome.FAILURE, 0.1, malformed, "bad")
    message = str(StreamInterrupted((broke, refused), delivered_chars=19))
    assert message == (
        "the stream from gemini-2.5-flash failed after 19 characters were sent (malformed_response: "
        "the body is not valid JSON); the answer is incomplete (no other model could continue it: "
        "gpt-4o-mini: malformed_response)"
    )


async def test_requests_arriving_during_shutdown_get_unavailable_never_cancelled(simulator):
    """gRPC's core answers CANCELLED (which clients do not retry) to calls that reached it but no
    handler yet when the server stops; the servicer's drain answers them UNAVAILABLE first."""
    from sidecar.app import ListenOverrides, Sidecar
    from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
    from tests.conftest import example_config

    codes: dict[str, int] = {}
    for _ in range(3):
        sidecar = Sidecar(example_config(simulator.base_url), ListenOverrides(host="127.0.0.1", port=0))
        await sidecar.start()
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            await stub.Route(pb.RouteRequest(messages=[user("warm up")]))

            async def one(stub=stub) -> None:
                try:
                    await stub.Route(pb.RouteRequest(messages=[user("hi")]), timeout=10)
                    name = "OK"
                except grpc.aio.AioRpcError as error:
                    name = error.code().name
                    if "shutting down" in (error.details() or ""):
                        name += " (shutting down)"
                codes[name] = codes.get(name, 0) + 1

            calls = [asyncio.create_task(one()) for _ in range(30)]
            await asyncio.sleep(0)  # sent, not yet handled
            await sidecar.stop(grace_s=2)
            await asyncio.gather(*calls)
    assert "CANCELLED" not in codes, codes
    assert codes.get("UNAVAILABLE (shutting down)", 0) > 0, codes
