"""The Gemini adapter against the simulator's Gemini routes and a fake upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from turnout_simulator.config import FaultKind, FaultSpec, ModelProfile, SimulatorConfig
from turnout_simulator.gemini_wire import add_gemini_routes
from turnout_simulator.server import start_simulator
from turnout_simulator.state import STATE, SimState

from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import (
    ChatRequest,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    Tool,
    ToolCall,
)
from sidecar.domain.response import FinishReason, StreamChunk
from sidecar.providers.base import ProviderCall
from sidecar.providers.factory import build_adapter
from sidecar.providers.gemini import GeminiAdapter
from sidecar.providers.session import make_session
from tests.planted import assert_no_key

KEY = "AIza-planted-SECRET-123"


def model(upstream: str = "gemini-sim") -> ModelSpec:
    return ModelSpec(
        name="flash",
        provider="google",
        upstream_model=upstream,
        price=Price(),
        context_window=1_000_000,
        max_output_tokens=1024,
        capabilities=frozenset(),
    )


def call_for(request: ChatRequest, upstream: str = "gemini-sim", **extra: Any) -> ProviderCall:
    return ProviderCall(request=request, model=model(upstream), timeout_s=5.0, **extra)


HELLO = ChatRequest(messages=(Message(Role.USER, (TextPart("hello"),)),))
CALL = call_for(HELLO)
WEATHER = Tool(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = make_session()
    yield s
    await s.close()


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimState, int]]:
    """Only the simulator's Gemini routes, with a key, instant latency and a tiny-context model."""
    config = SimulatorConfig(time_scale=0.0, api_key=KEY, models={"tiny": ModelProfile(context_window=20)})
    app = web.Application()
    app[STATE] = SimState.create(config)
    add_gemini_routes(app)
    runner, port = await serve(app)
    yield app[STATE], port
    await runner.cleanup()


def spec(port: int, key: str = KEY) -> ProviderSpec:
    return ProviderSpec("google", "gemini", f"http://127.0.0.1:{port}/v1beta", api_key=Secret(key))


@pytest.fixture
def adapter(sim: tuple[SimState, int], session: aiohttp.ClientSession) -> GeminiAdapter:
    built = build_adapter(spec(sim[1]), session)
    assert isinstance(built, GeminiAdapter)
    return built


async def collect(adapter: GeminiAdapter, call: ProviderCall = CALL) -> list[StreamChunk]:
    return [c async for c in adapter.stream(call)]


async def failure_of(work: Awaitable[Any]) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await work
    return info.value


# ------------------------------------------------------------------------------ against the simulator


async def test_complete_and_stream_give_the_same_answer(adapter: GeminiAdapter) -> None:
    whole = await adapter.complete(CALL)
    assert whole.text
    assert whole.finish_reason is FinishReason.STOP
    assert whole.response_model == "gemini-sim"
    assert whole.usage.input_tokens > 0
    assert whole.usage.output_tokens > 0
    chunks = await collect(adapter)
    assert "".join(c.text for c in chunks) == whole.text
    assert len(chunks) > 2
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage == whole.usage


async def test_tool_calls(adapter: GeminiAdapter) -> None:
    call = call_for(ChatRequest(messages=HELLO.messages, tools=(WEATHER,)))
    whole = await adapter.complete(call)
    assert whole.finish_reason is FinishReason.TOOL_CALLS
    (tool_call,) = whole.tool_calls
    assert (tool_call.id, tool_call.name) == ("call_0", "get_weather")
    assert isinstance(json.loads(tool_call.arguments_json)["city"], str)
    chunks = await collect(adapter, call)
    assert [d.name for c in chunks for d in c.tool_calls] == ["get_weather"]
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS

    # The result goes back as a functionResponse; the model then answers in text.
    answered = ChatRequest(
        messages=(
            *HELLO.messages,
            Message(Role.ASSISTANT, tool_calls=(tool_call,)),
            Message(Role.TOOL, (TextPart('{"temp": 21}'),), tool_call_id=tool_call.id),
        ),
        tools=(WEATHER,),
    )
    final = await adapter.complete(call_for(answered))
    assert final.finish_reason is FinishReason.STOP
    assert final.text


