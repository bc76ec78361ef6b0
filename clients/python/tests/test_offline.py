"""What needs no sidecar: error decoding, money formatting, the request helpers."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from turnout_client import Client, FieldViolation, TurnoutError, as_request, chat, format_usd, pb


def packed(*details: object) -> bytes:
    status = status_pb2.Status(code=14, message="every candidate failed")
    for detail in details:
        wrapper = any_pb2.Any()
        wrapper.Pack(detail)
        status.details.append(wrapper)
    return status.SerializeToString()


def test_every_detail_is_decoded():
    details = packed(
        error_details_pb2.ErrorInfo(
            reason="ALL_CANDIDATES_FAILED",
            domain="turnout.dev",
            metadata={"attempt.1.gpt-4o": "rate_limited"},
        ),
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field="hints.route", description="unknown")
            ]
        ),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)),
    )
    error = TurnoutError.from_status(grpc.StatusCode.UNAVAILABLE, "every candidate failed", details)
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert (error.reason, error.domain) == ("ALL_CANDIDATES_FAILED", "turnout.dev")
    assert error.metadata == {"attempt.1.gpt-4o": "rate_limited"}
    assert error.field_violations == (FieldViolation("hints.route", "unknown"),)
    assert error.retry_delay == 2.5
    assert str(error) == "UNAVAILABLE ALL_CANDIDATES_FAILED: every candidate failed"


def test_no_details_and_unknown_details_leave_the_fields_empty():
    for details in (None, b"", packed(duration_pb2.Duration(seconds=1))):
        error = TurnoutError.from_status(grpc.StatusCode.INTERNAL, "boom", details)
        assert (error.reason, error.domain, dict(error.metadata)) == ("", "", {})
        assert (error.field_violations, error.retry_delay) == ((), None)


def chained() -> None:
    try:
        raise ValueError("inner")
    except ValueError as inner:
        raise TurnoutError(grpc.StatusCode.NOT_FOUND, "gone") from inner


def test_the_error_can_be_raised_and_chained():
    with pytest.raises(TurnoutError) as caught:
        chained()
    assert isinstance(caught.value.__cause__, ValueError)
    assert caught.value.code is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "$0.00"),
        (1, "$0.000000001"),
        (12345, "$0.000012345"),
        (309300, "$0.0003093"),
        (1_500_000_000, "$1.50"),
        (1_000_000_000, "$1.00"),
        (123_456_789_012, "$123.456789012"),
        (-10_000_000, "-$0.01"),
    ],
)
def test_money_is_formatted_exactly(nanos: int, text: str):
    assert format_usd(nanos) == text


def test_chat_builds_a_plain_request():
    request = chat(
        "Is this spam?",
        system="Answer yes or no.",
        route="smart",
        task_type="classify",
        pinned_model="gpt-4o",
        max_output_tokens=5,
        labels={"team": "mail"},
    )
    assert [(m.role, m.content[0].text) for m in request.messages] == [
        (pb.ROLE_SYSTEM, "Answer yes or no."),
        (pb.ROLE_USER, "Is this spam?"),
    ]
    assert (request.hints.route, request.hints.task_type, request.hints.pinned_model) == (
        "smart",
        "classify",
        "gpt-4o",
    )
    assert request.params.max_output_tokens == 5
    assert dict(request.labels) == {"team": "mail"}
    bare = chat("hi")
    assert not bare.HasField("hints")
    assert not bare.HasField("params")


def test_one_request_serves_all_three_calls():
    request = chat("hi", route="smart", request_id="r-1")
    for kind in (pb.RouteRequest, pb.GenerateStreamRequest):
        converted = as_request(request, kind)
        assert isinstance(converted, kind)
        assert (converted.hints.route, converted.request_id, converted.messages[0].content[0].text) == (
            "smart",
            "r-1",
            "hi",
        )
    assert as_request(request, pb.GenerateRequest) is request


def test_a_bad_timeout_is_refused_and_the_token_never_printed():
    with pytest.raises(ValueError, match="positive"):
        Client(timeout=0)
    client = Client(token="tok-secret-123")
    assert "tok-secret" not in repr(client)
    assert "token=set" in repr(client)
    client.close()
