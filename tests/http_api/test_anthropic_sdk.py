"""The official anthropic Python SDK against /v1/messages: answers, streams, tools and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import pytest

from tests.http_api.conftest import Front

HELLO: Any = [{"role": "user", "content": "Say hello to the routing sidecar."}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


@pytest.fixture
def client(front: Front) -> Iterator[anthropic.Anthropic]:
    # closed: an SDK client left to the garbage collector leaks its pooled sockets
    with anthropic.Anthropic(
        base_url=front.url, api_key="unused-on-loopback", max_retries=0, timeout=30
    ) as c:
        yield c


def test_a_message_names_the_model_that_answered(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=30, messages=HELLO)
    message = raw.parse()
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.output_tokens > 0
    assert message.model == raw.headers["x-turnout-model"] == "gpt-4o-mini"
    assert message.id == f"msg_{raw.headers['x-request-id']}"


def test_a_system_prompt_and_a_pinned_model(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="claude-sonnet-4", max_tokens=20, system="You are terse.", messages=HELLO
    )
    assert message.model == "claude-sonnet-4"


def test_a_stream_gives_the_text_and_the_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="auto", max_tokens=40, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.content[0].type == "text"
    assert final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert final.usage.output_tokens > 0


def test_tool_use_round_trip(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="auto",
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    )
    assert message.stop_reason == "tool_use"
    use = next(block for block in message.content if block.type == "tool_use")
    assert use.name == "get_weather"
    jsonschema.validate(use.input, WEATHER["input_schema"])
    answer = client.messages.create(
        model="auto",
        max_tokens=50,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": json.dumps({"temp": 24})}
                ],
            },
        ],
    )
    assert answer.content


def test_a_streamed_tool_use_accumulates_its_input(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="auto",
        max_tokens=200,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Weather in Lima?"}],
    ) as stream:
        final = stream.get_final_message()
    use = next(block for block in final.content if block.type == "tool_use")
    jsonschema.validate(use.input, WEATHER["input_schema"])


def test_a_streamed_fallback_is_named_from_message_start(client: anthropic.Anthropic, front: Front) -> None:
    front.fault(model="gpt-4o-mini", kind="server_error", count=1)
    with client.messages.stream(model="auto", max_tokens=20, messages=HELLO) as stream:
        started = [e.message.model for e in stream if e.type == "message_start"]
        final = stream.get_final_message()
    assert started == [final.model] == ["gemini-2.5-flash"]


def test_a_stream_broken_after_its_first_event_raises(client: anthropic.Anthropic, front: Front) -> None:
    front.fault(model="gpt-4o-mini", kind="stream_cut", after_chunks=2, count=1)
    with (
        pytest.raises(anthropic.APIStatusError, match="the stream from gpt-4o-mini failed"),
        client.messages.stream(model="auto", max_tokens=60, messages=HELLO) as stream,
    ):
        for _ in stream.text_stream:
            pass


def test_errors_are_the_sdk_s_types(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        client.messages.create(model="auto", max_tokens=0, messages=HELLO)
    with pytest.raises(anthropic.NotFoundError, match="neither a route"):
        client.messages.create(model="claude-9", max_tokens=10, messages=HELLO)


def test_earlier_thinking_blocks_are_dropped_as_anthropic_drops_them(client: anthropic.Anthropic) -> None:
    # A conversation begun on Anthropic's API carries its reasoning in the assistant turns.
    history: Any = [
        {"role": "user", "content": "Pick a number."},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Seven is common.", "signature": "c2ln"},
                {"type": "text", "text": "Seven."},
            ],
        },
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "ZW5j"}]},
        {"role": "user", "content": "Another one?"},
    ]
    message = client.messages.create(
        model="auto", max_tokens=20, messages=history, thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert message.content
    assert message.content[0].type == "text"


def test_a_server_tool_is_refused_naming_it(client: anthropic.Anthropic) -> None:
    # Only Anthropic's platform runs web search; a model here would only "call" it into the void.
    search: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    with pytest.raises(anthropic.BadRequestError, match=r"tools\[0\].*server tools") as caught:
        client.messages.create(model="auto", max_tokens=20, messages=HELLO, tools=[search])
    assert caught.value.status_code == 400


def test_count_tokens_counts_as_the_routed_model_would(client: anthropic.Anthropic) -> None:
    # Claude Code asks before every turn, to know when to compact its context.
    short = client.messages.with_raw_response.count_tokens(model="claude-sonnet-4", messages=HELLO)
    assert short.headers["x-turnout-model"] == "claude-sonnet-4"
    tools: Any = [WEATHER]
    longer = client.messages.count_tokens(
        model="auto", system="You are terse. " * 50, messages=HELLO, tools=tools
    )
    assert 0 < short.parse().input_tokens < longer.input_tokens


def test_count_tokens_still_counts_what_fits_no_model(client: anthropic.Anthropic) -> None:
    # mixtral-8x7b holds 32,768 tokens: the routing would refuse this, the count must not.
    huge: Any = [{"role": "user", "content": "word " * 60_000}]
    pinned = client.messages.with_raw_response.count_tokens(model="mixtral-8x7b", messages=huge)
    assert pinned.headers["x-turnout-model"] == "mixtral-8x7b"  # counted by its tokenizer still
    assert pinned.parse().input_tokens > 32_768
    # Routed, nothing fits: the most conservative estimate, no model named.
    routed = client.messages.with_raw_response.count_tokens(
        model="auto", messages=[{"role": "user", "content": "word " * 1_200_000}]
    )
    assert "x-turnout-model" not in routed.headers
    assert routed.parse().input_tokens > 1_048_576
    with pytest.raises(anthropic.BadRequestError, match=r"messages\[0\]\.role"):
        client.messages.count_tokens(model="auto", messages=[{"role": "robot", "content": "hi"}])


async def test_the_async_client(front: Front) -> None:
    async with anthropic.AsyncAnthropic(base_url=front.url, api_key="x", max_retries=0) as client:
        message = await client.messages.create(model="auto", max_tokens=10, messages=HELLO)
        async with client.messages.stream(model="auto", max_tokens=10, messages=HELLO) as stream:
            final = await stream.get_final_message()
    assert message.content
    assert final.content
