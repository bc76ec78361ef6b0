"""The real openai SDK as a client: answers, streams, structured outputs and tool calls parse as OpenAI's."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from pydantic import BaseModel
from turnout_simulator import Simulator

MESSAGES: list[Any] = [{"role": "user", "content": "Tell me about routing."}]

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 2},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 3, "maxLength": 40},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "count": {"type": "integer", "exclusiveMinimum": 10, "maximum": 12},
        "status": {"enum": ["ok", "degraded", "down"]},
        "kind": {"const": "report"},
        "ready": {"type": "boolean"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 3},
        "owner": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "id": {"type": "integer"}},
            "required": ["name", "id"],
        },
    },
    "required": ["title", "score", "count", "status", "kind", "tags", "owner"],
    "additionalProperties": False,
}


async def test_text_completion_looks_like_openai(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o"
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.logprobs is None
    assert choice.message.role == "assistant"
    assert choice.message.tool_calls is None
    assert choice.message.content
    assert choice.message.content.endswith(".")
    usage = completion.usage
    assert usage is not None
    assert usage.completion_tokens == len(choice.message.content.split())  # about one token per word
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0


async def test_stream_matches_the_whole_answer_and_reports_usage(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].message.content
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop"
    assert all(reason is None for reason in finishes[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert all(chunk.usage is None for chunk in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]

    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


@pytest.mark.parametrize("limit_key", ["max_tokens", "max_completion_tokens"])
async def test_small_token_limit_cuts_with_finish_reason_length(
    client: openai.AsyncOpenAI, limit_key: str
) -> None:
    limit: Any = {limit_key: 5}
    completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, **limit)

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 5

    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, **limit)
    finishes = [chunk.choices[0].finish_reason async for chunk in stream if chunk.choices]
    assert finishes[-1] == "length"


async def test_json_object_response_is_json(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, response_format={"type": "json_object"}
    )

    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_json_schema_response_validates(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "report", "schema": REPORT_SCHEMA}},
    )

    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), REPORT_SCHEMA)


async def test_json_schema_streamed_validates(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        response_format={"type": "json_schema", "json_schema": {"name": "report", "schema": REPORT_SCHEMA}},
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    jsonschema.validate(json.loads(text), REPORT_SCHEMA)


class Address(BaseModel):
    street: str
    city: str


class Person(BaseModel):
    name: str
    age: int
    home: Address
    previous: list[Address]
    nickname: str | None


async def test_sdk_parse_with_a_pydantic_model(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.parse(
        model="gpt-4o", messages=MESSAGES, response_format=Person
    )

    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert isinstance(person.home, Address)


async def test_tool_call_has_arguments_valid_for_the_tool(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None
    assert len(calls) == 1
    call: Any = calls[0]
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_TOOL["function"]["parameters"])


async def test_named_tool_choice_and_tool_choice_none(client: openai.AsyncOpenAI) -> None:
    named = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    calls: Any = named.choices[0].message.tool_calls
    assert calls[0].function.name == "get_time"

    none = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert none.choices[0].finish_reason == "stop"
    assert none.choices[0].message.tool_calls is None


async def test_after_a_tool_result_the_model_answers_in_text(client: openai.AsyncOpenAI) -> None:
    messages: Any = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    ]
    completion = await client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL])

    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content


async def test_streamed_tool_call_deltas_like_openai(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
    )
    chunks = [chunk async for chunk in stream]

    first: Any = chunks[0].choices[0].delta
    assert first.role == "assistant"
    assert first.tool_calls[0].index == 0
    assert first.tool_calls[0].id.startswith("call_")
    assert first.tool_calls[0].type == "function"
    assert first.tool_calls[0].function.name == "get_weather"
    fragments = [
        call.function.arguments
        for chunk in chunks
        for call in chunk.choices[0].delta.tool_calls or []
        if call.function and call.function.arguments
    ]
    assert len(fragments) > 1
    whole_calls: Any = whole.choices[0].message.tool_calls
    assert "".join(fragments) == whole_calls[0].function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_models_endpoint_lists_configured_models(client: openai.AsyncOpenAI, sim: Simulator) -> None:
    page = await client.models.list()

    assert [model.id for model in page.data] == list(sim.state.config.models)
