"""The OpenAI codec: golden request bodies, response and chunk decoding, and the error table."""

from __future__ import annotations

import email.utils
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
from sidecar.providers.openai.codec import decode_chunk, decode_completion, encode_request
from sidecar.providers.openai.errors import classify_error, retry_after
from sidecar.providers.shape import parse_json

MODEL = ModelSpec(
    name="small",
    provider="openai",
    upstream_model="gpt-4o-mini-2024-07-18",
    price=Price(),
    context_window=128_000,
    max_output_tokens=16_384,
    capabilities=frozenset(),
)


def user(*parts: TextPart | ImagePart) -> Message:
    return Message(Role.USER, parts)


def encode(request: ChatRequest, *, stream: bool = False) -> dict[str, Any]:
    body = encode_request(request, MODEL, stream=stream)
    json.dumps(body)  # whatever the codec builds must be serialisable as is
    return body


# ---------------------------------------------------------------------------------------- encoding


def test_text_only_messages_use_string_content() -> None:
    request = ChatRequest(
        messages=(
            Message(Role.SYSTEM, (TextPart("be brief"),)),
            user(TextPart("hi"), TextPart("there")),
        )
    )
    assert encode(request) == {
        "model": "gpt-4o-mini-2024-07-18",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi\nthere"},
        ],
    }


def test_images_by_url_and_by_bytes_become_parts() -> None:
    request = ChatRequest(
        messages=(
            user(
                TextPart("what is this?"),
                ImagePart(url="https://example.com/cat.png", detail="low"),
                ImagePart(data=b"\x89PNG", media_type="image/png"),
            ),
        )
    )
    assert encode(request)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (ImagePart(data=b"\x89PNG"), "media type"),
        (ImagePart(), "neither URL nor data"),
    ],
)
def test_unusable_images_are_bad_requests(image: ImagePart, problem: str) -> None:
    with pytest.raises(ProviderError, match=problem) as info:
        encode(ChatRequest(messages=(user(TextPart("x"), image),)))
    assert info.value.failure_class is FailureClass.BAD_REQUEST
    assert "messages[0].content[1]" in info.value.message


def test_tools_and_tool_choice() -> None:
    schema = MappingProxyType(
        {"type": "object", "properties": MappingProxyType({"city": {"type": "string"}})}
    )
    request = ChatRequest(
        messages=(user(TextPart("weather?")),),
        tools=(
            Tool("get_weather", "Weather for a city", schema, strict=True),
            Tool("now"),
        ),
        tool_choice=ToolChoice(ToolChoiceMode.FUNCTION, "get_weather"),
    )
    body = encode(request)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize("mode", [ToolChoiceMode.AUTO, ToolChoiceMode.NONE, ToolChoiceMode.REQUIRED])
def test_tool_choice_modes(mode: ToolChoiceMode) -> None:
    request = ChatRequest(messages=(user(TextPart("x")),), tool_choice=ToolChoice(mode))
    assert encode(request)["tool_choice"] == mode.value


def test_assistant_tool_calls_and_tool_results() -> None:
    call = ToolCall(id="call_1", name="get_weather", arguments_json='{"city":"Oslo"}')
    request = ChatRequest(
        messages=(
            user(TextPart("weather in Oslo?")),
            Message(Role.ASSISTANT, tool_calls=(call,)),
            Message(Role.TOOL, (TextPart('{"temp": 3}'),), tool_call_id="call_1"),
            Message(Role.ASSISTANT, (TextPart("3 degrees"),), name="bot"),
        )
    )
    assert encode(request)["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
        {"role": "assistant", "content": "3 degrees", "name": "bot"},
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (ResponseFormat(), None),
        (ResponseFormat(ResponseFormatKind.JSON_OBJECT), {"type": "json_object"}),
        (
            ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "answer", {"type": "object"}, strict=True),
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
            },
        ),
        (
            ResponseFormat(ResponseFormatKind.JSON_SCHEMA, schema={"type": "object"}),
            {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}},
        ),
    ],
    ids=["text omitted", "json_object", "json_schema", "schema name defaults"],
)
def test_response_format(fmt: ResponseFormat, expected: dict[str, Any] | None) -> None:
    body = encode(ChatRequest(messages=(user(TextPart("x")),), response_format=fmt))
    assert body.get("response_format") == expected


