"""The OpenAI adapter against a fake upstream on 127.0.0.1: success, every failure, cancellation, secrets."""

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

from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.domain.response import Completion, FinishReason, StreamChunk, ToolCallDelta, Usage
from sidecar.providers.base import ProviderCall
from sidecar.providers.openai import OpenAIAdapter
from sidecar.providers.session import make_session
from tests.planted import assert_no_key

KEY = "sk-planted-SECRET-123"
MODEL = ModelSpec(
    name="small",
    provider="fake",
    upstream_model="gpt-fake",
    price=Price(),
    context_window=8192,
    max_output_tokens=1024,
    capabilities=frozenset(),
)
CALL = ProviderCall(
    request=ChatRequest(messages=(Message(Role.USER, (TextPart("hello"),)),)),
    model=MODEL,
    timeout_s=5.0,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeUpstream:
    """An OpenAI-shaped server whose one route runs whatever handler the test installs."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.disconnected = asyncio.Event()

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.bodies.append(await request.json())
        self.headers.append(dict(request.headers))
        assert self.handler is not None
        return await self.handler(request)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[FakeUpstream, int]]:
    fake = FakeUpstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.dispatch)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield fake, runner.addresses[0][1]
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = make_session()
    yield s
    await s.close()


@pytest.fixture
def fake(upstream: tuple[FakeUpstream, int]) -> FakeUpstream:
    return upstream[0]


@pytest.fixture
def adapter(upstream: tuple[FakeUpstream, int], session: aiohttp.ClientSession) -> OpenAIAdapter:
    return OpenAIAdapter(spec_for(upstream[1]), session)


def spec_for(port: int) -> ProviderSpec:
    return ProviderSpec(
        name="fake",
        kind="openai",
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=Secret(KEY),
        headers=(("OpenAI-Organization", "org-1"),),
    )


def completion(text: str = "Hi there") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-fake-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}},
    }


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = (
        []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    )
    return {"object": "chat.completion.chunk", "model": "gpt-fake-0613", "choices": choices, **extra}


def sse(*events: dict[str, Any] | str) -> list[bytes]:
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events]


HAPPY_STREAM = sse(
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo ✓"}),
    chunk({}, "stop"),
    chunk(usage={"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 4}}),
    "[DONE]",
)


def streaming(parts: list[bytes], *, then: str = "end", delay_s: float = 0.0) -> Handler:
    """A handler that writes `parts`, then ends cleanly, aborts the connection, or keeps going."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in parts:
            await response.write(part)
            await asyncio.sleep(delay_s)
        if then == "abort":
            assert request.transport is not None
            request.transport.abort()
            return response
        if then == "hang":
            await asyncio.sleep(3600)
        await response.write_eof()
        return response

    return handler


def answering(status: int, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(
            status=status, body=raw, headers={"Content-Type": "application/json", **(headers or {})}
        )

    return handler


async def collect(adapter: OpenAIAdapter, call: ProviderCall = CALL) -> list[StreamChunk]:
    return [c async for c in adapter.stream(call)]


async def failure_of(work: Awaitable[Any]) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await work
    return info.value


# ----------------------------------------------------------------------------------------- success


async def test_complete(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = answering(200, completion())
    result = await adapter.complete(CALL)
    assert result == Completion(
        text="Hi there",
        finish_reason=FinishReason.STOP,
        usage=Usage(input_tokens=9, output_tokens=2, cached_input_tokens=4),
        response_model="gpt-fake-0613",
    )
    assert fake.bodies[0] == {"model": "gpt-fake", "messages": [{"role": "user", "content": "hello"}]}
    headers = fake.headers[0]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["Accept"] == "application/json"


async def test_stream_with_usage_yields_one_final_chunk(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = streaming(HAPPY_STREAM)
    chunks = await collect(adapter)
    assert [c.text for c in chunks] == ["Hel", "lo ✓", ""]
    final = chunks[-1]
    assert final.finish_reason is FinishReason.STOP
    assert final.usage == Usage(input_tokens=9, output_tokens=2, cached_input_tokens=4)
    assert final.response_model == "gpt-fake-0613"
    assert all(c.finish_reason is None and c.usage is None for c in chunks[:-1])
    assert fake.bodies[0]["stream"] is True
    assert fake.bodies[0]["stream_options"] == {"include_usage": True}
    assert fake.headers[0]["Accept"] == "text/event-stream"


async def test_stream_survives_any_chunking(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    whole = b"".join(HAPPY_STREAM).replace(b"\n", b"\r\n")
    fake.handler = streaming([whole[i : i + 5] for i in range(0, len(whole), 5)])
    chunks = await collect(adapter)
    assert "".join(c.text for c in chunks) == "Hello ✓"
    assert chunks[-1].usage is not None
    assert chunks[-1].finish_reason is FinishReason.STOP


async def test_stream_tool_calls(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    call_start = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    fake.handler = streaming(
        sse(
            chunk({"tool_calls": [call_start]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        )
    )
    chunks = await collect(adapter)
    assert [c.tool_calls for c in chunks[:-1]] == [
        (ToolCallDelta(0, "call_1", "f", ""),),
        (ToolCallDelta(0, arguments_json='{"a":1}'),),
    ]
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS
    assert chunks[-1].usage is None


async def test_stream_ending_after_finish_without_done_is_accepted(
    adapter: OpenAIAdapter, fake: FakeUpstream
) -> None:
    fake.handler = streaming(sse(chunk({"content": "x"}), chunk({}, "length")))
    chunks = await collect(adapter)
    assert chunks[-1].finish_reason is FinishReason.LENGTH


def logprob(text: str, value: float) -> dict[str, Any]:
    return {"token": text, "logprob": value, "bytes": list(text.encode()), "top_logprobs": []}


async def test_complete_asks_for_logprobs_and_decodes_them(
    adapter: OpenAIAdapter, fake: FakeUpstream
) -> None:
    body = completion("Hi there")
    body["choices"][0]["logprobs"] = {"content": [logprob("Hi", -0.5), logprob(" there", -1.5)]}
    fake.handler = answering(200, body)
    result = await adapter.complete(ProviderCall(CALL.request, MODEL, timeout_s=5.0, want_logprobs=True))
    assert fake.bodies[0]["logprobs"] is True
    assert result.text == "Hi there"
    assert result.mean_logprob == -1.0
    assert result.refusal == ""


async def test_complete_decodes_a_refusal(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    body = completion()
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "refusal": "I can't help with that.",
    }
    fake.handler = answering(200, body)
    result = await adapter.complete(CALL)
    assert "logprobs" not in fake.bodies[0]
    assert (result.text, result.refusal, result.finish_reason) == (
        "",
        "I can't help with that.",
        FinishReason.STOP,
    )
    assert result.mean_logprob is None


async def test_stream_passes_refusal_fragments_and_logprobs_through(
    adapter: OpenAIAdapter, fake: FakeUpstream
) -> None:
    fake.handler = streaming(
        sse(
            chunk({"role": "assistant", "content": None, "refusal": ""}),
            chunk({"refusal": "I can't"}),
            chunk({"refusal": " help."}),
            chunk({}, "stop"),
            "[DONE]",
        )
    )
    chunks = await collect(adapter, ProviderCall(CALL.request, MODEL, timeout_s=5.0, want_logprobs=True))
    assert fake.bodies[0]["logprobs"] is True
    assert [(c.text, c.refusal) for c in chunks[:-1]] == [("", "I can't"), ("", " help.")]
    assert chunks[-1].finish_reason is FinishReason.STOP

    with_logprobs = chunk({"content": "Hi"})
    with_logprobs["choices"][0]["logprobs"] = {"content": [logprob("Hi", -0.75)], "refusal": None}
    fake.handler = streaming(sse(with_logprobs, chunk({}, "stop"), "[DONE]"))
    chunks = await collect(adapter)
    assert [(c.text, [t.logprob for t in c.logprobs]) for c in chunks[:-1]] == [("Hi", [-0.75])]
    assert chunks[-1].logprobs == ()


async def test_malformed_logprobs_in_a_stream(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    bad = chunk({"content": "Hi"})
    bad["choices"][0]["logprobs"] = {"content": [{"token": "Hi"}]}
    fake.handler = streaming(sse(bad, chunk({}, "stop"), "[DONE]"))
    err = await failure_of(collect(adapter))
    assert err.failure_class is FailureClass.MALFORMED_RESPONSE
    assert "choices[0].logprobs.content[0].logprob is missing" in err.message


# ---------------------------------------------------------------------------------------- failures


async def test_rate_limited_with_retry_after(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    body = {
        "error": {
            "message": "Rate limit reached for requests",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    fake.handler = answering(429, body, {"Retry-After": "7"})
    err = await failure_of(adapter.complete(CALL))
    assert (err.failure_class, err.status, err.retry_after_s) == (FailureClass.RATE_LIMITED, 429, 7.0)
    assert "Rate limit reached" in err.message


async def test_rate_limited_stream(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = answering(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "250"})
    err = await failure_of(collect(adapter))
    assert (err.failure_class, err.retry_after_s) == (FailureClass.RATE_LIMITED, 0.25)


async def test_server_error(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = answering(500, {"error": {"message": "The server had an error", "type": "server_error"}})
    err = await failure_of(adapter.complete(CALL))
    assert (err.failure_class, err.status) == (FailureClass.SERVER_ERROR, 500)


@pytest.mark.parametrize("body", [b"{not json", b'"a string"', json.dumps({"choices": []}).encode()])
async def test_malformed_body(adapter: OpenAIAdapter, fake: FakeUpstream, body: bytes) -> None:
    fake.handler = answering(200, body)
    err = await failure_of(adapter.complete(CALL))
    assert err.failure_class is FailureClass.MALFORMED_RESPONSE


async def test_malformed_stream_event(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = streaming([*sse(chunk({"content": "x"})), b"data: {oops\n\n"])
    err = await failure_of(collect(adapter))
    assert err.failure_class is FailureClass.MALFORMED_RESPONSE


async def test_error_event_inside_the_stream(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = streaming(sse({"error": {"message": "model crashed", "type": "server_error"}}))
    err = await failure_of(collect(adapter))
    assert err.failure_class is FailureClass.SERVER_ERROR
    assert "model crashed" in err.message


async def test_stream_ending_without_done_or_finish(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = streaming(sse(chunk({"content": "partial"})))
    seen: list[str] = []

    async def consume() -> None:
        async for c in adapter.stream(CALL):
            seen.append(c.text)

    err = await failure_of(consume())
    assert seen == ["partial"]
    assert err.failure_class is FailureClass.STREAM_INTERRUPTED


async def test_stream_connection_cut_after_chunks(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = streaming(
        [*sse(chunk({"content": "partial"})), b'data: {"obj'], then="abort", delay_s=0.05
    )
    err = await failure_of(collect(adapter))
    assert err.failure_class is FailureClass.STREAM_INTERRUPTED


async def test_connection_cut_before_any_chunk(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fake.handler = hang_up
    for work in (adapter.complete(CALL), collect(adapter)):
        err = await failure_of(work)
        assert err.failure_class is FailureClass.CONNECTION


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_connection_refused(session: aiohttp.ClientSession) -> None:
    adapter = OpenAIAdapter(spec_for(closed_port()), session)
    for work in (adapter.complete(CALL), collect(adapter)):
        err = await failure_of(work)
        assert err.failure_class is FailureClass.CONNECTION
        assert err.__cause__ is None


async def test_timeout(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fake.handler = slow
    quick = ProviderCall(CALL.request, MODEL, timeout_s=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    err = await failure_of(adapter.complete(quick))
    assert err.failure_class is FailureClass.TIMEOUT
    assert loop.time() - started < 2.0
    assert "0.2s" in err.message


async def test_stream_stalling_mid_way_times_out(adapter: OpenAIAdapter, fake: FakeUpstream) -> None:
    fake.handler = streaming(sse(chunk({"content": "x"})), then="hang")
    err = await failure_of(collect(adapter, ProviderCall(CALL.request, MODEL, timeout_s=0.3)))
    assert err.failure_class is FailureClass.TIMEOUT


# ------------------------------------------------------------------------------------ cancellation


def endless(fake: FakeUpstream) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(sse(chunk({"content": "tick"}))[0])
                await asyncio.sleep(0.02)
        except (asyncio.CancelledError, ConnectionResetError):
            fake.disconnected.set()
            raise

    return handler


async def test_cancellation_mid_stream_closes_the_upstream_connection(
    adapter: OpenAIAdapter, fake: FakeUpstream
) -> None:
    fake.handler = endless(fake)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in adapter.stream(CALL):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(fake.disconnected.wait(), 2.0)


async def test_abandoning_a_stream_closes_the_upstream_connection(
    adapter: OpenAIAdapter, fake: FakeUpstream
) -> None:
    fake.handler = endless(fake)
    stream = adapter.stream(CALL)
    assert (await anext(stream)).text == "tick"
    await stream.aclose()  # type: ignore[attr-defined]
    await asyncio.wait_for(fake.disconnected.wait(), 2.0)


# ----------------------------------------------------------------------------------------- secrets


def everything_about(err: BaseException) -> str:
    return " ".join([str(err), repr(err), *traceback.format_exception(err), repr(err.__cause__)])


async def test_the_api_key_never_leaks(
    session: aiohttp.ClientSession, adapter: OpenAIAdapter, fake: FakeUpstream
) -> None:
    echo = {"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}}
    # What OpenAI really answers: the key's head, masked, and its last four characters.
    masked = {"error": {"message": f"Incorrect API key provided: {KEY[:8]}****{KEY[-4:]}.", "code": "x"}}
    failures: list[ProviderError] = []
    for handler in (
        answering(401, echo),
        answering(401, masked),
        answering(401, {"error": {"message": f"Incorrect API key provided: {KEY[:6]}***."}}),
        answering(500, f"oops {KEY}".encode()),
        answering(200, b"{"),
    ):
        fake.handler = handler
        failures.append(await failure_of(adapter.complete(CALL)))
        failures.append(await failure_of(collect(adapter)))
    refused = OpenAIAdapter(spec_for(closed_port()), session)
    failures.append(await failure_of(refused.complete(CALL)))

    async def slow(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    fake.handler = slow
    failures.append(await failure_of(adapter.complete(ProviderCall(CALL.request, MODEL, timeout_s=0.1))))

    assert failures[0].failure_class is FailureClass.AUTH
    assert "********" in failures[0].message
    for err in failures:
        assert_no_key(KEY, everything_about(err))
    assert_no_key(KEY, repr(adapter))
