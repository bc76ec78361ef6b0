"""The Bedrock adapter end to end: against the simulator's Converse routes, and a fake upstream for what
the simulator cannot show (the bearer and SigV4 headers, the path, a planted key echoed back, in-stream
exceptions)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

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
)
from sidecar.domain.response import FinishReason, StreamChunk
from sidecar.providers.base import ProviderCall
from sidecar.providers.bedrock import BedrockAdapter
from sidecar.providers.bedrock.eventstream import encode_message
from sidecar.providers.factory import build_adapter
from sidecar.providers.session import make_session
from tests.planted import assert_no_key

KEY = "ABSKQmVkcm9ja0FQSUtleS1wbGFudGVk-789"  # a Bedrock API key's shape (ABSK...)
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYPLANTEDKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEPLANTED-session-token"
ACCESS_KEY = "AKIDEXAMPLEPLANTED"
REQUEST = ChatRequest(
    messages=(Message(Role.SYSTEM, (TextPart("Be brief."),)), Message(Role.USER, (TextPart("Hello there"),)))
)
WEATHER = Tool("get_weather", "weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def call(request: ChatRequest = REQUEST, model: str = "anthropic.claude-sim-v1:0") -> ProviderCall:
    spec = ModelSpec(model, "sim", model, Price(), 128_000, 8192, frozenset())
    return ProviderCall(request, spec, timeout_s=5.0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    s = make_session()
    yield s
    await s.close()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = await start_simulator(SimulatorConfig.model_validate({"time_scale": 0.0, "api_key": KEY}))
    yield simulator
    await simulator.close()


@pytest.fixture
def adapter(sim: Simulator, session: aiohttp.ClientSession) -> BedrockAdapter:
    spec = ProviderSpec(name="sim", kind="bedrock", base_url=sim.root_url, api_key=Secret(KEY))
    built = build_adapter(spec, session)
    assert isinstance(built, BedrockAdapter)
    return built


def arm(sim: Simulator, kind: FaultKind, **extra: Any) -> None:
    sim.state.faults.add(FaultSpec(kind=kind, count=1, **extra))


async def collect(adapter: BedrockAdapter, provider_call: ProviderCall | None = None) -> list[StreamChunk]:
    return [chunk async for chunk in adapter.stream(provider_call or call())]


async def failure_of(awaitable: Awaitable[Any]) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await awaitable
    return info.value


def joined(chunks: list[StreamChunk]) -> str:
    return "".join(c.text for c in chunks)


# ------------------------------------------------------------------------------------ the simulator


async def test_complete_and_stream_give_the_same_answer(adapter: BedrockAdapter) -> None:
    whole = await adapter.complete(call())
    chunks = await collect(adapter)
    assert whole.text
    assert whole.finish_reason is FinishReason.STOP
    assert whole.usage.input_tokens > 0
    assert whole.usage.output_tokens > 0
    assert joined(chunks) == whole.text
    assert [c for c in chunks if c.finish_reason is not None] == chunks[-1:]
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage == whole.usage


async def test_max_tokens_cuts_the_answer(adapter: BedrockAdapter) -> None:
    request = ChatRequest(messages=REQUEST.messages, params=GenerationParams(max_output_tokens=3))
    completion = await adapter.complete(call(request))
    assert completion.finish_reason is FinishReason.LENGTH
    assert completion.usage.output_tokens == 3


async def test_tool_call_round_trip(adapter: BedrockAdapter) -> None:
    request = ChatRequest(messages=REQUEST.messages, tools=(WEATHER,))
    completion = await adapter.complete(call(request))
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    (tool_call,) = completion.tool_calls
    assert tool_call.name == "get_weather"
    assert tool_call.id.startswith("tooluse_")
    chunks = await collect(adapter, call(request))
    deltas = [d for c in chunks for d in c.tool_calls]
    assert (deltas[0].id, deltas[0].name) == (tool_call.id, "get_weather")
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


async def test_json_schema_through_the_forced_tool(adapter: BedrockAdapter) -> None:
    schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}}, "required": ["label"]}
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, schema_name="verdict", schema=schema)
    request = ChatRequest(messages=REQUEST.messages, response_format=fmt)
    completion = await adapter.complete(call(request))
    assert completion.finish_reason is FinishReason.STOP
    jsonschema.validate(json.loads(completion.text), schema)
    chunks = await collect(adapter, call(request))
    assert json.loads(joined(chunks)) == json.loads(completion.text)
    assert chunks[-1].finish_reason is FinishReason.STOP


async def test_refusal(adapter: BedrockAdapter, sim: Simulator) -> None:
    arm(sim, FaultKind.REFUSAL)
    completion = await adapter.complete(call())
    assert completion.finish_reason is FinishReason.CONTENT_FILTER
    assert "guardrail_intervened" in completion.refusal
    arm(sim, FaultKind.REFUSAL)
    assert (await collect(adapter))[-1].finish_reason is FinishReason.CONTENT_FILTER


@pytest.mark.parametrize(
    ("kind", "cls", "status"),
    [
        (FaultKind.RATE_LIMIT, FailureClass.RATE_LIMITED, 429),
        (FaultKind.SERVER_ERROR, FailureClass.SERVER_ERROR, 500),
        (FaultKind.OVERLOADED, FailureClass.OVERLOADED, 503),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_error_faults(
    adapter: BedrockAdapter, sim: Simulator, kind: FaultKind, cls: FailureClass, status: int, streamed: bool
) -> None:
    arm(sim, kind, retry_after_s=2.0)
    err = await failure_of(collect(adapter) if streamed else adapter.complete(call()))
    assert err.failure_class is cls
    assert err.status == status
    assert "Exception]" in err.message  # the exception's name, from x-amzn-ErrorType
    if kind is FaultKind.RATE_LIMIT:
        assert err.retry_after_s == 2.0


@pytest.mark.parametrize("streamed", [False, True])
async def test_malformed_json(adapter: BedrockAdapter, sim: Simulator, streamed: bool) -> None:
    arm(sim, FaultKind.MALFORMED_JSON)
    err = await failure_of(collect(adapter) if streamed else adapter.complete(call()))
    assert err.failure_class is FailureClass.MALFORMED_RESPONSE


async def test_stream_cut_after_content(adapter: BedrockAdapter, sim: Simulator) -> None:
    arm(sim, FaultKind.STREAM_CUT, after_chunks=3)
    err = await failure_of(collect(adapter))
    assert err.failure_class in (FailureClass.STREAM_INTERRUPTED, FailureClass.CONNECTION)


async def test_cut_whole_body(adapter: BedrockAdapter, sim: Simulator) -> None:
    arm(sim, FaultKind.STREAM_CUT)
    err = await failure_of(adapter.complete(call()))
    assert err.failure_class in (FailureClass.CONNECTION, FailureClass.MALFORMED_RESPONSE)


async def test_context_too_long(adapter: BedrockAdapter) -> None:
    huge = ChatRequest(messages=(Message(Role.USER, (TextPart("word " * 200_000),)),))
    err = await failure_of(adapter.complete(call(huge)))
    assert err.failure_class is FailureClass.CONTEXT_TOO_LONG
    assert err.status == 400


async def test_a_wrong_key_is_auth(sim: Simulator, session: aiohttp.ClientSession) -> None:
    spec = ProviderSpec(name="x", kind="bedrock", base_url=sim.root_url, api_key=Secret("wrong-key-0000"))
    err = await failure_of(BedrockAdapter(spec, session).complete(call()))
    assert err.failure_class is FailureClass.AUTH


async def test_the_same_answer_as_the_openai_route(
    adapter: BedrockAdapter, sim: Simulator, session: aiohttp.ClientSession
) -> None:
    spec = ProviderSpec(name="o", kind="openai", base_url=sim.base_url, api_key=Secret(KEY))
    openai = build_adapter(spec, session)
    provider_call = call()
    assert (await adapter.complete(provider_call)).text == (await openai.complete(provider_call)).text


# ----------------------------------------------------------------------------------- a fake upstream


@dataclass
class Upstream:
    base_url: str = ""
    seen: list[web.Request] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    # What to answer: given the request, a response (default: 401 quoting the Authorization header).
    answer: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    state = Upstream()

    async def handle(request: web.Request) -> web.StreamResponse:
        state.seen.append(request)
        state.bodies.append(await request.read())
        if state.answer is not None:
            return await state.answer(request)
        message = (
            f"The security token included in the request is invalid: {request.headers.get('Authorization')}"
        )
        headers = {"x-amzn-ErrorType": "UnrecognizedClientException:http://internal.amazon.com/coral/"}
        return web.json_response({"message": message}, status=403, headers=headers)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await runner.cleanup()


def _everything_about(err: BaseException) -> str:
    return " ".join([str(err), repr(err), *traceback.format_exception(err), repr(err.__cause__)])


async def test_bearer_key_path_and_the_key_never_leaks(
    upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    spec = ProviderSpec(name="b", kind="bedrock", base_url=upstream.base_url + "/", api_key=Secret(KEY))
    adapter = BedrockAdapter(spec, session)
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0"
    failures = [await failure_of(adapter.complete(call(model=arn))), await failure_of(collect(adapter))]
    whole, streamed = upstream.seen
    assert whole.headers["Authorization"] == f"Bearer {KEY}"
    assert whole.headers["Accept"] == "application/json"
    assert streamed.headers["Accept"] == "application/vnd.amazon.eventstream"
    quoted_arn = (
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-v1%3A0"
    )
    assert whole.raw_path == f"/model/{quoted_arn}/converse"  # sent as quoted, as signed
    assert streamed.raw_path == "/model/anthropic.claude-sim-v1%3A0/converse-stream"
    assert json.loads(upstream.bodies[0])["messages"] == [
        {"role": "user", "content": [{"text": "Hello there"}]}
    ]
    for err in failures:
        assert err.failure_class is FailureClass.AUTH
        assert "********" in err.message
        assert_no_key(KEY, _everything_about(err))
    assert_no_key(KEY, repr(adapter))
    assert "auth=api_key" in repr(adapter)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)


SIGV4 = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLEPLANTED/\d{8}/us-east-1/bedrock/aws4_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def _expected_signature(request: web.Request, body: bytes, signed: list[str], region: str) -> str:
    """SigV4 recomputed from what arrived, as AWS does: proof that what was sent is what was signed."""
    amz_date = request.headers["X-Amz-Date"]
    headers = "".join(f"{name}:{' '.join(request.headers[name].split())}\n" for name in signed)
    canonical = "\n".join(
        [
            "POST",
            quote(request.raw_path, safe="/~"),  # non-S3 services: the path is encoded once more
            "",
            headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{amz_date[:8]}/{region}/bedrock/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = ("AWS4" + SECRET_KEY).encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


async def test_sigv4_signs_each_request(
    aws_env: None, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def ok(request: web.Request) -> web.StreamResponse:
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 3, "outputTokens": 1, "totalTokens": 4},
        }
        return web.json_response(body)

    upstream.answer = ok
    spec = ProviderSpec(
        name="s", kind="bedrock", base_url=upstream.base_url, options=(("region", "us-east-1"),)
    )
    adapter = BedrockAdapter(spec, session)
    assert (await adapter.complete(call(model="anthropic.claude-3-haiku-20240307-v1:0"))).text == "hi"
    (request,) = upstream.seen
    match = SIGV4.match(request.headers["Authorization"])
    assert match is not None, request.headers["Authorization"]
    signed = match["signed"].split(";")
    assert {"host", "content-type", "x-amz-date", "x-amz-security-token"} <= set(signed)
    assert match["signature"] == _expected_signature(request, upstream.bodies[0], signed, "us-east-1")
    assert request.headers["X-Amz-Security-Token"] == SESSION_TOKEN
    assert re.fullmatch(r"\d{8}T\d{6}Z", request.headers["X-Amz-Date"])
    text = repr(adapter)
    assert "auth=sigv4" in text
    for secret in (SECRET_KEY, SESSION_TOKEN):
        assert secret not in text


async def test_sigv4_secrets_never_leak(
    aws_env: None, upstream: Upstream, session: aiohttp.ClientSession
) -> None:
    async def echo(request: web.Request) -> web.StreamResponse:
        message = f"bad signature for {SECRET_KEY} with {SESSION_TOKEN}"
        return web.json_response({"message": message}, status=403)

    upstream.answer = echo
    spec = ProviderSpec(
        name="s", kind="bedrock", base_url=upstream.base_url, options=(("region", "eu-west-1"),)
    )
    err = await failure_of(BedrockAdapter(spec, session).complete(call()))
    assert err.failure_class is FailureClass.AUTH
    for secret in (SECRET_KEY, SESSION_TOKEN):
        assert secret not in _everything_about(err)


@pytest.mark.parametrize(
    ("unset", "options", "says"),
    [
        ((), (), "options.region"),
        (("AWS_SECRET_ACCESS_KEY",), (("region", "us-east-1"),), "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_sigv4_configuration_errors(
    aws_env: None,
    monkeypatch: pytest.MonkeyPatch,
    unset: tuple[str, ...],
    options: tuple[tuple[str, str], ...],
    says: str,
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    spec = ProviderSpec(name="s", kind="bedrock", base_url="https://example.invalid", options=options)
    with pytest.raises(ValueError, match=re.escape(says)) as info:
        BedrockAdapter(spec, session=None)  # type: ignore[arg-type]  # never used: fails first
    assert SECRET_KEY not in str(info.value)


def test_missing_botocore_is_named(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "botocore.auth", None)  # makes the import raise ImportError
    spec = ProviderSpec(
        name="s", kind="bedrock", base_url="https://x.invalid", options=(("region", "us-east-1"),)
    )
    with pytest.raises(ValueError, match="botocore"):
        BedrockAdapter(spec, session=None)  # type: ignore[arg-type]
    BedrockAdapter(
        ProviderSpec(name="k", kind="bedrock", base_url="https://x.invalid", api_key=Secret(KEY)), None
    )  # type: ignore[arg-type]


def _events(*messages: bytes) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def send(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await response.prepare(request)
        for message in messages:
            await response.write(message)
        await response.write_eof()
        return response

    return send


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


def _exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())


@pytest.mark.parametrize(
    ("tail", "failure"),
    [
        (_exception("modelStreamErrorException", "the model stream broke"), FailureClass.STREAM_INTERRUPTED),
        (_exception("throttlingException", "slow down"), FailureClass.RATE_LIMITED),
        (
            _exception("validationException", "Input is too long for requested model."),
            FailureClass.CONTEXT_TOO_LONG,
        ),
        (
            encode_message(
                {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "x"}, b""
            ),
            FailureClass.SERVER_ERROR,
        ),
        (
            _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "more"}})[:-1] + b"\x00",
            FailureClass.MALFORMED_RESPONSE,
        ),
        (b"", FailureClass.STREAM_INTERRUPTED),  # the stream simply ends before messageStop
    ],
)
async def test_in_stream_failures(
    upstream: Upstream, session: aiohttp.ClientSession, tail: bytes, failure: FailureClass
) -> None:
    head = [
        _event("messageStart", {"role": "assistant"}),
        _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
    ]
    upstream.answer = _events(*head, tail)
    spec = ProviderSpec(name="b", kind="bedrock", base_url=upstream.base_url, api_key=Secret(KEY))
    received: list[StreamChunk] = []

    async def consume() -> None:
        async for chunk in BedrockAdapter(spec, session).stream(call()):
            received.append(chunk)

    err = await failure_of(consume())
    assert err.failure_class is failure
    assert joined(received) == "Hel"


async def test_nothing_after_metadata_is_read(upstream: Upstream, session: aiohttp.ClientSession) -> None:
    upstream.answer = _events(
        _event("messageStart", {"role": "assistant"}),
        _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hi"}, "p": "abcdefgh"}),
        _event("contentBlockStop", {"contentBlockIndex": 0}),
        _event("messageStop", {"stopReason": "end_turn"}),
        _event(
            "metadata",
            {"usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}, "metrics": {"latencyMs": 9}},
        ),
        b"garbage that is not a frame at all....",
    )
    spec = ProviderSpec(name="b", kind="bedrock", base_url=upstream.base_url, api_key=Secret(KEY))
    chunks = await collect(BedrockAdapter(spec, session))
    assert joined(chunks) == "Hi"
    assert chunks[-1].finish_reason is FinishReason.STOP
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.input_tokens == 5
