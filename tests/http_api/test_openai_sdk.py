"""The official openai Python SDK against the HTTP front door: only `base_url` changes.

Sync and async clients, unary and streamed answers, tools, structured output, routing hints in
headers and the decision in response headers, a fallback, a stream broken after its first chunk,
and each error type the SDK raises for Turnout's statuses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from tests.http_api.conftest import RATE_LIMITED, Front

HELLO: Any = [{"role": "user", "content": "Say hello to the routing sidecar."}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
REPORT: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "score": {"type": "number", "minimum": 0, "maximum": 1}},
    "required": ["title", "score"],
    "additionalProperties": False,
}


@pytest.fixture
def client(front: Front) -> Iterator[openai.OpenAI]:
    # max_retries=0: the sidecar already retries and falls back; a test sees its first answer.
    # Closed: an SDK client left to the garbage collector leaks its pooled sockets.
    with openai.OpenAI(base_url=front.base_url, api_key="unused-on-loopback", max_retries=0, timeout=30) as c:
        yield c


def test_a_completion_names_the_model_that_answered(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO, max_tokens=30)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-turnout-model"] == completion.model == "gpt-4o-mini"  # the default route's first
    assert raw.headers["x-turnout-route"] == "default"
    assert raw.headers["x-turnout-attempts"] == "1"
    assert int(raw.headers["x-turnout-cost-usd-nanos"]) > 0
    assert completion.id == f"chatcmpl-{raw.headers['x-request-id']}"


def test_hints_in_headers_steer_the_route_and_the_request_id_comes_back(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=HELLO,
        extra_headers={"x-turnout-task-type": "classify", "x-request-id": "req-42"},
    )
    # The default route's rule sends classify to its cheapest model.
    assert raw.parse().model == raw.headers["x-turnout-model"] == "gpt-4.1-nano"
    assert raw.headers["x-request-id"] == "req-42"


def test_model_names_a_route_or_pins_a_registry_model(client: openai.OpenAI) -> None:
    pinned = client.chat.completions.with_raw_response.create(model="claude-3-5-haiku", messages=HELLO)
    assert pinned.parse().model == "claude-3-5-haiku"
    routed = client.chat.completions.with_raw_response.create(model="long-context", messages=HELLO)
    assert routed.headers["x-turnout-route"] == "long-context"


def test_a_stream_ends_with_the_usage_and_the_answering_model(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="auto", messages=HELLO, max_tokens=40, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"] or finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert chunks[-1].model == "gpt-4o-mini"


def test_tools_come_back_as_tool_calls_and_a_tool_result_is_answered(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice="required",
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_weather"
    arguments = json.loads(calls[0].function.arguments)
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    follow_up = client.chat.completions.create(
        model="auto",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [c.model_dump() for c in calls]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp": 21}'},
        ],
        tools=[WEATHER],
    )
    assert follow_up.choices[0].message.content


async def test_the_async_client_streams_tool_call_fragments(front: Front) -> None:
    async with openai.AsyncOpenAI(base_url=front.base_url, api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
        arguments, names = "", []
        async for chunk in stream:
            for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                names += [delta.function.name] if delta.function and delta.function.name else []
                arguments += delta.function.arguments or "" if delta.function else ""
    assert names == ["get_weather"]
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])


async def test_the_async_client_gets_a_unary_answer(front: Front) -> None:
    async with openai.AsyncOpenAI(base_url=front.base_url, api_key="x", max_retries=0) as client:
        completion = await client.chat.completions.create(model="auto", messages=HELLO, max_tokens=10)
    assert completion.choices[0].message.content
    assert completion.model == "gpt-4o-mini"


def test_structured_output_parses_against_the_json_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Rate this sidecar."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "report", "schema": REPORT, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), REPORT)
    json_mode = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Any JSON"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(json_mode.choices[0].message.content or ""), dict)


def test_a_failed_first_choice_falls_back_and_the_headers_say_so(client: openai.OpenAI, front: Front) -> None:
    front.fault(model="gpt-4o-mini", kind="server_error", count=1)
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    assert raw.parse().model == raw.headers["x-turnout-model"] == "gemini-2.5-flash"
    assert raw.headers["x-turnout-attempts"] == "2"


def test_every_chunk_of_a_stream_names_the_model_that_wrote_it(client: openai.OpenAI, front: Front) -> None:
    # The first choice fails before its first token: the fallback streams the whole answer, and
    # no chunk may claim the model that failed.
    front.fault(model="gpt-4o-mini", kind="server_error", count=1)
    chunks = list(client.chat.completions.create(model="auto", messages=HELLO, max_tokens=20, stream=True))
    assert {c.model for c in chunks} == {"gemini-2.5-flash"}


def test_a_stream_broken_after_its_first_chunk_raises_in_the_sdk(client: openai.OpenAI, front: Front) -> None:
    front.fault(model="gpt-4o-mini", kind="stream_cut", after_chunks=2, count=1)
    received: list[Any] = []
    stream = client.chat.completions.create(model="auto", messages=HELLO, max_tokens=60, stream=True)
    with pytest.raises(openai.APIError, match="the stream from gpt-4o-mini failed") as caught:
        received.extend(stream)
    assert received, "the error came after the first chunk, as an error event"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "stream_interrupted"


def test_logprobs_come_back_per_token_with_their_top_alternatives(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="auto", messages=HELLO, max_tokens=12, logprobs=True, top_logprobs=3
    )
    choice = completion.choices[0]
    assert choice.logprobs is not None
    assert choice.logprobs.content
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert len(tokens) == completion.usage.completion_tokens  # type: ignore[union-attr]
    for t in tokens:
        assert t.logprob <= 0
        assert bytes(t.bytes or []) == t.token.encode()
        assert len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token  # the simulator's chosen token is its likeliest
        assert [a.logprob for a in t.top_logprobs] == sorted(
            (a.logprob for a in t.top_logprobs), reverse=True
        )
    # Not asked: null, as OpenAI answers (a cascade may ask its models for them; they stay inside).
    plain = client.chat.completions.create(model="auto", messages=HELLO, max_tokens=12)
    assert plain.choices[0].logprobs is None


def test_a_stream_carries_each_chunks_logprobs(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gemini-2.5-flash", messages=HELLO, max_tokens=12, logprobs=True, top_logprobs=2, stream=True
    )
    chunks = [c for c in stream if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    tokens = [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.content or []]
    assert text
    assert "".join(t.token for t in tokens) == text
    assert all(len(t.top_logprobs) == 2 for t in tokens)


def test_logprobs_leave_out_models_that_cannot_return_them(client: openai.OpenAI) -> None:
    # Anthropic's API has no token logprobs: pinned, the request cannot be served; routed, the
    # route's models that can serve it do.
    with pytest.raises(openai.BadRequestError, match="claude-sonnet-4: lacks logprobs") as caught:
        client.chat.completions.create(model="claude-sonnet-4", messages=HELLO, logprobs=True)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "no_candidate"
    # The code rule's first choice is claude-sonnet-4; the next one that can return them answers.
    routed = client.chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, logprobs=True, extra_headers={"x-turnout-task-type": "code"}
    )
    assert routed.headers["x-turnout-model"] == routed.parse().model == "gpt-4o"
    with pytest.raises(openai.BadRequestError, match="top_logprobs: needs logprobs"):
        client.chat.completions.create(model="auto", messages=HELLO, top_logprobs=2)
    with pytest.raises(openai.BadRequestError, match="top_logprobs: must be at least 0 and at most 20"):
        client.chat.completions.create(model="auto", messages=HELLO, logprobs=True, top_logprobs=21)


def test_a_bad_request_raises_bad_request_error_naming_the_field(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="auto", messages=HELLO, n=2)
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(model="auto", messages=HELLO, temperature=3)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("functions", [{"name": "f", "parameters": {"type": "object"}}], "send the same schemas as tools"),
        ("function_call", "auto", "legacy functions API"),
        ("modalities", ["text", "audio"], "text only"),
        ("audio", {"voice": "alloy", "format": "wav"}, "audio output"),
        ("logit_bias", {"50256": -100}, "tokenizer"),
        ("web_search_options", {}, "web search"),
        ("frequency_penalty", 2.5, "at most 2"),
        ("presence_penalty", -3, "at least -2"),
    ],
)
def test_what_turnout_cannot_honour_is_refused_not_ignored(
    client: openai.OpenAI, field: str, value: Any, says: str
) -> None:
    # Ignored, each would change the answer without a word: no function call, no audio, no search.
    with pytest.raises(openai.BadRequestError, match=says) as caught:
        client.chat.completions.create(model="auto", messages=HELLO, extra_body={field: value})
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == field


def test_penalties_and_platform_only_fields_are_answered(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=HELLO,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        # neutral or platform-only: nothing of the answer depends on them here
        modalities=["text"],
        logit_bias={},
        user="user-1",
        store=False,
        parallel_tool_calls=False,
        reasoning_effort="low",
        prediction={"type": "content", "content": "hello"},
    )
    assert answer.model == "gpt-4o-mini"
    assert answer.choices[0].message.content


def test_models_retrieve_returns_a_model_or_a_route_and_raises_not_found_for_others(
    client: openai.OpenAI,
) -> None:
    assert client.models.retrieve("gpt-4o-mini").owned_by == "openai"
    assert client.models.retrieve("default").owned_by == "turnout"
    with pytest.raises(openai.NotFoundError, match="neither a route") as caught:
        client.models.retrieve("gpt-9")
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "model_not_found"


def test_an_unknown_model_raises_not_found_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="neither a route"):
        client.chat.completions.create(model="gpt-9", messages=HELLO)


def test_refused_admission_raises_rate_limit_error_with_retry_after(client: openai.OpenAI) -> None:
    client.chat.completions.create(model=RATE_LIMITED, messages=HELLO)  # takes the provider's one token
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=RATE_LIMITED, messages=HELLO)
    assert int(caught.value.response.headers["retry-after"]) >= 1


def test_every_candidate_failing_raises_api_status_error_503(client: openai.OpenAI, front: Front) -> None:
    front.fault(model="gpt-4o", kind="server_error", count=10)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.status_code == 503
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "all_candidates_failed"


def test_models_lists_the_registry_and_the_routes(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert {"gpt-4o-mini", "claude-sonnet-4", "default", "long-context"} <= set(models)
    assert models["gpt-4o-mini"].owned_by == "openai"
    assert models["default"].owned_by == "turnout"


def test_the_readme_example_runs(front: Front) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "openai_sdk.py"
    env = {**os.environ, "TURNOUT_HTTP_URL": front.base_url}
    done = subprocess.run([sys.executable, str(example)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "model: gpt-4.1-nano, route: default, cost: 0.0000" in done.stdout
