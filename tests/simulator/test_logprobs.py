"""Token logprobs through the real openai SDK: one entry per output token, seeded, per model's confidence."""

from __future__ import annotations

import math
import statistics
from typing import Any

import openai
import pytest
from turnout_simulator import Simulator

from .conftest import MakeSim
from .test_openai_sdk import MESSAGES, WEATHER_TOOL

PROFILES = {"strong": {"confidence": -0.05}, "weak": {"confidence": -0.6}, "default": {}}


def sdk(sim: Simulator) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0)


async def mean_logprob(
    client: openai.AsyncOpenAI, model: str, content: str = "Tell me about routing."
) -> float:
    messages: Any = [{"role": "user", "content": content}]
    completion = await client.chat.completions.create(model=model, messages=messages, logprobs=True)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    return statistics.fmean(entry.logprob for entry in logprobs.content)


async def test_every_output_token_has_an_openai_shaped_entry(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)

    choice = completion.choices[0]
    assert choice.logprobs is not None
    assert choice.logprobs.refusal is None
    entries = choice.logprobs.content
    assert entries is not None
    assert "".join(entry.token for entry in entries) == choice.message.content
    assert completion.usage is not None
    assert len(entries) == completion.usage.completion_tokens
    for entry in entries:
        assert entry.logprob <= 0.0
        assert entry.bytes == list(entry.token.encode())
        assert entry.top_logprobs == []


async def test_asking_for_logprobs_does_not_change_the_answer(client: openai.AsyncOpenAI) -> None:
    plain = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    with_logprobs = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)

    assert plain.choices[0].logprobs is None
    assert with_logprobs.choices[0].message.content == plain.choices[0].message.content


async def test_logprobs_are_seeded(make_sim: MakeSim) -> None:
    first, again = await make_sim(seed=11), await make_sim(seed=11)
    other_seed = await make_sim(seed=12)
    async with sdk(first) as a, sdk(again) as b, sdk(other_seed) as c:
        means = [await mean_logprob(client, "gpt-4o") for client in (a, a, b, c)]

    assert means[0] == means[1] == means[2]
    assert means[3] != means[0]


async def test_the_mean_follows_each_models_confidence(make_sim: MakeSim) -> None:
    sim = await make_sim(models=PROFILES)
    prompts = [f"Question number {i}?" for i in range(8)]
    async with sdk(sim) as client:
        means = {
            model: statistics.fmean([await mean_logprob(client, model, prompt) for prompt in prompts])
            for model in PROFILES
        }
        one_strong, one_weak = await mean_logprob(client, "strong"), await mean_logprob(client, "weak")

    assert means["strong"] == pytest.approx(-0.05, abs=0.01)
    assert means["weak"] == pytest.approx(-0.6, abs=0.1)
    assert means["default"] == pytest.approx(-0.2, abs=0.03)  # ModelProfile's default confidence
    assert one_strong > -0.1 > -0.4 > one_weak > -0.9  # a single answer already tells them apart


async def test_streamed_logprobs_add_up_to_the_whole_answers(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, logprobs=True, stream=True
    )
    chunks = [chunk async for chunk in stream]

    streamed = []
    for chunk in chunks:
        choice = chunk.choices[0]
        if choice.delta.content:
            assert choice.logprobs is not None
            assert choice.logprobs.content is not None
            assert "".join(entry.token for entry in choice.logprobs.content) == choice.delta.content
            streamed.extend(choice.logprobs.content)
        else:
            assert choice.logprobs is None  # the role chunk and the finish chunk carry no tokens
    assert whole.choices[0].logprobs is not None
    assert streamed == whole.choices[0].logprobs.content


async def test_the_sdks_stream_helper_collects_them(client: openai.AsyncOpenAI) -> None:
    whole = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)
    async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES, logprobs=True) as stream:
        final = await stream.get_final_completion()

    assert final.choices[0].logprobs is not None
    assert whole.choices[0].logprobs is not None
    assert final.choices[0].logprobs.content == whole.choices[0].logprobs.content


async def test_a_tool_call_has_no_content_logprobs(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], logprobs=True
    )

    assert completion.choices[0].message.tool_calls
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert (logprobs.content, logprobs.refusal) == (None, None)


async def test_logprobs_false_is_the_default(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=False)

    assert completion.choices[0].logprobs is None


async def test_top_logprobs_list_the_chosen_token_first_then_less_likely_rivals(
    client: openai.AsyncOpenAI,
) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, logprobs=True, top_logprobs=4
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content
    for entry in logprobs.content:
        top = entry.top_logprobs
        assert top[0].token == entry.token
        assert len({t.token for t in top}) == 4
        assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
        assert sum(math.exp(t.logprob) for t in top) <= 1.0 + 1e-6
        assert all(t.bytes == list(t.token.encode()) for t in top)
    streamed = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, logprobs=True, top_logprobs=4, stream=True
    )
    entries = []
    async for chunk in streamed:
        if chunk.choices and chunk.choices[0].logprobs is not None:
            entries.extend(chunk.choices[0].logprobs.content or [])
    assert [(e.token, [t.token for t in e.top_logprobs]) for e in entries] == [
        (e.token, [t.token for t in e.top_logprobs]) for e in logprobs.content
    ]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"top_logprobs": 2}, "'logprobs' must be set to 'true'"),
        ({"logprobs": True, "top_logprobs": 21}, "Expected a value <= 20"),
        ({"logprobs": True, "top_logprobs": -1}, "Expected a value >= 0"),
        ({"logprobs": True, "top_logprobs": "3"}, "expected an integer"),
    ],
)
async def test_bad_top_logprobs_are_refused_as_openai_does(
    client: openai.AsyncOpenAI, extra: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=fragment):
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, extra_body=extra)