async def test_json_schema_output_and_logprobs(adapter: GeminiAdapter) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "out", schema)
    whole = await adapter.complete(
        call_for(ChatRequest(messages=HELLO.messages, response_format=fmt), want_logprobs=True)
    )
    assert isinstance(json.loads(whole.text)["n"], int)
    assert whole.mean_logprob is not None
    chunks = await collect(adapter, call_for(HELLO, want_logprobs=True))
    assert sum(len(c.logprobs) for c in chunks) == chunks[-1].usage.output_tokens  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (FaultKind.RATE_LIMIT, FailureClass.RATE_LIMITED),
        (FaultKind.SERVER_ERROR, FailureClass.SERVER_ERROR),
        (FaultKind.OVERLOADED, FailureClass.OVERLOADED),
        (FaultKind.MALFORMED_JSON, FailureClass.MALFORMED_RESPONSE),
    ],
)
async def test_simulated_faults(
    adapter: GeminiAdapter, sim: tuple[SimState, int], kind: FaultKind, expected: FailureClass
) -> None:
    sim[0].faults.add(FaultSpec(kind=kind, count=2, retry_after_s=2.0))
    for work in (adapter.complete(CALL), collect(adapter)):
        err = await failure_of(work)
        assert err.failure_class is expected
        if kind is FaultKind.RATE_LIMIT:
            assert err.retry_after_s == 2.0
            assert "[RESOURCE_EXHAUSTED]" in err.message


async def test_stream_cut_and_refusal(adapter: GeminiAdapter, sim: tuple[SimState, int]) -> None:
    sim[0].faults.add(FaultSpec(kind=FaultKind.STREAM_CUT, count=1, after_chunks=1))
    err = await failure_of(collect(adapter))
    assert err.failure_class is FailureClass.STREAM_INTERRUPTED
    sim[0].faults.add(FaultSpec(kind=FaultKind.REFUSAL, count=2))
    assert (await adapter.complete(CALL)).finish_reason is FinishReason.CONTENT_FILTER
    assert (await collect(adapter))[-1].finish_reason is FinishReason.CONTENT_FILTER


async def test_context_too_long_and_bad_key(
    adapter: GeminiAdapter, sim: tuple[SimState, int], session: aiohttp.ClientSession
) -> None:
    long = call_for(ChatRequest(messages=(Message(Role.USER, (TextPart("word " * 100),)),)), "tiny")
    err = await failure_of(adapter.complete(long))
    assert (err.failure_class, err.status) == (FailureClass.CONTEXT_TOO_LONG, 400)
    wrong = GeminiAdapter(spec(sim[1], key="AIza-wrong"), session)
    err = await failure_of(wrong.complete(CALL))
    assert err.failure_class is FailureClass.AUTH


# ------------------------------------------------------------------------------ against a fake upstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeUpstream:
    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((str(request.rel_url), dict(request.headers), await request.json()))
        assert self.handler is not None
        return await self.handler(request)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeUpstream, int]]:
    upstream = FakeUpstream()
    app = web.Application()
    app.router.add_post("/v1beta/models/{target}", upstream.dispatch)
    runner, port = await serve(app)
    yield upstream, port
    await runner.cleanup()


