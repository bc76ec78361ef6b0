"""The Anthropic codec against golden request, response and stream fixtures.

The fixtures follow the shapes in Anthropic's public Messages API reference (docs.anthropic.com:
"Messages", "Streaming Messages", "Tool use", "Errors").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sidecar.domain.model import ModelSpec, Price
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
from sidecar.providers.anthropic.codec import (
    REFUSAL_NOTE,
    StreamDecoder,
    decode_completion,
    encode_request,
    output_tool_name,
)
from sidecar.providers.anthropic.errors import classify_error
from sidecar.providers.shape import parse_json

MODEL = ModelSpec(
    name="sonnet",
    provider="anthropic",
    upstream_model="claude-sonnet-4-5",
    price=Price(),
    context_window=200_000,
    max_output_tokens=64_000,
    capabilities=frozenset(),
)
WEATHER = Tool(
    name="get_weather",
    description="Get the current weather in a given location",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
)


def _user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


# ---------------------------------------------------------------------------------------- encoding


def test_encode_golden_request_with_tools_and_tool_results() -> None:
    request = ChatRequest(
        messages=(
            Message(Role.SYSTEM, (TextPart("You are terse."),)),
            _user("What's the weather in Paris?"),
            Message(
                Role.ASSISTANT,
                (TextPart("Let me check."),),
                tool_calls=(ToolCall("toolu_01A", "get_weather", '{"location": "Paris"}'),),
            ),
            Message(Role.TOOL, (TextPart("15 degrees"),), tool_call_id="toolu_01A"),
            _user("Thanks. And tomorrow?"),
        ),
        tools=(WEATHER,),
        tool_choice=ToolChoice(ToolChoiceMode.AUTO),
        params=GenerationParams(max_output_tokens=1024, temperature=0.5, top_p=0.9, stop=("END",), seed=3),
    )
    assert encode_request(request, MODEL, stream=False) == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check."},
                    {
                        "type": "tool_use",
                        "id": "toolu_01A",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15 degrees"},
                    {"type": "text", "text": "Thanks. And tomorrow?"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "input_schema": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                },
            }
        ],
        "tool_choice": {"type": "auto"},
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
    }


def test_encode_defaults_max_tokens_capped_and_stream_flag() -> None:
    body = encode_request(ChatRequest(messages=(_user("hi"),)), MODEL, stream=True)
    assert body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "stream": True,
    }


@pytest.mark.parametrize(
    ("mode", "name", "wire"),
    [
        (ToolChoiceMode.AUTO, "", {"type": "auto"}),
        (ToolChoiceMode.REQUIRED, "", {"type": "any"}),
        (ToolChoiceMode.NONE, "", {"type": "none"}),
        (ToolChoiceMode.FUNCTION, "get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_encode_tool_choice(mode: ToolChoiceMode, name: str, wire: dict[str, Any]) -> None:
    request = ChatRequest(messages=(_user("hi"),), tools=(WEATHER,), tool_choice=ToolChoice(mode, name))
    assert encode_request(request, MODEL, stream=False)["tool_choice"] == wire


def test_encode_images() -> None:
    message = Message(
        Role.USER,
        (
            ImagePart(data=b"\x89PNG", media_type="image/png"),
            ImagePart(url="https://example.com/cat.jpg"),
            ImagePart(url="data:image/jpeg;base64,/9j/4AAQ"),
            TextPart("What is in these images?"),
        ),
    )
    content = encode_request(ChatRequest(messages=(message,)), MODEL, stream=False)["messages"][0]["content"]
    assert content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw=="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "text", "text": "What is in these images?"},
    ]


def test_encode_image_without_media_type_is_a_bad_request() -> None:
    request = ChatRequest(messages=(Message(Role.USER, (ImagePart(data=b"x"),)),))
    with pytest.raises(ProviderError) as info:
        encode_request(request, MODEL, stream=False)
    assert info.value.failure_class is FailureClass.BAD_REQUEST


def test_encode_json_schema_as_a_forced_tool() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, schema_name="verdict", schema=schema)
    request = ChatRequest(messages=(_user("judge"),), response_format=fmt)
    body = encode_request(request, MODEL, stream=False)
    assert output_tool_name(request) == "verdict"
    assert body["tools"][0]["name"] == "verdict"
    assert body["tools"][0]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": "verdict"}


def test_encode_json_object_as_a_forced_tool_named_json_output() -> None:
    request = ChatRequest(
        messages=(_user("hi"),), response_format=ResponseFormat(ResponseFormatKind.JSON_OBJECT)
    )
    body = encode_request(request, MODEL, stream=False)
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"] == {"type": "tool", "name": "json_output"}


# ---------------------------------------------------------------------------------------- decoding

GOLDEN_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "I'll check "},
        {"type": "text", "text": "the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "SF"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "output_tokens": 503,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
    },
}


def test_decode_golden_message() -> None:
    completion = decode_completion(parse_json(json.dumps(GOLDEN_MESSAGE)))
    assert completion.text == "I'll check the weather."
    assert completion.tool_calls == (
        ToolCall("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"location": "SF"}'),
    )
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.usage == Usage(input_tokens=3195, output_tokens=503, cached_input_tokens=1000)
    assert completion.response_model == "claude-sonnet-4-5-20250929"
    assert completion.refusal == ""


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("max_tokens", FinishReason.LENGTH),
        ("tool_use", FinishReason.TOOL_CALLS),
        ("refusal", FinishReason.CONTENT_FILTER),
        ("pause_turn", FinishReason.UNKNOWN),
    ],
)
def test_decode_stop_reasons(stop: str, finish: FinishReason) -> None:
    body = {**GOLDEN_MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop}
    completion = decode_completion(body)
    assert completion.finish_reason is finish
    assert completion.refusal == (REFUSAL_NOTE if stop == "refusal" else "")


def test_decode_forced_output_tool_as_text() -> None:
    body = {
        **GOLDEN_MESSAGE,
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "verdict", "input": {"answer": "yes"}}],
    }
    completion = decode_completion(body, output_tool="verdict")
    assert completion.text == '{"answer": "yes"}'
    assert completion.tool_calls == ()
    assert completion.finish_reason is FinishReason.STOP


@pytest.mark.parametrize(
    "body",
    [
        {"content": "not a list"},
        {"content": [{"type": "text"}]},
        {"content": [{"type": "tool_use", "name": "f", "input": {}}]},
        {"content": [], "usage": {"input_tokens": "many"}},
    ],
)
def test_decode_malformed(body: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        decode_completion(body)
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE


# ------------------------------------------------------------------------------------------ stream

GOLDEN_STREAM: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "stop_sequence": None,
            "usage": {"input_tokens": 472, "output_tokens": 2, "cache_read_input_tokens": 28},
            "content": [],
            "stop_reason": None,
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay, let's check"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " the weather."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"location":'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ' "SF"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89},
    },
    {"type": "message_stop"},
]


def _run(events: list[dict[str, Any]], output_tool: str = "") -> tuple[list[StreamChunk], StreamChunk]:
    decoder = StreamDecoder(output_tool=output_tool)
    chunks = [c for c in (decoder.feed(e) for e in events) if c is not None]
    return chunks, decoder.final()


def test_decode_golden_stream() -> None:
    chunks, final = _run(GOLDEN_STREAM)
    assert chunks == [
        StreamChunk(text="Okay, let's check"),
        StreamChunk(text=" the weather."),
        StreamChunk(tool_calls=(ToolCallDelta(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", ""),)),
        StreamChunk(tool_calls=(ToolCallDelta(0, arguments_json='{"location":'),)),
        StreamChunk(tool_calls=(ToolCallDelta(0, arguments_json=' "SF"}'),)),
    ]
    assert final == StreamChunk(
        finish_reason=FinishReason.TOOL_CALLS,
        usage=Usage(input_tokens=500, output_tokens=89, cached_input_tokens=28),
        response_model="claude-sonnet-4-5-20250929",
    )


def test_stream_tool_without_arguments_gets_an_empty_object() -> None:
    events = [
        GOLDEN_STREAM[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "f"},
        },
        {"type": "content_block_stop", "index": 0},
        GOLDEN_STREAM[-2],
        GOLDEN_STREAM[-1],
    ]
    chunks, _ = _run(events)
    assert chunks[-1] == StreamChunk(tool_calls=(ToolCallDelta(0, arguments_json="{}"),))


def test_stream_forced_output_tool_becomes_text() -> None:
    events = [
        GOLDEN_STREAM[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "out"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 0},
        GOLDEN_STREAM[-2],
        GOLDEN_STREAM[-1],
    ]
    chunks, final = _run(events, output_tool="out")
    assert "".join(c.text for c in chunks) == '{"a":1}'
    assert final.finish_reason is FinishReason.STOP


def test_stream_refusal() -> None:
    events = [*GOLDEN_STREAM[:5], {"type": "message_delta", "delta": {"stop_reason": "refusal"}, "usage": {}}]
    _, final = _run(events)
    assert final.finish_reason is FinishReason.CONTENT_FILTER
    assert final.refusal == REFUSAL_NOTE


def test_stream_error_event() -> None:
    decoder = StreamDecoder()
    decoder.feed(GOLDEN_STREAM[0])
    with pytest.raises(ProviderError) as info:
        decoder.feed({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert info.value.failure_class is FailureClass.OVERLOADED
    assert info.value.message == "Overloaded [overloaded_error]"


def test_stream_without_stop_is_interrupted() -> None:
    decoder = StreamDecoder()
    for event in GOLDEN_STREAM[:5]:
        decoder.feed(event)
    with pytest.raises(ProviderError) as info:
        decoder.final()
    assert info.value.failure_class is FailureClass.STREAM_INTERRUPTED


def test_stream_ignores_unknown_events() -> None:
    assert StreamDecoder().feed({"type": "some_future_event", "x": 1}) is None


# ------------------------------------------------------------------------------------------ errors


def _error(kind: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls"),
    [
        (400, "invalid_request_error", "messages: field required", FailureClass.BAD_REQUEST),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            FailureClass.CONTEXT_TOO_LONG,
        ),
        (401, "authentication_error", "invalid x-api-key", FailureClass.AUTH),
        (403, "permission_error", "no access", FailureClass.AUTH),
        (404, "not_found_error", "model: claude-x", FailureClass.SERVER_ERROR),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
            FailureClass.CONTEXT_TOO_LONG,
        ),
        (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your rate limit",
            FailureClass.RATE_LIMITED,
        ),
        (500, "api_error", "Internal server error", FailureClass.SERVER_ERROR),
        (529, "overloaded_error", "Overloaded", FailureClass.OVERLOADED),
    ],
)
def test_error_table(status: int, kind: str, message: str, cls: FailureClass) -> None:
    err = classify_error(status, _error(kind, message), {"retry-after": "7"})
    assert err.failure_class is cls
    assert err.status == status
    assert err.message == f"{message} [{kind}]"
    assert err.retry_after_s == 7.0


def test_error_with_an_html_body_is_described() -> None:
    err = classify_error(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
    assert err.failure_class is FailureClass.SERVER_ERROR
    assert err.message == "HTTP 502 with a 24-byte body (text/html)"
