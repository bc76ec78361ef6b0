"""The Gemini codec: golden request bodies, response and stream-event decoding, and the error table.

The golden bodies follow Google's public API reference for `models.generateContent`
(GenerateContentRequest / GenerateContentResponse, ai.google.dev/api/generate-content) and its
error model (ai.google.dev/gemini-api/docs/troubleshooting).
"""

from __future__ import annotations

import json
from types import MappingProxyType
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
from sidecar.domain.response import FinishReason, ToolCallDelta, Usage
from sidecar.providers.gemini.codec import (
    decode_chunk,
    decode_completion,
    encode_request,
    gemini_schema,
)
from sidecar.providers.gemini.errors import classify_error
from sidecar.providers.shape import parse_json

MODEL = ModelSpec(
    name="flash",
    provider="google",
    upstream_model="gemini-2.0-flash",
    price=Price(),
    context_window=1_048_576,
    max_output_tokens=8192,
    capabilities=frozenset(),
)
WEATHER = Tool(
    name="get_weather",
    description="Current weather for a city",
    parameters=MappingProxyType(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "exclusiveMaximum": 8}},
            },
            "required": ("city",),
            "additionalProperties": False,
        }
    ),
)


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


# ---------------------------------------------------------------------------------------- encoding


def test_plain_request_is_minimal() -> None:
    body = encode_request(ChatRequest(messages=(user("Hello"),)), MODEL)
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


def test_golden_request_with_everything() -> None:
    request = ChatRequest(
        messages=(
            Message(Role.SYSTEM, (TextPart("You are terse."),)),
            Message(
                Role.USER,
                (
                    TextPart("What is in these?"),
                    ImagePart(data=b"\x89PNG", media_type="image/png"),
                    ImagePart(url="data:image/jpeg;base64,/9j/AA=="),
                    ImagePart(url="https://example.com/cat.webp", media_type="image/webp", detail="low"),
                ),
            ),
            Message(
                Role.ASSISTANT,
                (TextPart("Checking."),),
                tool_calls=(
                    ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
                    ToolCall("toolu_2", "get_weather", '{"city": "Oslo"}'),
                ),
            ),
            Message(Role.TOOL, (TextPart('{"temp": 21}'),), tool_call_id="toolu_1"),
            Message(Role.TOOL, (TextPart("rainy"),), tool_call_id="toolu_2"),
            user("Thanks"),
        ),
        tools=(WEATHER, Tool(name="now")),
        tool_choice=ToolChoice(ToolChoiceMode.FUNCTION, "get_weather"),
        params=GenerationParams(max_output_tokens=200, temperature=0.2, top_p=0.9, stop=("END",), seed=7),
    )
    assert encode_request(request, MODEL) == {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in these?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/AA=="}},
                    {"fileData": {"fileUri": "https://example.com/cat.webp", "mimeType": "image/webp"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_weather", "response": {"output": "rainy"}}},
                ],
            },
            {"role": "user", "parts": [{"text": "Thanks"}]},
        ],
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Current weather for a city",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "city": {"type": "string", "description": "City name"},
                                "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
                                "days": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                            },
                            "required": ["city"],
                        },
                    },
                    {"name": "now"},  # no parameters: Gemini rejects an OBJECT with no properties
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {
            "maxOutputTokens": 200,
            "temperature": 0.2,
            "topP": 0.9,
            "stopSequences": ["END"],
            "seed": 7,
        },
    }
    json.dumps(encode_request(request, MODEL))  # plain JSON throughout


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ToolChoiceMode.AUTO, {"mode": "AUTO"}),
        (ToolChoiceMode.NONE, {"mode": "NONE"}),
        (ToolChoiceMode.REQUIRED, {"mode": "ANY"}),
    ],
)
def test_tool_choice_modes(mode: ToolChoiceMode, expected: dict[str, Any]) -> None:
    request = ChatRequest(messages=(user("hi"),), tools=(WEATHER,), tool_choice=ToolChoice(mode))
    assert encode_request(request, MODEL)["toolConfig"] == {"functionCallingConfig": expected}


def test_json_output_and_logprobs() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "additionalProperties": False}
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "out", MappingProxyType(schema), strict=True)
    body = encode_request(ChatRequest(messages=(user("hi"),), response_format=fmt), MODEL, logprobs=True)
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "responseLogprobs": True,
    }
    plain = ChatRequest(
        messages=(user("hi"),), response_format=ResponseFormat(ResponseFormatKind.JSON_OBJECT)
    )
    assert encode_request(plain, MODEL)["generationConfig"] == {"responseMimeType": "application/json"}