def answering(status: int, body: bytes | dict[str, Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(status=status, body=raw, headers={"Content-Type": "application/json"})

    return handler


def streaming(*events: dict[str, Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(f"data: {json.dumps(event)}\r\n\r\n".encode())
        await response.write_eof()
        return response

    return handler


async def test_urls_and_headers(fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession) -> None:
    upstream, port = fake
    adapter = GeminiAdapter(spec(port), session)
    text = {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}
    upstream.handler = answering(200, text)
    assert (await adapter.complete(call_for(HELLO, "models/gemini-2.0-flash"))).text == "hi"
    upstream.handler = streaming(text)
    assert [c.text for c in await collect(adapter)] == ["hi", ""]
    (url1, headers1, body1), (url2, headers2, _) = upstream.requests
    assert url1 == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert url2 == "/v1beta/models/gemini-sim:streamGenerateContent?alt=sse"
    assert headers1["x-goog-api-key"] == KEY
    assert headers2["x-goog-api-key"] == KEY
    assert "Authorization" not in headers1
    assert body1 == {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}


async def test_blocked_prompt(fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession) -> None:
    upstream, port = fake
    adapter = GeminiAdapter(spec(port), session)
    blocked = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 3},
    }
    for handler, work in (
        (answering(200, blocked), adapter.complete(CALL)),
        (streaming(blocked), collect(adapter)),
    ):
        upstream.handler = handler
        err = await failure_of(work)
        assert err.failure_class is FailureClass.CONTENT_FILTERED


async def test_stream_without_finish_reason_is_interrupted(
    fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession
) -> None:
    upstream, port = fake
    upstream.handler = streaming({"candidates": [{"content": {"parts": [{"text": "hal"}]}}]})
    err = await failure_of(collect(GeminiAdapter(spec(port), session)))
    assert err.failure_class is FailureClass.STREAM_INTERRUPTED


async def test_stream_numbers_calls_across_events(
    fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession
) -> None:
    upstream, port = fake
    fn = {"functionCall": {"name": "f", "args": {}}}
    upstream.handler = streaming(
        {"candidates": [{"content": {"parts": [fn]}}]},
        {"candidates": [{"content": {"parts": [fn]}, "finishReason": "STOP"}], "usageMetadata": {}},
    )
    chunks = await collect(GeminiAdapter(spec(port), session))
    assert [(d.index, d.id) for c in chunks for d in c.tool_calls] == [(0, "call_0"), (1, "call_1")]
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def everything_about(err: BaseException) -> str:
    return " ".join([str(err), repr(err), *traceback.format_exception(err), repr(err.__cause__)])


async def test_the_api_key_never_leaks(
    fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession
) -> None:
    upstream, port = fake
    adapter = GeminiAdapter(spec(port), session)
    echo = {"error": {"code": 400, "message": f"API key not valid: {KEY}", "status": "INVALID_ARGUMENT"}}
    failures: list[ProviderError] = []
    for handler in (answering(400, echo), answering(500, f"oops {KEY}".encode()), answering(200, b"{")):
        upstream.handler = handler
        failures.append(await failure_of(adapter.complete(CALL)))
        failures.append(await failure_of(collect(adapter)))
    failures.append(await failure_of(GeminiAdapter(spec(closed_port()), session).complete(CALL)))

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    upstream.handler = slow
    failures.append(await failure_of(adapter.complete(ProviderCall(HELLO, model(), timeout_s=0.1))))
    assert failures[0].failure_class is FailureClass.AUTH
    assert "********" in failures[0].message
    assert failures[-1].failure_class is FailureClass.TIMEOUT
    for err in failures:
        assert_no_key(KEY, everything_about(err))
    assert_no_key(KEY, repr(adapter))
    for url, _, _ in upstream.requests:
        assert KEY not in url


async def test_in_stream_error(fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession) -> None:
    upstream, port = fake
    upstream.handler = streaming(
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}]},
        {"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}},
    )
    err = await failure_of(collect(GeminiAdapter(spec(port), session)))
    assert err.failure_class is FailureClass.SERVER_ERROR


async def test_tool_call_ids_round_trip_by_name(
    fake: tuple[FakeUpstream, int], session: aiohttp.ClientSession
) -> None:
    upstream, port = fake
    upstream.handler = answering(
        200, {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]}
    )
    request = ChatRequest(
        messages=(
            *HELLO.messages,
            Message(Role.ASSISTANT, tool_calls=(ToolCall("call_0", "get_weather", '{"city": "Oslo"}'),)),
            Message(Role.TOOL, (TextPart("sunny"),), tool_call_id="call_0"),
        ),
    )
    await GeminiAdapter(spec(port), session).complete(call_for(request))
    contents = upstream.requests[0][2]["contents"]
    assert contents[-1] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}],
    }


async def test_the_full_simulator_serves_the_gemini_routes(session: aiohttp.ClientSession) -> None:
    sim = await start_simulator(SimulatorConfig(time_scale=0.0))
    try:
        adapter = GeminiAdapter(ProviderSpec("google", "gemini", f"{sim.root_url}/v1beta"), session)
        assert (await adapter.complete(CALL)).finish_reason is FinishReason.STOP
        assert sim.state.stats.requests["gemini-sim"] == 1  # counted like the OpenAI route's requests
    finally:
        await sim.close()
