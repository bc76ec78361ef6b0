"""The cascade's signals end to end: OpenAIAdapter -> simulator and back, refusals and logprobs included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest
from turnout_simulator import Simulator, SimulatorConfig, start_simulator

from sidecar.domain.model import ModelSpec, Price, ProviderSpec
from sidecar.domain.request import ChatRequest, Message, ResponseFormat, ResponseFormatKind, Role, TextPart
from sidecar.domain.response import FinishReason, StreamChunk
from sidecar.providers.base import ProviderCall
from sidecar.providers.openai import OpenAIAdapter
from sidecar.providers.session import make_session

REFUSAL = "I can't help with that."
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"enum": ["spam", "ham"]}, "score": {"type": "number"}},
    "required": ["label", "score"],
}
REQUEST = ChatRequest(messages=(Message(Role.USER, (TextPart("Spam or ham: 'You won!'"),)),))


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = SimulatorConfig.model_validate(
        {"time_scale": 0.0, "models": {"strong": {"confidence": -0.05}, "weak": {"confidence": -0.6}}}
    )
    simulator = await start_simulator(config)
    yield simulator
    await simulator.close()


@pytest.fixture
async def adapter(sim: Simulator) -> AsyncIterator[OpenAIAdapter]:
    session = make_session()
    yield OpenAIAdapter(ProviderSpec(name="sim", kind="openai", base_url=sim.base_url), session)
    await session.close()


def call(model: str = "weak", request: ChatRequest = REQUEST, *, want_logprobs: bool = False) -> ProviderCall:
    spec = ModelSpec(
        name=model,
        provider="sim",
        upstream_model=model,
        price=Price(),
        context_window=128_000,
        max_output_tokens=4096,
        capabilities=frozenset(),
    )
    return ProviderCall(request, spec, timeout_s=5.0, want_logprobs=want_logprobs)


async def fault(sim: Simulator, **spec: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.root_url}/_sim/faults", json=spec) as response,
    ):
        assert response.status == 201


async def collect(adapter: OpenAIAdapter, provider_call: ProviderCall) -> list[StreamChunk]:
    return [chunk async for chunk in adapter.stream(provider_call)]


async def test_mean_logprob_only_when_wanted_and_per_model(adapter: OpenAIAdapter) -> None:
    plain = await adapter.complete(call("weak"))
    weak = await adapter.complete(call("weak", want_logprobs=True))
    strong = await adapter.complete(call("strong", want_logprobs=True))

    assert plain.mean_logprob is None
    assert weak.text == plain.text
    assert weak.mean_logprob == pytest.approx(-0.6, abs=0.2)
    assert strong.mean_logprob == pytest.approx(-0.05, abs=0.02)


async def test_streamed_logprobs_cover_every_output_token(adapter: OpenAIAdapter) -> None:
    whole = await adapter.complete(call(want_logprobs=True))
    chunks = await collect(adapter, call(want_logprobs=True))

    logprobs = [t.logprob for chunk in chunks for t in chunk.logprobs]
    assert len(logprobs) == whole.usage.output_tokens
    assert sum(logprobs) / len(logprobs) == pytest.approx(whole.mean_logprob)
    assert all(chunk.logprobs for chunk in chunks if chunk.text)


async def test_low_confidence(adapter: OpenAIAdapter, sim: Simulator) -> None:
    await fault(sim, kind="low_confidence", count=2)

    whole = await adapter.complete(call("strong", want_logprobs=True))
    chunks = await collect(adapter, call("strong", want_logprobs=True))

    assert whole.mean_logprob == pytest.approx(-2.5, abs=0.5)
    streamed = [t.logprob for chunk in chunks for t in chunk.logprobs]
    assert sum(streamed) / len(streamed) == pytest.approx(-2.5, abs=0.5)


async def test_refusal(adapter: OpenAIAdapter, sim: Simulator) -> None:
    await fault(sim, kind="refusal", count=2)

    whole = await adapter.complete(call(want_logprobs=True))
    chunks = await collect(adapter, call(want_logprobs=True))

    assert (whole.text, whole.refusal, whole.finish_reason) == ("", REFUSAL, FinishReason.STOP)
    assert whole.mean_logprob is None  # the refusal's tokens are not an answer's
    assert "".join(chunk.refusal for chunk in chunks) == REFUSAL
    assert not any(chunk.text or chunk.logprobs for chunk in chunks)
    assert chunks[-1].finish_reason is FinishReason.STOP


@pytest.mark.parametrize("stream", [False, True])
async def test_bad_output_does_not_match_the_schema(
    adapter: OpenAIAdapter, sim: Simulator, stream: bool
) -> None:
    await fault(sim, kind="bad_output", count=1)
    fmt = ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "verdict", SCHEMA, strict=True)
    request = ChatRequest(messages=REQUEST.messages, response_format=fmt)

    if stream:
        text = "".join(chunk.text for chunk in await collect(adapter, call(request=request)))
    else:
        text = (await adapter.complete(call(request=request))).text

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(text), SCHEMA)
    good = await adapter.complete(call(request=request))
    jsonschema.validate(json.loads(good.text), SCHEMA)