def test_schema_keeps_property_names_that_look_like_keywords() -> None:
    schema = {"type": "object", "properties": {"additionalProperties": {"const": "x"}}, "oneOf": []}
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {"additionalProperties": {"enum": ["x"]}},
    }


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ((Message(Role.TOOL, (TextPart("1"),), tool_call_id="nope"),), "answers no earlier tool call"),
        ((Message(Role.ASSISTANT, tool_calls=(ToolCall("c", "f", "[1]"),)),), "not a JSON object"),
        ((Message(Role.USER, (ImagePart(data=b"x"),)),), "need a media type"),
        ((Message(Role.USER, (ImagePart(url="data:image/png,raw"),)),), "base64 data: URLs"),
    ],
)
def test_requests_gemini_cannot_take_are_bad_requests(messages: tuple[Message, ...], match: str) -> None:
    with pytest.raises(ProviderError, match=match) as info:
        encode_request(ChatRequest(messages=messages), MODEL)
    assert info.value.failure_class is FailureClass.BAD_REQUEST


# ---------------------------------------------------------------------------------------- decoding

GOLDEN_RESPONSE = {
    "candidates": [
        {
            "content": {"parts": [{"text": "Hello"}, {"text": " there."}], "role": "model"},
            "finishReason": "STOP",
            "avgLogprobs": -0.25,
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 3,
        "cachedContentTokenCount": 8,
        "thoughtsTokenCount": 5,
        "totalTokenCount": 20,
    },
    "modelVersion": "gemini-2.0-flash-001",
    "responseId": "abc",
}


def test_golden_response() -> None:
    completion = decode_completion(GOLDEN_RESPONSE)
    assert completion.text == "Hello there."
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(input_tokens=12, output_tokens=8, cached_input_tokens=8)
    assert completion.response_model == "gemini-2.0-flash-001"
    assert completion.mean_logprob == -0.25


def test_function_calls_get_synthesized_ids_and_finish_tool_calls() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking...", "thought": True},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "now"}},
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    completion = decode_completion(body)
    assert completion.text == ""
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.tool_calls == (
        ToolCall("call_0", "get_weather", '{"city": "Paris"}'),
        ToolCall("call_1", "now", "{}"),
    )
    assert completion.usage == Usage()


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("MAX_TOKENS", FinishReason.LENGTH),
        ("SAFETY", FinishReason.CONTENT_FILTER),
        ("RECITATION", FinishReason.CONTENT_FILTER),
        ("BLOCKLIST", FinishReason.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", FinishReason.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", FinishReason.UNKNOWN),
    ],
)
def test_finish_reasons(reason: str, expected: FinishReason) -> None:
    body = {"candidates": [{"finishReason": reason, "index": 0}]}  # a blocked answer has no content
    assert decode_completion(body).finish_reason is expected


def test_blocked_prompt_is_content_filtered() -> None:
    body = {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    with pytest.raises(ProviderError, match=r"prompt was blocked \(SAFETY\)") as info:
        decode_completion(body)
    assert info.value.failure_class is FailureClass.CONTENT_FILTERED
    with pytest.raises(ProviderError) as info:
        decode_chunk(body, first_call=0)
    assert info.value.failure_class is FailureClass.CONTENT_FILTERED


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({}, "candidates is missing"),
        ({"candidates": "x"}, "candidates should be list"),
        ({"candidates": [{"content": {"parts": [{"text": 1}]}, "finishReason": "STOP"}]}, r"parts\[0\].text"),
        ({"candidates": [{"content": {"parts": [{"text": "x"}]}}]}, "finishReason is missing"),
        (
            {"candidates": [{"finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": "1"}},
            "promptToken",
        ),
    ],
)
def test_malformed_responses(body: dict[str, Any], match: str) -> None:
    with pytest.raises(ProviderError, match=match) as info:
        decode_completion(body)
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE


def test_parse_json_rejects_non_objects() -> None:
    for raw in (b"{", b"[1]"):
        with pytest.raises(ProviderError) as info:
            parse_json(raw)
        assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE


def test_stream_events() -> None:
    first = decode_chunk(
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "Hel"}]},
                    "logprobsResult": {"chosenCandidates": [{"token": "Hel", "logProbability": -0.5}]},
                }
            ],
            "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
        },
        first_call=0,
    )
    assert (first.text, first.finish_reason) == ("Hel", None)
    assert [(t.token, t.logprob) for t in first.logprobs] == [("Hel", -0.5)]
    call = decode_chunk(
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]}}]},
        first_call=2,
    )
    assert call.tool_calls == (ToolCallDelta(2, "call_2", "f", '{"a": 1}'),)
    last = decode_chunk(
        {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "MAX_TOKENS"}]}, first_call=0
    )
    assert (last.text, last.finish_reason) == ("lo", FinishReason.LENGTH)


