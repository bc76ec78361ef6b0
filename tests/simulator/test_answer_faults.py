"""The faults in the answer itself (refusal, bad_output, low_confidence), as the openai SDK sees them.

Each is a 200 that a cascade escalates on: the model declines, breaks the requested format, or is
unsure of what it wrote.
"""

from __future__ import annotations

import json
import statistics
from typing import Any

import aiohttp
import jsonschema
import openai
import pydantic
import pytest
from turnout_simulator import Simulator

from .conftest import MakeSim
from .helpers import add_fault, stats
from .test_openai_sdk import MESSAGES, REPORT_SCHEMA, WEATHER_TOOL, Person

REFUSAL = "I can't help with that."
REPORT_FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "report", "schema": REPORT_SCHEMA}}


async def streamed(client: openai.AsyncOpenAI, **request: Any) -> list[Any]:
    stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, **request)
    return [chunk async for chunk in stream]


# ------------------------------------------------------------------------------------------ refusal


async def test_refusal(http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI) -> None:
    await add_fault(http, sim, kind="refusal", count=1)

    refused = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    after = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    choice = refused.choices[0]
    assert (choice.message.content, choice.message.refusal, choice.finish_reason) == (None, REFUSAL, "stop")
    assert choice.message.tool_calls is None
    assert refused.usage is not None
    assert refused.usage.completion_tokens == len(REFUSAL.split())
    assert after.choices[0].message.content
    assert after.choices[0].message.refusal is None
    assert (await stats(http, sim))["faults"] == {"refusal": 1}


async def test_refusal_streamed(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="refusal", count=1)

    chunks = await streamed(client, stream_options={"include_usage": True})

    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    assert deltas[0].role == "assistant"
    fragments = [delta.refusal for delta in deltas[1:] if delta.refusal]
    assert len(fragments) > 1
    assert "".join(fragments) == REFUSAL
    assert not any(delta.content for delta in deltas)
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(REFUSAL.split())


async def test_refusal_through_the_sdks_stream_helper_and_parse(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="refusal", count=2)

    async with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        final = await stream.get_final_completion()
    parsed = await client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Person)

    assert final.choices[0].message.refusal == REFUSAL
    assert parsed.choices[0].message.refusal == REFUSAL
    assert parsed.choices[0].message.parsed is None


async def test_refusal_wins_over_a_tool_call_and_carries_refusal_logprobs(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="refusal", count=2)

    whole = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], logprobs=True
    )
    chunks = await streamed(client, logprobs=True)

    choice = whole.choices[0]
    assert (choice.message.refusal, choice.message.tool_calls, choice.finish_reason) == (
        REFUSAL,
        None,
        "stop",
    )
    assert choice.logprobs is not None
    assert choice.logprobs.content is None
    assert choice.logprobs.refusal is not None
    assert "".join(entry.token for entry in choice.logprobs.refusal) == REFUSAL
    streamed_entries = [
        entry
        for chunk in chunks
        if chunk.choices[0].logprobs
        for entry in chunk.choices[0].logprobs.refusal or []
    ]
    assert "".join(entry.token for entry in streamed_entries) == REFUSAL


async def test_refusal_as_a_standing_fault(make_sim: MakeSim) -> None:
    sim = await make_sim(models={"prude": {"faults": [{"kind": "refusal", "rate": 1.0}]}})
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as client:
        prude = await client.chat.completions.create(model="prude", messages=MESSAGES)
        other = await client.chat.completions.create(model="other", messages=MESSAGES)

    assert prude.choices[0].message.refusal == REFUSAL
    assert other.choices[0].message.refusal is None


# --------------------------------------------------------------------------------------- bad_output


async def test_bad_output_breaks_the_json_schema(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="bad_output", count=1)

    bad = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, response_format=REPORT_FORMAT
    )
    good = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, response_format=REPORT_FORMAT
    )

    assert bad.choices[0].finish_reason == "stop"
    value = json.loads(bad.choices[0].message.content or "")  # syntactically valid ...
    with pytest.raises(jsonschema.ValidationError, match="'title' is a required property"):
        jsonschema.validate(value, REPORT_SCHEMA)  # ... but not what was asked for
    jsonschema.validate(json.loads(good.choices[0].message.content or ""), REPORT_SCHEMA)
    assert (await stats(http, sim))["faults"] == {"bad_output": 1}


async def test_bad_output_streamed(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="bad_output", count=1)

    chunks = await streamed(client, response_format=REPORT_FORMAT)

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(json.loads(text), REPORT_SCHEMA)


async def test_bad_output_without_required_properties_has_the_wrong_type(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"city": {"type": "string"}}}
    place: Any = {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}
    await add_fault(http, sim, kind="bad_output", count=1)

    completion = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, response_format=place
    )

    value = json.loads(completion.choices[0].message.content or "")
    assert isinstance(value, list)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, schema)


async def test_bad_output_fails_the_sdks_parse(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="bad_output", count=1)

    with pytest.raises(pydantic.ValidationError):
        await client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Person)


@pytest.mark.parametrize("stream", [False, True])
async def test_bad_output_for_json_object_is_an_array(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI, stream: bool
) -> None:
    await add_fault(http, sim, kind="bad_output", count=1)
    json_object: Any = {"type": "json_object"}

    if stream:
        chunks = await streamed(client, response_format=json_object)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    else:
        completion = await client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, response_format=json_object
        )
        text = completion.choices[0].message.content or ""

    assert isinstance(json.loads(text), list)


async def test_bad_output_without_a_json_format_is_plain_text(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="bad_output", count=1)

    completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    text = completion.choices[0].message.content or ""
    assert text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_bad_output_breaks_tool_arguments_too(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="bad_output", count=1)

    completion = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])

    calls: Any = completion.choices[0].message.tool_calls
    arguments = json.loads(calls[0].function.arguments)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(arguments, WEATHER_TOOL["function"]["parameters"])


# ----------------------------------------------------------------------------------- low_confidence


def mean_of(entries: Any) -> float:
    assert entries
    return statistics.fmean(entry.logprob for entry in entries)


async def test_low_confidence(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="low_confidence", count=1)

    unsure = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)
    sure = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, logprobs=True)

    assert unsure.choices[0].logprobs is not None
    assert sure.choices[0].logprobs is not None
    assert mean_of(unsure.choices[0].logprobs.content) == pytest.approx(-2.5, abs=0.4)
    assert mean_of(sure.choices[0].logprobs.content) == pytest.approx(-0.2, abs=0.05)
    assert unsure.choices[0].message.content == sure.choices[0].message.content  # only the confidence moved
    assert (await stats(http, sim))["faults"] == {"low_confidence": 1}


async def test_low_confidence_streamed_with_its_own_mean(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="low_confidence", count=1, mean_logprob=-4.0)

    chunks = await streamed(client, logprobs=True)

    entries = [
        entry for chunk in chunks if chunk.choices[0].logprobs for entry in chunk.choices[0].logprobs.content
    ]
    assert mean_of(entries) == pytest.approx(-4.0, abs=0.6)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_low_confidence_without_logprobs_changes_nothing_visible(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    plain = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    await add_fault(http, sim, kind="low_confidence", count=1)

    hit = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert hit.choices[0].logprobs is None
    assert hit.choices[0].message.content == plain.choices[0].message.content
    assert (await stats(http, sim))["faults"] == {"low_confidence": 1}  # drawn all the same
