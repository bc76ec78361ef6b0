"""The Anthropic adapter end to end: against the simulator's /v1/messages, and a fake upstream for
what the simulator cannot show (headers sent, a planted key echoed back)."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp import web
from turnout_simulator import Simulator, SimulatorConfig, start_simulator
from turnout_simulator.config import FaultKind, FaultSpec

from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import (
    ChatRequest,
    GenerationParams,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    Tool,
    ToolCall,
)
from sidecar.domain.response import Completion, FinishReason, StreamChunk
from sidecar.providers.anthropic import AnthropicAdapter
from sidecar.providers.anthropic.codec import REFUSAL_NOTE
from sidecar.providers.base import ProviderCall
from sidecar.providers.factory import build_adapter
from sidecar.providers.session import make_session
from tests.planted import assert_no_key

KEY = "sk-ant-planted-SECRET-456"
REQUEST = ChatRequest(
    messages=(Message(Role.SYSTEM, (TextPart("Be brief."),)), Message(Role.USER, (TextPart("Hello there"),)))
)
WEATHER = Tool("get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def call(request: ChatRequest = REQUEST, model: str = "claude-sim", timeout_s: float = 5.0) -> ProviderCall:
    spec = ModelSpec(
        name=model,
        provider="sim",
        upstream_model=model,
        price=Price(),
        context_window=128_000,
        max_output_tokens=8192,
        capabilities=frozenset(),
    )
    return ProviderCall(request, spec, timeout_s=timeout_s)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = make_session()
    yield s
    await s.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = await start_simulator(SimulatorConfig.model_validate({"time_scale": 0.0}))
    yield simulator
    await simulator.close()


@pytest.fixture
def adapter(sim: Simulator, session: aiohttp.ClientSession) -> AnthropicAdapter:
    spec = ProviderSpec(name="sim", kind="anthropic", base_url=sim.base_url, api_key=Secret(KEY))
    built = build_adapter(spec, session)
    assert isinstance(built, AnthropicAdapter)
    return built


def arm(sim: Simulator, kind: FaultKind, **extra: Any) -> None:
    sim.state.faults.add(FaultSpec(kind=kind, count=1, **extra))


async def collect(adapter: AnthropicAdapter, provider_call: ProviderCall) -> list[StreamChunk]:
    return [chunk async for chunk in adapter.stream(provider_call)]


async def failure_of(awaitable: Awaitable[Any]) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await awaitable
    return info.value


def joined(chunks: list[StreamChunk]) -> str:
    return "".join(c.text for c in chunks)


# ------------------------------------------------------------------------------------ the simulator


async def test_complete_and_stream_give_the_same_answer(adapter: AnthropicAdapter) -> None:
    whole = await adapter.complete(call())
    chunks = await collect(adapter, call())
    assert whole.text
    assert whole.finish_reason is FinishReason.STOP
    assert whole.usage.input_tokens > 0
    assert whole.usage.output_tokens > 0
    assert whole.response_model == "claude-sim"
    assert joined(chunks) == whole.text
    final = chunks[-1]
    assert final.finish_reason is FinishReason.STOP
    assert final.usage == whole.usage


async def test_max_tokens_cuts_the_answer(adapter: AnthropicAdapter) -> None:
    request = ChatRequest(messages=REQUEST.messages, params=GenerationParams(max_output_tokens=3))
    completion = await adapter.complete(call(request))
    assert completion.finish_reason is FinishReason.LENGTH
    assert completion.usage.output_tokens == 3


async def test_tool_call_round_trip(adapter: AnthropicAdapter) -> None:
    request = ChatRequest(messages=REQUEST.messages, tools=(WEATHER,))
    completion = await adapter.complete(call(request))
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    (tool_call,) = completion.tool_calls
    assert tool_call.name == "get_weather"
    assert tool_call.id.startswith("toolu_")
    assert isinstance(json.loads(tool_call.arguments_json), dict)

    chunks = await collect(adapter, call(request))
    deltas = [d for c in chunks for d in c.tool_calls]
    assert deltas[0].id == tool_call.id
    assert deltas[0].name == "get_weather"
    assert json.loads("".join(d.arguments_json for d in deltas)) == json.loads(tool_call.arguments_json)
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS

    answered = ChatRequest(
        messages=(
            *REQUEST.messages,
            Message(Role.ASSISTANT, tool_calls=(tool_call,)),
            Message(Role.TOOL, (TextPart("sunny"),), tool_call_id=tool_call.id),
        ),
        tools=(WEATHER,),
    )
    after = await adapter.complete(call(answered))
    assert after.finish_reason is FinishReason.STOP
    assert after.text
    assert not after.tool_calls


async def test_json_schema_through_the_forced_tool(adapter: AnthropicAdapter) -> None:
    schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}}, "required": ["label"]}
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, schema_name="verdict", schema=schema)
    request = ChatRequest(messages=REQUEST.messages, response_format=fmt)
    completion = await adapter.complete(call(request))
    assert completion.finish_reason is FinishReason.STOP
    assert not completion.tool_calls
    jsonschema.validate(json.loads(completion.text), schema)
    chunks = await collect(adapter, call(request))
    assert json.loads(joined(chunks)) == json.loads(completion.text)
    assert chunks[-1].finish_reason is FinishReason.STOP


async def test_refusal(adapter: AnthropicAdapter, sim: Simulator) -> None:
    arm(sim, FaultKind.REFUSAL)
    completion = await adapter.complete(call())
    assert completion.finish_reason is FinishReason.CONTENT_FILTER
    assert completion.refusal == REFUSAL_NOTE
    arm(sim, FaultKind.REFUSAL)
    final = (await collect(adapter, call()))[-1]
    assert final.finish_reason is FinishReason.CONTENT_FILTER
    assert final.refusal == REFUSAL_NOTE


@pytest.mark.parametrize(
    ("kind", "cls", "status"),
    [
        (FaultKind.RATE_LIMIT, FailureClass.RATE_LIMITED, 429),
        (FaultKind.SERVER_ERROR, FailureClass.SERVER_ERROR, 500),
        (FaultKind.OVERLOADED, FailureClass.OVERLOADED, 529),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_error_faults(
    adapter: AnthropicAdapter, sim: Simulator, kind: FaultKind, cls: FailureClass, status: int, streamed: bool
) -> None:
    arm(sim, kind, retry_after_s=2.0)
    err = await failure_of(collect(adapter, call()) if streamed else adapter.complete(call()))
    assert err.failure_class is cls
    assert err.status == status
    if kind is FaultKind.RATE_LIMIT:
        assert err.retry_after_s == 2.0


@pytest.mark.parametrize("streamed", [False, True])
async def test_malformed_json(adapter: AnthropicAdapter, sim: Simulator, streamed: bool) -> None:
    arm(sim, FaultKind.MALFORMED_JSON)
    err = await failure_of(collect(adapter, call()) if streamed else adapter.complete(call()))
    assert err.failure_class is FailureClass.MALFORMED_RESPONSE


async def test_stream_cut_after_content(adapter: AnthropicAdapter, sim: Simulator) -> None:
    arm(sim, FaultKind.STREAM_CUT, after_chunks=5)
    err = await failure_of(collect(adapter, call()))
    assert err.failure_class in (FailureClass.STREAM_INTERRUPTED, FailureClass.CONNECTION)


async def test_cut_whole_body(adapter: AnthropicAdapter, sim: Simulator) -> None:
    arm(sim, FaultKind.STREAM_CUT)
    err = await failure_of(adapter.complete(call()))
    assert err.failure_class in (FailureClass.CONNECTION, FailureClass.MALFORMED_RESPONSE)


async def test_context_too_long(adapter: AnthropicAdapter) -> None:
    huge = ChatRequest(messages=(Message(Role.USER, (TextPart("word " * 200_000),)),))
    err = await failure_of(adapter.complete(call(huge)))
    assert err.failure_class is FailureClass.CONTEXT_TOO_LONG
    assert err.status == 400


# ----------------------------------------------------------------------------------- a fake upstream


@pytest.fixture
async def echo_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An upstream that records request headers and answers 401 quoting the key it was sent."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        key = request.headers.get("x-api-key", "")
        body = {
            "type": "error",
            "error": {"type": "authentication_error", "message": f"invalid x-api-key {key}"},
        }
        return web.json_response(body, status=401)

    app = web.Application()
    app.router.add_post("/v1/messages", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1", seen
    await runner.cleanup()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _everything_about(err: BaseException) -> str:
    return " ".join([str(err), repr(err), *traceback.format_exception(err), repr(err.__cause__)])


async def test_headers_and_the_key_never_leaks(
    echo_server: tuple[str, list[dict[str, str]]], session: aiohttp.ClientSession
) -> None:
    base_url, seen = echo_server
    options = (("api_version", "2024-01-01"),)
    spec = ProviderSpec(name="a", kind="anthropic", base_url=base_url, api_key=Secret(KEY), options=options)
    adapter = AnthropicAdapter(spec, session)
    failures = [await failure_of(adapter.complete(call())), await failure_of(collect(adapter, call()))]
    assert seen[0]["x-api-key"] == KEY
    assert seen[0]["anthropic-version"] == "2024-01-01"
    assert "Authorization" not in seen[0]
    assert failures[0].failure_class is FailureClass.AUTH
    assert "********" in failures[0].message
    dead = ProviderSpec(
        name="b", kind="anthropic", base_url=f"http://127.0.0.1:{_closed_port()}", api_key=Secret(KEY)
    )
    failures.append(await failure_of(AnthropicAdapter(dead, session).complete(call())))
    assert failures[-1].failure_class is FailureClass.CONNECTION
    for err in failures:
        assert_no_key(KEY, _everything_about(err))
    assert_no_key(KEY, repr(adapter))
    assert KEY not in repr(spec)


async def test_default_api_version(
    echo_server: tuple[str, list[dict[str, str]]], session: aiohttp.ClientSession
) -> None:
    base_url, seen = echo_server
    adapter = AnthropicAdapter(ProviderSpec(name="a", kind="anthropic", base_url=base_url), session)
    await failure_of(adapter.complete(call()))
    assert seen[0]["anthropic-version"] == "2023-06-01"
    assert "x-api-key" not in seen[0]


def test_completion_type_is_the_domain_one() -> None:
    assert Completion.__module__ == "sidecar.domain.response"
    assert ToolCall.__module__ == "sidecar.domain.request"


async def test_the_same_answer_as_the_openai_route(
    adapter: AnthropicAdapter, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    openai = build_adapter(ProviderSpec(name="o", kind="openai", base_url=sim.base_url), session)
    provider_call = call()
    assert (await adapter.complete(provider_call)).text == (await openai.complete(provider_call)).text
