"""One conformance suite for every provider adapter, against the simulator speaking each wire format.

Each adapter must: answer plain text, stream the same answer in pieces with a final chunk that
carries the finish reason and usage, call tools, produce JSON for a schema, accept images, report
usage, and map each failure to the same FailureClass. A kind joins the suite by being built by
the factory and served by the simulator (see KINDS).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jsonschema
import pytest
from turnout_simulator.config import ModelProfile, SimulatorConfig
from turnout_simulator.server import Simulator, start_simulator

from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import (
    Capability,
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    Tool,
    ToolChoice,
    ToolChoiceMode,
)
from sidecar.domain.response import FinishReason, StreamChunk
from sidecar.providers.base import ProviderAdapter, ProviderCall
from sidecar.providers.factory import KNOWN_KINDS, build_adapter
from sidecar.providers.session import make_session
from tests.planted import assert_no_key

KEY = "sk-planted-CONFORMANCE-4242"


# kind -> (base URL from the simulator's root, options)
def _kind(case: str) -> str:
    """A case is a kind, or a kind and a variant in parentheses."""
    return case.split(" ")[0]


KINDS: dict[str, tuple[Callable[[str], str], dict[str, str]]] = {
    "openai": (lambda root: f"{root}/v1", {}),
    "openai_compatible": (lambda root: f"{root}/v1", {"flavor": "vllm"}),
    "azure_openai": (lambda root: root, {}),
    "azure_openai (deployment path)": (lambda root: root, {"api_version": "2024-10-21"}),
    "anthropic": (lambda root: f"{root}/v1", {"api_version": "2023-06-01"}),
    "gemini": (lambda root: f"{root}/v1beta", {}),
    "bedrock": (lambda root: root, {"region": "us-east-1"}),
}
SERVED = [k for k in KINDS if _kind(k) in KNOWN_KINDS]
MODEL = ModelSpec(
    "sim-model",
    "p",
    "sim-model",
    Price(),
    2_000,
    512,
    frozenset({Capability.TOOLS, Capability.VISION, Capability.JSON_MODE}),
)


def request(text: str = "Say something useful.", **changes: Any) -> ChatRequest:
    base = ChatRequest(
        messages=(Message(Role.SYSTEM, (TextPart("Be brief."),)), Message(Role.USER, (TextPart(text),))),
        params=GenerationParams(max_output_tokens=64),
        request_id="conf",
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    profile = ModelProfile(
        ttft_ms=1, tokens_per_second=10_000, jitter=0, tail_probability=0, context_window=2_000
    )
    sim = await start_simulator(SimulatorConfig(time_scale=0.0, default_profile=profile), "127.0.0.1", 0)
    yield sim
    await sim.close()


@pytest.fixture(params=SERVED)
async def adapter(request: pytest.FixtureRequest, simulator: Simulator) -> AsyncIterator[ProviderAdapter]:
    base, options = KINDS[request.param]
    spec = ProviderSpec(
        "p",
        _kind(request.param),
        base(simulator.root_url),
        api_key=Secret(KEY),
        options=tuple(sorted(options.items())),
    )
    session = make_session()
    yield build_adapter(spec, session)
    await session.close()


async def inject(sim: Simulator, **fault: Any) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.root_url}/_sim/faults", json=fault) as response,
    ):
        assert response.status == 201, await response.text()


def call(req: ChatRequest | None = None) -> ProviderCall:
    return ProviderCall(req or request(), MODEL, 10.0)


async def collect(adapter: ProviderAdapter, req: ChatRequest | None = None) -> list[StreamChunk]:
    return [chunk async for chunk in adapter.stream(call(req))]


async def test_plain_text_with_usage(adapter):
    completion = await adapter.complete(call())
    assert completion.text.strip()
    assert completion.finish_reason is FinishReason.STOP
    assert completion.usage.input_tokens > 0
    assert completion.usage.output_tokens > 0


async def test_streaming_adds_up_and_ends_with_finish_and_usage(adapter):
    chunks = await collect(adapter)
    text = "".join(c.text for c in chunks)
    assert text.strip()
    assert len([c for c in chunks if c.text]) > 1
    final = chunks[-1]
    assert final.finish_reason is FinishReason.STOP
    assert final.usage is not None
    assert final.usage.output_tokens > 0


async def test_length_limit(adapter):
    completion = await adapter.complete(
        call(request("Write a long essay.", params=GenerationParams(max_output_tokens=3)))
    )
    assert completion.finish_reason is FinishReason.LENGTH


TOOL = Tool(
    "lookup_order",
    "Find an order by id",
    {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]},
)


async def test_tool_call(adapter):
    req = request("Where is order 42?", tools=(TOOL,), tool_choice=ToolChoice(ToolChoiceMode.REQUIRED))
    completion = await adapter.complete(call(req))
    assert completion.finish_reason is FinishReason.TOOL_CALLS
    (tool_call,) = completion.tool_calls
    assert tool_call.name == "lookup_order"
    assert "order_id" in json.loads(tool_call.arguments_json)


async def test_tool_call_streamed(adapter):
    req = request("Where is order 42?", tools=(TOOL,), tool_choice=ToolChoice(ToolChoiceMode.REQUIRED))
    chunks = await collect(adapter, req)
    args = "".join(d.arguments_json for c in chunks for d in c.tool_calls)
    names = {d.name for c in chunks for d in c.tool_calls if d.name}
    assert names == {"lookup_order"}
    assert "order_id" in json.loads(args)
    assert chunks[-1].finish_reason is FinishReason.TOOL_CALLS


SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}, "score": {"type": "number"}},
    "required": ["label", "score"],
}


async def test_json_schema_output(adapter):
    req = request(
        "Classify: 'win money'",
        response_format=ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "verdict", SCHEMA),
    )
    completion = await adapter.complete(call(req))
    jsonschema.validate(json.loads(completion.text), SCHEMA)


async def test_images_are_accepted(adapter):
    image = Message(
        Role.USER, (TextPart("What is this?"), ImagePart(data=b"\x89PNG\r\n", media_type="image/png"))
    )
    completion = await adapter.complete(call(request(messages=(image,))))
    assert completion.text.strip()


@pytest.mark.parametrize(
    ("fault", "failure"),
    [
        ({"kind": "rate_limit", "retry_after_s": 3}, FailureClass.RATE_LIMITED),
        ({"kind": "server_error"}, FailureClass.SERVER_ERROR),
        ({"kind": "overloaded"}, FailureClass.OVERLOADED),
        ({"kind": "malformed_json"}, FailureClass.MALFORMED_RESPONSE),
    ],
)
async def test_error_classes(adapter, simulator, fault, failure):
    await inject(simulator, model="*", count=1, **fault)
    with pytest.raises(ProviderError) as info:
        await adapter.complete(call())
    assert info.value.failure_class is failure
    if failure is FailureClass.RATE_LIMITED:
        assert info.value.retry_after_s == pytest.approx(3, abs=0.01)
    assert_no_key(KEY, str(info.value), repr(info.value))


async def test_context_too_long(adapter):
    with pytest.raises(ProviderError) as info:
        await adapter.complete(call(request("word " * 5_000)))
    assert info.value.failure_class is FailureClass.CONTEXT_TOO_LONG


async def test_a_stream_cut_is_interrupted(adapter, simulator):
    await inject(simulator, model="*", kind="stream_cut", count=1, after_chunks=2)
    with pytest.raises(ProviderError) as info:
        await collect(adapter)
    assert info.value.failure_class in {FailureClass.STREAM_INTERRUPTED, FailureClass.CONNECTION}


async def test_the_key_never_shows(adapter):
    assert KEY not in repr(adapter)
    assert KEY not in str(adapter)


@pytest.mark.parametrize("kind", SERVED)
async def test_auth_with_each_wire_formats_key_header(kind):
    sim = await start_simulator(SimulatorConfig(time_scale=0.0, api_key=KEY), "127.0.0.1", 0)
    session = make_session()
    try:
        base, options = KINDS[kind]
        for key, ok in ((KEY, True), ("sk-wrong-key-0000", False)):
            spec = ProviderSpec(
                "p", _kind(kind), base(sim.root_url), api_key=Secret(key), options=tuple(options.items())
            )
            adapter = build_adapter(spec, session)
            if ok:
                assert (await adapter.complete(call())).text
            else:
                with pytest.raises(ProviderError) as info:
                    await adapter.complete(call())
                assert info.value.failure_class is FailureClass.AUTH
                # the simulator echoes the head of a wrong key, as OpenAI does
                assert_no_key("sk-wrong-key-0000", str(info.value), repr(info.value))
    finally:
        await session.close()
        await sim.close()