def test_generation_params_only_when_set() -> None:
    bare = encode(ChatRequest(messages=(user(TextPart("x")),)))
    assert set(bare) == {"model", "messages"}
    params = GenerationParams(max_output_tokens=64, temperature=0.0, top_p=0.9, stop=("END",), seed=7)
    body = encode(ChatRequest(messages=(user(TextPart("x")),), params=params))
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == {
        "max_completion_tokens": 64,
        "temperature": 0.0,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
    }


def test_penalties_are_sent_when_set() -> None:
    params = GenerationParams(frequency_penalty=0.5, presence_penalty=-1.0)
    body = encode(ChatRequest(messages=(user(TextPart("x")),), params=params))
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.5, -1.0)


def test_stream_asks_for_usage() -> None:
    body = encode(ChatRequest(messages=(user(TextPart("x")),)), stream=True)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
def test_logprobs_are_asked_for_only_when_wanted(stream: bool) -> None:
    request = ChatRequest(messages=(user(TextPart("x")),))
    assert "logprobs" not in encode(request, stream=stream)
    body = encode_request(request, MODEL, stream=stream, logprobs=True)
    assert body["logprobs"] is True
    assert "top_logprobs" not in body


# ---------------------------------------------------------------------------------------- decoding


def completion_body(**message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }


def test_decode_text_completion() -> None:
    completion = decode_completion(completion_body(content="Hello!"))
    assert completion.text == "Hello!"
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage == Usage(input_tokens=12, output_tokens=3)
    assert completion.response_model == "gpt-4o-mini-2024-07-18"
    assert completion.tool_calls == ()


def test_decode_tool_calls_and_cached_tokens() -> None:
    body = completion_body(
        content=None,
        tool_calls=[
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
        ],
    )
    body["choices"][0]["finish_reason"] = "tool_calls"
    body["usage"]["prompt_tokens_details"] = {"cached_tokens": 8}
    completion = decode_completion(body)
    assert completion.text == ""
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    assert completion.tool_calls == (ToolCall("call_1", "f", '{"a":1}'),)
    assert completion.usage == Usage(input_tokens=12, output_tokens=3, cached_input_tokens=8)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("stop", FinishReason.STOP),
        ("length", FinishReason.LENGTH),
        ("tool_calls", FinishReason.TOOL_CALLS),
        ("function_call", FinishReason.TOOL_CALLS),
        ("content_filter", FinishReason.CONTENT_FILTER),
        ("something_new", FinishReason.UNKNOWN),
        (None, FinishReason.UNKNOWN),
    ],
)
def test_finish_reasons(wire: str | None, expected: FinishReason) -> None:
    body = completion_body(content="x")
    body["choices"][0]["finish_reason"] = wire
    assert decode_completion(body).finish_reason is expected


def token(text: str, logprob: float) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": []}


def test_decode_refusal() -> None:
    body = completion_body(content=None, refusal="I can't help with that.")
    body["choices"][0]["logprobs"] = {"content": None, "refusal": [token("I", -0.1), token(" can't", -0.2)]}
    completion = decode_completion(body)
    assert completion.text == ""
    assert completion.refusal == "I can't help with that."
    assert completion.finish_reason is FinishReason.STOP
    assert completion.mean_logprob is None  # the refusal's own logprobs are not the answer's


def test_decode_null_refusal_and_logprobs() -> None:
    body = completion_body(content="Hello!", refusal=None)
    body["choices"][0]["logprobs"] = None
    completion = decode_completion(body)
    assert (completion.refusal, completion.mean_logprob) == ("", None)


def test_decode_mean_logprob() -> None:
    body = completion_body(content="Hello there!")
    body["choices"][0]["logprobs"] = {
        "content": [token("Hello", -0.5), token(" there", -1), token("!", -0.0)],
        "refusal": None,
    }
    assert decode_completion(body).mean_logprob == pytest.approx(-0.5)


@pytest.mark.parametrize(
    "logprobs", [{}, {"content": None}, {"content": []}], ids=["no key", "null", "empty"]
)
def test_no_token_logprobs_mean_none(logprobs: dict[str, Any]) -> None:
    body = completion_body(content="x")
    body["choices"][0]["logprobs"] = logprobs
    assert decode_completion(body).mean_logprob is None


def _with_logprobs(logprobs: Any) -> dict[str, Any]:
    body = completion_body(content="x")
    body["choices"][0]["logprobs"] = logprobs
    return body


def test_missing_usage_is_zero() -> None:
    body = completion_body(content="x")
    del body["usage"]
    assert decode_completion(body).usage == Usage()


