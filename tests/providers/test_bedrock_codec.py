"""The Bedrock Converse codec against golden bodies shaped after AWS's Converse / ConverseStream API
reference (request syntax, response syntax, the tool-use walkthrough and the stream event list)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import (
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
)
from sidecar.domain.response import FinishReason, StreamChunk, ToolCallDelta, Usage
from sidecar.providers.bedrock.codec import StreamDecoder, decode_completion, encode_request
from sidecar.providers.bedrock.errors import classify_error, stream_exception

SONG = Tool(
    "top_song",
    "Get the most popular song played on a radio station.",
    {
        "type": "object",
        "properties": {"sign": {"type": "string", "description": "The call sign for the radio station"}},
        "required": ["sign"],
    },
)


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


# ---------------------------------------------------------------------------------------- encoding


def test_a_conversation_with_a_tool_round_trip() -> None:
    call = ToolCall("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song", '{"sign": "WZPZ"}')
    request = ChatRequest(
        messages=(
            Message(Role.SYSTEM, (TextPart("You are an app that creates playlists for a radio station."),)),
            user("What is the most popular song on WZPZ?"),
            Message(Role.ASSISTANT, tool_calls=(call,)),
            Message(
                Role.TOOL,
                (TextPart('{"song": "Elemental Hotel", "artist": "8 Storey Hike"}'),),
                tool_call_id=call.id,
            ),
            user("And who sings it?"),
        ),
        tools=(SONG,),
        params=GenerationParams(max_output_tokens=512, temperature=0.5, top_p=0.9, stop=("END",), seed=7),
    )
    assert encode_request(request) == {
        "system": [{"text": "You are an app that creates playlists for a radio station."}],
        "messages": [
            {"role": "user", "content": [{"text": "What is the most popular song on WZPZ?"}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "toolUse": {
                            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                            "name": "top_song",
                            "input": {"sign": "WZPZ"},
                        }
                    }
                ],
            },
            {
                "role": "user",  # the tool result and the next user turn, merged: turns alternate
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                            "content": [{"text": '{"song": "Elemental Hotel", "artist": "8 Storey Hike"}'}],
                        }
                    },
                    {"text": "And who sings it?"},
                ],
            },
        ],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {
            "tools": [
                {
                    "toolSpec": {
                        "name": "top_song",
                        "description": "Get the most popular song played on a radio station.",
                        "inputSchema": {"json": dict(SONG.parameters)},
                    }
                }
            ]
        },
    }


def test_a_bare_request_has_no_optional_fields() -> None:
    assert encode_request(ChatRequest(messages=(user("Hi"),))) == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}]
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(ToolChoiceMode.AUTO), {"auto": {}}),
        (ToolChoice(ToolChoiceMode.REQUIRED), {"any": {}}),
        (ToolChoice(ToolChoiceMode.FUNCTION, "top_song"), {"tool": {"name": "top_song"}}),
        (ToolChoice(ToolChoiceMode.NONE), None),
    ],
)
def test_tool_choice(choice: ToolChoice, expected: dict[str, Any] | None) -> None:
    body = encode_request(ChatRequest(messages=(user("Hi"),), tools=(SONG,), tool_choice=choice))
    assert body["toolConfig"].get("toolChoice") == expected


def test_images() -> None:
    png = b"\x89PNG\r\n"
    encoded = base64.b64encode(png).decode()
    message = Message(
        Role.USER,
        (
            ImagePart(data=png, media_type="image/png"),
            ImagePart(url=f"data:image/jpeg;base64,{encoded}"),
            ImagePart(url="s3://bucket/cat.webp", media_type="image/webp"),
        ),
    )
    (converse_message,) = encode_request(ChatRequest(messages=(message,)))["messages"]
    assert converse_message["content"] == [
        {"image": {"format": "png", "source": {"bytes": encoded}}},
        {"image": {"format": "jpeg", "source": {"bytes": encoded}}},
        {"image": {"format": "webp", "source": {"s3Location": {"uri": "s3://bucket/cat.webp"}}}},
    ]


@pytest.mark.parametrize(
    "part",
    [
        ImagePart(url="https://example.com/cat.png"),
        ImagePart(data=b"x", media_type="image/tiff"),
        ImagePart(data=b"x"),
        ImagePart(),
    ],
)
def test_images_bedrock_cannot_take(part: ImagePart) -> None:
    with pytest.raises(ProviderError) as info:
        encode_request(ChatRequest(messages=(Message(Role.USER, (part,)),)))
    assert info.value.failure_class is FailureClass.BAD_REQUEST


def test_json_schema_output_is_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "verdict", schema)
    body = encode_request(ChatRequest(messages=(user("Classify"),), response_format=fmt))
    (tool,) = body["toolConfig"]["tools"]
    assert tool["toolSpec"]["name"] == "verdict"
    assert tool["toolSpec"]["inputSchema"] == {"json": schema}
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "verdict"}}
    clash = ChatRequest(messages=(user("x"),), tools=(Tool("verdict"),), response_format=fmt)
    with pytest.raises(ProviderError):
        encode_request(clash)


def test_bad_tool_arguments_are_bad_requests() -> None:
    call = ToolCall("t1", "top_song", "[1, 2]")
    with pytest.raises(ProviderError) as info:
        encode_request(ChatRequest(messages=(user("x"), Message(Role.ASSISTANT, tool_calls=(call,)))))
    assert info.value.failure_class is FailureClass.BAD_REQUEST


# ---------------------------------------------------------------------------------------- decoding

TEXT_RESPONSE = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [{"text": "Here is a list of songs by The Beatles."}],
        }
    },
    "stopReason": "end_turn",
    "usage": {"inputTokens": 30, "outputTokens": 628, "totalTokens": 658},
    "metrics": {"latencyMs": 1275},
}
TOOL_RESPONSE = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"text": "I'll look that up."},
                {
                    "toolUse": {
                        "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "name": "top_song",
                        "input": {"sign": "WZPZ"},
                    }
                },
            ],
        }
    },
    "stopReason": "tool_use",
    "usage": {"inputTokens": 375, "outputTokens": 36, "totalTokens": 411, "cacheReadInputTokens": 100},
    "metrics": {"latencyMs": 2185},
}


def test_a_text_answer() -> None:
    completion = decode_completion(TEXT_RESPONSE)
    assert completion.text == "Here is a list of songs by The Beatles."
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(input_tokens=30, output_tokens=628)


def test_a_tool_call_answer() -> None:
    completion = decode_completion(TOOL_RESPONSE)
    assert completion.text == "I'll look that up."
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    (call,) = completion.tool_calls
    assert call == ToolCall("tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song", '{"sign": "WZPZ"}')
    assert completion.usage == Usage(input_tokens=475, output_tokens=36, cached_input_tokens=100)


def test_the_forced_output_tool_is_the_answer() -> None:
    completion = decode_completion(TOOL_RESPONSE, output_tool="top_song")
    assert completion.tool_calls == ()
    assert completion.finish_reason is FinishReason.STOP
    assert completion.text.endswith('{"sign": "WZPZ"}')


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("guardrail_intervened", FinishReason.CONTENT_FILTER),
        ("content_filtered", FinishReason.CONTENT_FILTER),
        ("something_new", FinishReason.UNKNOWN),
    ],
)
def test_stop_reasons(reason: str, finish: FinishReason) -> None:
    completion = decode_completion({**TEXT_RESPONSE, "stopReason": reason})
    assert completion.finish_reason is finish
    assert bool(completion.refusal) is (finish is FinishReason.CONTENT_FILTER)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"output": {}},
        {"output": {"message": {"content": "text"}}},
        {"output": {"message": {"content": [{"text": 5}]}}},
        {"output": {"message": {"content": [{"toolUse": {"name": "x"}}]}}},
        {**TEXT_RESPONSE, "usage": {"inputTokens": "many"}},
    ],
)
def test_wrong_shapes_are_malformed(body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        decode_completion(body)
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE


# ---------------------------------------------------------------------------------------- streams

TOOL_STREAM: list[tuple[str, dict[str, Any]]] = [
    ("messageStart", {"role": "assistant"}),
    ("contentBlockDelta", {"delta": {"text": "I'll look"}, "contentBlockIndex": 0}),
    ("contentBlockDelta", {"delta": {"text": " that up."}, "contentBlockIndex": 0}),
    ("contentBlockStop", {"contentBlockIndex": 0}),
    (
        "contentBlockStart",
        {
            "start": {"toolUse": {"toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "name": "top_song"}},
            "contentBlockIndex": 1,
        },
    ),
    ("contentBlockDelta", {"delta": {"toolUse": {"input": '{"sign": '}}, "contentBlockIndex": 1}),
    ("contentBlockDelta", {"delta": {"toolUse": {"input": '"WZPZ"}'}}, "contentBlockIndex": 1}),
    ("contentBlockStop", {"contentBlockIndex": 1}),
    ("messageStop", {"stopReason": "tool_use"}),
    (
        "metadata",
        {
            "usage": {"inputTokens": 375, "outputTokens": 36, "totalTokens": 411},
            "metrics": {"latencyMs": 2185},
        },
    ),
]


def run(events: list[tuple[str, dict[str, Any]]], output_tool: str = "") -> list[StreamChunk]:
    decoder = StreamDecoder(output_tool=output_tool)
    chunks = [c for kind, body in events if (c := decoder.feed(kind, body)) is not None]
    assert decoder.done
    return [*chunks, decoder.final()]


def test_a_tool_call_stream() -> None:
    chunks = run(TOOL_STREAM)
    assert chunks == [
        StreamChunk(text="I'll look"),
        StreamChunk(text=" that up."),
        StreamChunk(tool_calls=(ToolCallDelta(0, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "top_song", ""),)),
        StreamChunk(tool_calls=(ToolCallDelta(0, arguments_json='{"sign": '),)),
        StreamChunk(tool_calls=(ToolCallDelta(0, arguments_json='"WZPZ"}'),)),
        StreamChunk(finish_reason=FinishReason.TOOL_CALLS, usage=Usage(input_tokens=375, output_tokens=36)),
    ]
    assert [c for c in chunks if c.finish_reason is not None] == chunks[-1:]


def test_the_forced_output_tool_streams_as_text() -> None:
    chunks = run(TOOL_STREAM, output_tool="top_song")
    assert "".join(c.text for c in chunks) == 'I\'ll look that up.{"sign": "WZPZ"}'
    assert chunks[-1].finish_reason is FinishReason.STOP


def test_a_tool_call_without_arguments_gets_an_empty_object() -> None:
    events = [e for e in TOOL_STREAM if not (e[0] == "contentBlockDelta" and "toolUse" in e[1]["delta"])]
    args = "".join(d.arguments_json for c in run(events) for d in c.tool_calls)
    assert args == "{}"


def test_a_stream_without_message_stop_was_interrupted() -> None:
    decoder = StreamDecoder()
    for kind, body in TOOL_STREAM[:4]:
        decoder.feed(kind, body)
    with pytest.raises(ProviderError) as info:
        decoder.final()
    assert info.value.failure_class is FailureClass.STREAM_INTERRUPTED


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "name", "message", "failure"),
    [
        (429, "ThrottlingException", "Too many requests, please wait.", FailureClass.RATE_LIMITED),
        (503, "ServiceUnavailableException", "Bedrock is unable to process", FailureClass.OVERLOADED),
        (500, "InternalServerException", "Unexpected error", FailureClass.SERVER_ERROR),
        (408, "ModelTimeoutException", "Model timed out", FailureClass.TIMEOUT),
        (400, "ValidationException", "Malformed input request", FailureClass.BAD_REQUEST),
        (400, "ValidationException", "Input is too long for requested model.", FailureClass.CONTEXT_TOO_LONG),
        (403, "AccessDeniedException", "You don't have access to the model", FailureClass.AUTH),
        (403, "UnrecognizedClientException", "The security token included is invalid.", FailureClass.AUTH),
        (
            404,
            "ResourceNotFoundException",
            "Could not resolve the foundation model",
            FailureClass.SERVER_ERROR,
        ),
        (424, "ModelErrorException", "The model failed", FailureClass.SERVER_ERROR),
        (429, "", "no name", FailureClass.RATE_LIMITED),
        (401, "", "no name", FailureClass.AUTH),
        (400, "", "Input is too long", FailureClass.CONTEXT_TOO_LONG),
    ],
)
def test_the_failure_table(status: int, name: str, message: str, failure: FailureClass) -> None:
    headers = (
        {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"} if name else {}
    )
    err = classify_error(status, json.dumps({"message": message}).encode(), headers)
    assert err.failure_class is failure
    assert err.status == status
    assert message in err.message


def test_the_name_may_come_from_the_body_and_retry_after_is_read() -> None:
    body = json.dumps({"__type": "com.amazon.bedrock#ThrottlingException", "Message": "slow down"}).encode()
    err = classify_error(400, body, {"Retry-After": "3"})
    assert err.failure_class is FailureClass.RATE_LIMITED
    assert err.retry_after_s == 3
    assert "slow down" in err.message


def test_a_body_that_is_not_json_is_described() -> None:
    err = classify_error(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
    assert err.failure_class is FailureClass.SERVER_ERROR
    assert "<html>" not in err.message
    assert "text/html" in err.message


@pytest.mark.parametrize(
    ("name", "failure"),
    [
        ("modelStreamErrorException", FailureClass.STREAM_INTERRUPTED),
        ("throttlingException", FailureClass.RATE_LIMITED),
        ("validationException", FailureClass.BAD_REQUEST),
        ("internalServerException", FailureClass.SERVER_ERROR),
        ("serviceUnavailableException", FailureClass.OVERLOADED),
        ("modelTimeoutException", FailureClass.TIMEOUT),
    ],
)
def test_stream_exceptions(name: str, failure: FailureClass) -> None:
    err = stream_exception(name, b'{"message":"it broke"}')
    assert err.failure_class is failure
    assert "it broke" in err.message
