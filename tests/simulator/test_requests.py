"""Request checks, auth and determinism: bad bodies get OpenAI's 400s, and answers depend only on input."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import pytest
from turnout_simulator import Simulator

from .conftest import MakeSim
from .helpers import chat_body


async def post(http: aiohttp.ClientSession, sim: Simulator, body: Any, **kwargs: Any) -> tuple[int, Any]:
    async with http.post(f"{sim.base_url}/chat/completions", json=body, **kwargs) as response:
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("body", "param", "expected"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model", "you must provide a model parameter"),
        ({"model": 3, "messages": [{"role": "user", "content": "hi"}]}, "model", "not a valid model name"),
        ({"model": "gpt-4o"}, "messages", "Missing required parameter: 'messages'."),
        ({"model": "gpt-4o", "messages": []}, "messages", "[] is too short - 'messages'"),
        ({"model": "gpt-4o", "messages": "hi"}, "messages", "is not of type 'array'"),
        ({"model": "gpt-4o", "messages": ["hi"]}, "messages[0]", "expected an object"),
        ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "'robot'"),
        ({"model": "gpt-4o", "messages": [{"role": "user"}]}, "messages[0].content", "Missing required"),
        (chat_body(max_tokens=0), "max_tokens", "Expected a value >= 1"),
        (chat_body(max_tokens=10**6), "max_tokens", "max_tokens is too large: 1000000"),
        (chat_body(n=2), "n", "n=1"),
        (chat_body(tools=[{"type": "function"}]), "tools[0]", "function.name"),
        (chat_body(tool_choice={"type": "function", "function": {"name": "x"}}), "tool_choice", "'x'"),
        (chat_body(logprobs="yes"), "logprobs", "Invalid type for 'logprobs': expected a boolean"),
        (chat_body(logprobs=1), "logprobs", "but got int instead"),
    ],
)
async def test_bad_requests_get_openai_400s(
    http: aiohttp.ClientSession, sim: Simulator, body: Any, param: str, expected: str
) -> None:
    status, payload = await post(http, sim, body)

    assert status == 400
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert expected in error["message"]


async def test_body_that_is_not_json(http: aiohttp.ClientSession, sim: Simulator) -> None:
    async with http.post(f"{sim.base_url}/chat/completions", data=b"{oops") as response:
        assert response.status == 400
        assert (await response.json())["error"]["type"] == "invalid_request_error"


async def test_bad_requests_are_not_counted_and_do_not_use_up_faults(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    async with http.post(f"{sim.root_url}/_sim/faults", json={"kind": "server_error", "count": 1}):
        pass
    status, _ = await post(http, sim, {"model": "gpt-4o", "messages": []})
    assert status == 400
    status, _ = await post(http, sim, chat_body())
    assert status == 500


async def test_context_length_exceeded(http: aiohttp.ClientSession, sim: Simulator) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "word " * 200}], "max_tokens": 50}

    status, payload = await post(http, sim, body)

    assert status == 400
    error = payload["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert error["message"].startswith("This model's maximum context length is 200 tokens. However, your ")
    assert "and 50 in the completion" in error["message"]


async def test_context_counts_requested_output_tokens(http: aiohttp.ClientSession, sim: Simulator) -> None:
    fits = {"model": "tiny", "messages": [{"role": "user", "content": "x" * 400}]}

    assert (await post(http, sim, fits))[0] == 200
    assert (await post(http, sim, {**fits, "max_tokens": 100}))[0] == 400


async def test_images_count_85_tokens(http: aiohttp.ClientSession, sim: Simulator) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    body = chat_body(messages=[{"role": "user", "content": [{"type": "text", "text": "abcd"}, image]}])

    status, payload = await post(http, sim, body)

    assert status == 200
    assert payload["usage"]["prompt_tokens"] == 3 + 3 + 1 + 85  # priming + message + text + image


async def test_api_key_is_required_when_configured(make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
    sim = await make_sim(api_key="sk-right")

    status, missing = await post(http, sim, chat_body())
    assert status == 401
    assert "didn't provide an API key" in missing["error"]["message"]

    status, wrong = await post(http, sim, chat_body(), headers={"Authorization": "Bearer sk-wrong"})
    assert status == 401
    assert wrong["error"]["code"] == "invalid_api_key"

    status, _ = await post(http, sim, chat_body(), headers={"Authorization": "Bearer sk-right"})
    assert status == 200
    async with http.get(f"{sim.root_url}/_sim/stats") as admin:
        assert admin.status == 200  # the admin API is not guarded

    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(**chat_body())


async def test_unknown_routes_get_openai_style_404(http: aiohttp.ClientSession, sim: Simulator) -> None:
    async with http.post(f"{sim.base_url}/completions", json={}) as response:
        assert response.status == 404
        assert (await response.json())["error"]["message"] == "Invalid URL (POST /v1/completions)"


async def test_same_seed_same_answer_and_other_seed_other_answer(
    make_sim: MakeSim, http: aiohttp.ClientSession
) -> None:
    first, second, other = await make_sim(seed=11), await make_sim(seed=11), await make_sim(seed=12)
    body = chat_body(messages=[{"role": "user", "content": "Determinism, please."}])
    schema_body = chat_body(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    )

    answers = []
    for sim in (first, second, other):
        _, payload = await post(http, sim, body)
        answers.append(payload["choices"][0]["message"]["content"])
    assert answers[0] == answers[1]
    assert answers[0] != answers[2]
    _, again = await post(http, first, body)  # request order does not matter either
    assert again["choices"][0]["message"]["content"] == answers[0]

    schema_answers = [(await post(http, sim, schema_body))[1] for sim in (first, second)]
    assert schema_answers[0]["choices"] == schema_answers[1]["choices"]