def test_in_stream_error_object() -> None:
    body = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(ProviderError) as info:
        decode_chunk(body, first_call=0)
    assert info.value.failure_class is FailureClass.OVERLOADED
    assert info.value.status == 503


# ------------------------------------------------------------------------------------------ errors


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return json.dumps({"error": error}).encode()


RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
BAD_KEY = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
DAILY = {
    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
    "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}],
}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            429,
            google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted"),
            FailureClass.RATE_LIMITED,
        ),
        (429, google_error(429, "RESOURCE_EXHAUSTED", "You exceeded your quota", DAILY), FailureClass.AUTH),
        (500, google_error(500, "INTERNAL", "An internal error has occurred."), FailureClass.SERVER_ERROR),
        (503, google_error(503, "UNAVAILABLE", "The model is overloaded."), FailureClass.OVERLOADED),
        (504, google_error(504, "DEADLINE_EXCEEDED", "Deadline expired"), FailureClass.TIMEOUT),
        (400, google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload"), FailureClass.BAD_REQUEST),
        (
            400,
            google_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ),
            FailureClass.CONTEXT_TOO_LONG,
        ),
        (400, google_error(400, "INVALID_ARGUMENT", "API key not valid.", BAD_KEY), FailureClass.AUTH),
        (400, google_error(400, "FAILED_PRECONDITION", "User location is not supported"), FailureClass.AUTH),
        (403, google_error(403, "PERMISSION_DENIED", "Permission denied"), FailureClass.AUTH),
        (404, google_error(404, "NOT_FOUND", "models/nope is not found"), FailureClass.SERVER_ERROR),
        (502, b"<html>Bad Gateway</html>", FailureClass.SERVER_ERROR),
    ],
)
def test_error_table(status: int, body: bytes, expected: FailureClass) -> None:
    err = classify_error(status, body, {"Content-Type": "application/json"})
    assert err.failure_class is expected
    assert err.status == status


def test_error_message_retry_delay_and_array_wrapping() -> None:
    body = b"[" + google_error(429, "RESOURCE_EXHAUSTED", "Slow   down", RETRY) + b"]"
    err = classify_error(429, body, {})
    assert err.message == "Slow down [RESOURCE_EXHAUSTED]"
    assert err.retry_after_s == 37.0
    assert classify_error(429, body, {"Retry-After": "3"}).retry_after_s == 3.0  # the header wins
    html = classify_error(502, b"<html/>", {"Content-Type": "text/html"})
    assert html.message == "HTTP 502 with a 7-byte body (text/html)"


def test_top_candidates_are_asked_for_and_decoded_per_position() -> None:
    request = ChatRequest(messages=(user("hi"),), params=GenerationParams(logprobs=True, top_logprobs=2))
    config = encode_request(request, MODEL, logprobs=True)["generationConfig"]
    assert (config["responseLogprobs"], config["logprobs"]) == (True, 2)
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Hi there"}]},
                "finishReason": "STOP",
                "logprobsResult": {
                    "chosenCandidates": [
                        {"token": "Hi", "logProbability": -0.1},
                        {"token": " there", "logProbability": -0.4},
                    ],
                    "topCandidates": [
                        {
                            "candidates": [
                                {"token": "Hi", "logProbability": -0.1},
                                {"token": "Hey", "logProbability": -2.5},
                            ]
                        },
                        {"candidates": [{"token": " there", "logProbability": -0.4}]},
                    ],
                },
            }
        ]
    }
    tokens = decode_completion(body).logprobs
    assert [(t.token, t.logprob, [(a.token, a.logprob) for a in t.top]) for t in tokens] == [
        ("Hi", -0.1, [("Hi", -0.1), ("Hey", -2.5)]),
        (" there", -0.4, [(" there", -0.4)]),
    ]
    assert decode_completion(body).mean_logprob == pytest.approx(-0.25)


def test_penalties_are_not_sent() -> None:
    # Gemini 2.5 and later answer 400 "Penalty is not enabled" to any non-zero penalty.
    params = GenerationParams(frequency_penalty=0.5, presence_penalty=-1.0)
    config = encode_request(ChatRequest(messages=(user("x"),), params=params), MODEL).get(
        "generationConfig", {}
    )
    assert "frequencyPenalty" not in config
    assert "presencePenalty" not in config