def _without(path: str) -> dict[str, Any]:
    body = completion_body(content="x")
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    del node[last]
    return body


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "choices is missing"),
        ({"choices": []}, "choices is empty"),
        ({"choices": "nope"}, "choices should be list"),
        ({"choices": [1]}, "choices[0] should be dict"),
        (_without("choices.0.message"), "choices[0].message is missing"),
        (completion_body(content=42), "choices[0].message.content should be str"),
        (
            completion_body(content=None, tool_calls=[{"id": "c", "function": {"arguments": "{}"}}]),
            "choices[0].message.tool_calls[0].function.name is missing",
        ),
        (
            {**completion_body(content="x"), "usage": {"prompt_tokens": "12"}},
            "usage.prompt_tokens should be int",
        ),
        ({**completion_body(content="x"), "usage": {"prompt_tokens": True}}, "should be int"),
        (completion_body(content=None, refusal=42), "choices[0].message.refusal should be str"),
        (_with_logprobs("high"), "choices[0].logprobs should be dict"),
        (_with_logprobs({"content": {"logprob": -1}}), "choices[0].logprobs.content should be list"),
        (_with_logprobs({"content": [-0.5]}), "choices[0].logprobs.content[0] should be dict"),
        (_with_logprobs({"content": [{"token": "x"}]}), "choices[0].logprobs.content[0].logprob is missing"),
        (
            _with_logprobs({"content": [token("x", -1), {"token": "y", "logprob": "-1"}]}),
            "choices[0].logprobs.content[1].logprob should be a number, got str",
        ),
        (
            _with_logprobs({"content": [{"token": "x", "logprob": True}]}),
            "choices[0].logprobs.content[0].logprob should be a number, got bool",
        ),
        (
            _with_logprobs({"content": [{"token": "x", "logprob": float("nan")}]}),
            "choices[0].logprobs.content[0].logprob should be a finite number, got nan",
        ),
    ],
)
def test_malformed_completions(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProviderError) as info:
        decode_completion(body)
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE
    assert fragment in info.value.message


def test_nan_logprob_from_the_wire_is_malformed() -> None:
    raw = json.dumps(_with_logprobs({"content": [token("x", -1)]})).replace("-1", "NaN")
    with pytest.raises(ProviderError) as info:
        decode_completion(parse_json(raw))
    assert "finite number" in info.value.message


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b""])
def test_parse_json_refuses_non_objects(raw: bytes) -> None:
    with pytest.raises(ProviderError) as info:
        parse_json(raw)
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE


def test_parse_json_reads_what_the_fast_parser_refuses_as_the_standard_parser_does() -> None:
    # orjson refuses integers beyond 64 bits; json.loads reads them, and so does parse_json
    assert parse_json(b'{"id": "x", "created": 1180591620717411303424}') == {
        "id": "x",
        "created": 2**70,
    }
    with pytest.raises(ProviderError) as info:
        parse_json(b'{"id": }')
    assert "is not valid JSON (Expecting value" in info.value.message  # the standard parser's words


def chunk_body(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    return {"object": "chat.completion.chunk", "model": "m-1", "choices": [choice]}


def test_decode_text_chunk() -> None:
    chunk = decode_chunk(chunk_body({"content": "Hel"}))
    assert (chunk.text, chunk.finish_reason, chunk.usage, chunk.response_model) == ("Hel", None, None, "m-1")


def test_decode_role_only_chunk_is_empty() -> None:
    chunk = decode_chunk(chunk_body({"role": "assistant", "content": ""}))
    assert not chunk.text
    assert not chunk.tool_calls
    assert chunk.finish_reason is None


def test_decode_tool_call_deltas() -> None:
    first = decode_chunk(
        chunk_body(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        )
    )
    more = decode_chunk(chunk_body({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    assert first.tool_calls == (ToolCallDelta(index=0, id="call_1", name="f"),)
    assert more.tool_calls == (ToolCallDelta(index=0, arguments_json='{"a":'),)


def test_decode_finish_and_usage_chunks() -> None:
    assert decode_chunk(chunk_body(finish="length")).finish_reason is FinishReason.LENGTH
    usage_only = {
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 5,
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    }
    chunk = decode_chunk(usage_only)
    assert chunk.usage == Usage(input_tokens=20, output_tokens=5, cached_input_tokens=16)
    assert chunk.finish_reason is None
    assert not chunk.text


def test_decode_chunk_with_null_usage_and_details() -> None:
    body = {**chunk_body({"content": "x"}), "usage": None}
    assert decode_chunk(body).usage is None
    body["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "prompt_tokens_details": None}
    assert decode_chunk(body).usage == Usage(1, 1, 0)


def test_decode_refusal_chunks() -> None:
    first = decode_chunk(chunk_body({"role": "assistant", "content": None, "refusal": ""}))
    fragment = decode_chunk(chunk_body({"refusal": "I can't"}))
    assert (first.text, first.refusal) == ("", "")
    assert (fragment.text, fragment.refusal) == ("", "I can't")


def test_decode_chunk_logprobs() -> None:
    body = chunk_body({"content": "Hello there"})
    body["choices"][0]["logprobs"] = {
        "content": [token("Hello", -0.25), token(" there", -2)],
        "refusal": None,
    }
    chunk = decode_chunk(body)
    assert chunk.text == "Hello there"
    assert [(t.token, t.logprob, t.token_bytes) for t in chunk.logprobs] == [
        ("Hello", -0.25, b"Hello"),
        (" there", -2.0, b" there"),
    ]
    assert all(isinstance(t.logprob, float) for t in chunk.logprobs)
    body["choices"][0]["logprobs"] = None
    assert decode_chunk(body).logprobs == ()


def _chunk_with_logprobs(logprobs: Any) -> dict[str, Any]:
    body = chunk_body({"content": "x"})
    body["choices"][0]["logprobs"] = logprobs
    return body


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"object": "chat.completion.chunk"}, "choices is missing"),
        (chunk_body({"tool_calls": [{"function": {}}]}), "choices[0].delta.tool_calls[0].index is missing"),
        (chunk_body({"content": 1}), "choices[0].delta.content should be str"),
        (chunk_body({"refusal": ["I can't"]}), "choices[0].delta.refusal should be str"),
        (_chunk_with_logprobs([]), "choices[0].logprobs should be dict"),
        (_chunk_with_logprobs({"content": "x"}), "choices[0].logprobs.content should be list"),
        (_chunk_with_logprobs({"content": [{}]}), "choices[0].logprobs.content[0].logprob is missing"),
        (
            _chunk_with_logprobs({"content": [{"logprob": None}]}),
            "choices[0].logprobs.content[0].logprob is missing",
        ),
        (
            _chunk_with_logprobs({"content": [{"logprob": [-1]}]}),
            "choices[0].logprobs.content[0].logprob should be a number, got list",
        ),
    ],
)
def test_malformed_chunks(body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProviderError) as info:
        decode_chunk(body)
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        ({"message": "boom", "type": "server_error"}, FailureClass.SERVER_ERROR),
        ({"message": "slow down", "code": "rate_limit_exceeded"}, FailureClass.RATE_LIMITED),
        (
            {"message": "This model's maximum context length is 8192 tokens", "code": 400},
            FailureClass.CONTEXT_TOO_LONG,
        ),
    ],
)
def test_in_stream_errors_raise(error: dict[str, Any], failure: FailureClass) -> None:
    with pytest.raises(ProviderError) as info:
        decode_chunk({"error": error})
    assert info.value.failure_class is failure


# ------------------------------------------------------------------------------------------ errors


def error_body(message: str, code: str | None = None, kind: str = "invalid_request_error") -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("status", "body", "failure"),
    [
        (429, error_body("Rate limit reached", "rate_limit_exceeded", "requests"), FailureClass.RATE_LIMITED),
        (
            429,
            error_body("You exceeded your quota", "insufficient_quota", "insufficient_quota"),
            FailureClass.AUTH,
        ),
        (401, error_body("Incorrect API key provided", "invalid_api_key"), FailureClass.AUTH),
        (403, error_body("Country not supported", "unsupported_country_region_territory"), FailureClass.AUTH),
        (
            400,
            error_body("This model's maximum context length is 128000 tokens.", "context_length_exceeded"),
            FailureClass.CONTEXT_TOO_LONG,
        ),
        (
            400,
            error_body("This model's maximum context length is 4097 tokens."),
            FailureClass.CONTEXT_TOO_LONG,
        ),
        (400, error_body("Your request was rejected", "content_filter"), FailureClass.CONTENT_FILTERED),
        (400, error_body("Rejected by safety", "content_policy_violation"), FailureClass.CONTENT_FILTERED),
        (400, error_body("Invalid value for 'temperature'", "invalid_value"), FailureClass.BAD_REQUEST),
        (
            404,
            error_body("The model `gpt-9` does not exist", "model_not_found"),
            FailureClass.SERVER_ERROR,
        ),  # our config is wrong, not the request
        (422, error_body("Unprocessable"), FailureClass.BAD_REQUEST),
        (413, b"", FailureClass.CONTEXT_TOO_LONG),
        (408, error_body("Request timed out"), FailureClass.TIMEOUT),
        (500, error_body("The server had an error", None, "server_error"), FailureClass.SERVER_ERROR),
        (502, b"<html>Bad Gateway</html>", FailureClass.SERVER_ERROR),
        (
            503,
            error_body("The engine is currently overloaded", None, "server_error"),
            FailureClass.OVERLOADED,
        ),
        (529, b"", FailureClass.OVERLOADED),
    ],
)
def test_error_table(status: int, body: bytes, failure: FailureClass) -> None:
    err = classify_error(status, body, JSON)
    assert err.failure_class is failure
    assert err.status == status
    assert err.message


def test_error_message_is_the_providers_truncated_and_collapsed() -> None:
    err = classify_error(400, error_body("bad\n  value " + "x" * 1000, "invalid_value"), JSON)
    assert err.message.startswith("bad value xxx")
    assert err.message.endswith("… [invalid_value]")
    assert len(err.message) < 330


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b'{"error": "plain string"}', JSON, "plain string"),
        (b'{"message": "top level", "code": 500}', JSON, "top level"),
        (b'{"detail": "fastapi style"}', JSON, "fastapi style"),
        (b"upstream connect error", {"Content-Type": "text/plain"}, "upstream connect error"),
        (b"<html>nope</html>", {"Content-Type": "text/html"}, "HTTP 500 with a 17-byte body (text/html)"),
        (b"", {}, "HTTP 500 with a 0-byte body (no content type)"),
    ],
)
def test_error_message_shapes(body: bytes, headers: dict[str, str], expected: str) -> None:
    assert classify_error(500, body, headers).message == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "retry-after": "2"}, 1.5),
        ({"Retry-After-Ms": "junk", "Retry-After": "3"}, 3.0),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": email.utils.formatdate(1_000_030.0, usegmt=True)}, 30.0),
        ({"Retry-After": email.utils.formatdate(999_000.0, usegmt=True)}, 0.0),
        ({"Retry-After": "tomorrow"}, None),
        ({"Retry-After": "inf"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers, now=1_000_000.0) == expected
    assert classify_error(429, b"", headers, now=1_000_000.0).retry_after_s == expected


# ---------------------------------------------------------------------------- client-asked logprobs


def test_a_client_asking_for_top_logprobs_sends_them() -> None:
    request = ChatRequest(
        messages=(user(TextPart("x")),), params=GenerationParams(logprobs=True, top_logprobs=5)
    )
    body = encode_request(request, MODEL, stream=False, logprobs=True)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 5)


def test_top_logprobs_and_partial_character_bytes_are_decoded() -> None:
    body = completion_body(content="é!")
    # A token may hold part of a character: its `bytes` say which, its `token` cannot.
    part = {"token": "\\xc3", "logprob": -0.1, "bytes": [0xC3], "top_logprobs": []}
    body["choices"][0]["logprobs"] = {
        "content": [
            part | {"top_logprobs": [{"token": "\\xc3", "logprob": -0.1, "bytes": [0xC3]}]},
            {"token": "\\xa9", "logprob": -0.2, "bytes": [0xA9], "top_logprobs": []},
            token("!", -0.3)
            | {"top_logprobs": [token("!", -0.3), {"token": ".", "logprob": -1.5, "bytes": None}]},
        ],
        "refusal": None,
    }
    tokens = decode_completion(body).logprobs
    assert b"".join(t.token_bytes for t in tokens).decode() == "é!"
    assert tokens[0].top[0].token_bytes == b"\xc3"
    assert [(a.token, a.logprob, a.token_bytes) for a in tokens[2].top] == [
        ("!", -0.3, b"!"),
        (".", -1.5, b"."),
    ]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"token": "x", "logprob": -1, "bytes": [256]}, "content[0].bytes should be a list of byte values"),
        ({"token": "x", "logprob": -1, "bytes": "x"}, "content[0].bytes should be list"),
        (
            {"token": "x", "logprob": -1, "top_logprobs": [{"token": "y"}]},
            "top_logprobs[0].logprob is missing",
        ),
        ({"token": "x", "logprob": -1, "top_logprobs": {}}, "content[0].top_logprobs should be list"),
    ],
)
def test_malformed_token_logprobs(entry: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ProviderError) as info:
        decode_completion(_with_logprobs({"content": [entry]}))
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE
    assert fragment in info.value.message
