"""Every fault kind, armed through the admin API, as a client sees it on the wire."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import openai
import pytest
from turnout_simulator import Simulator

from .conftest import MakeSim
from .helpers import add_fault, chat_body, parse_chunks, read_sse, read_until_cut, stats


async def post_chat(http: aiohttp.ClientSession, sim: Simulator, **extra: object) -> aiohttp.ClientResponse:
    return await http.post(f"{sim.base_url}/chat/completions", json=chat_body(**extra))


async def test_rate_limit_sends_retry_after_headers_and_openai_body(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    await add_fault(http, sim, kind="rate_limit", count=1, retry_after_s=2.5)

    async with await post_chat(http, sim) as limited:
        assert limited.status == 429
        assert limited.headers["Retry-After"] == "3"
        assert limited.headers["retry-after-ms"] == "2500"
        error = (await limited.json())["error"]
        assert error["type"] == "rate_limit_exceeded"
        assert error["code"] == "rate_limit_exceeded"
        assert "gpt-4o" in error["message"]
    async with await post_chat(http, sim) as after:
        assert after.status == 200


async def test_rate_limit_surfaces_as_the_sdks_rate_limit_error(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, model="gpt-4o", kind="rate_limit", count=1)

    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(**chat_body())

    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(("kind", "status"), [("server_error", 500), ("overloaded", 503)])
async def test_error_statuses(http: aiohttp.ClientSession, sim: Simulator, kind: str, status: int) -> None:
    await add_fault(http, sim, kind=kind, count=1)

    async with await post_chat(http, sim, stream=True) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        assert (await response.json())["error"]["type"] == "server_error"


async def test_count_faults_expire_after_n_and_fire_in_order(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    await add_fault(http, sim, kind="server_error", count=2)
    await add_fault(http, sim, kind="overloaded", count=1)

    statuses = []
    for _ in range(5):
        async with await post_chat(http, sim) as response:
            statuses.append(response.status)

    assert statuses == [500, 500, 503, 200, 200]
    counters = await stats(http, sim)
    assert counters["faults"] == {"server_error": 2, "overloaded": 1}
    assert counters["requests"] == {"gpt-4o": 5}


async def test_a_fault_for_one_model_spares_the_others(http: aiohttp.ClientSession, sim: Simulator) -> None:
    await add_fault(http, sim, model="gpt-4o-mini", kind="server_error", rate=1.0)

    async with await post_chat(http, sim) as spared:
        assert spared.status == 200
    async with await post_chat(http, sim, model="gpt-4o-mini") as hit:
        assert hit.status == 500


async def test_delete_clears_runtime_faults(http: aiohttp.ClientSession, sim: Simulator) -> None:
    await add_fault(http, sim, kind="server_error", rate=1.0)
    async with http.delete(f"{sim.root_url}/_sim/faults") as cleared:
        assert await cleared.json() == {"cleared": 1}

    async with await post_chat(http, sim) as response:
        assert response.status == 200


async def test_malformed_json_whole_body(http: aiohttp.ClientSession, sim: Simulator) -> None:
    await add_fault(http, sim, kind="malformed_json", count=1)

    async with await post_chat(http, sim) as response:
        assert response.status == 200
        text = await response.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_malformed_json_in_a_stream(http: aiohttp.ClientSession, sim: Simulator) -> None:
    await add_fault(http, sim, kind="malformed_json", count=1)

    async with await post_chat(http, sim, stream=True) as response:
        assert response.status == 200
        payloads = await read_sse(response)
    json.loads(payloads[0])
    with pytest.raises(json.JSONDecodeError):
        json.loads(payloads[1])


async def test_stream_cut_closes_without_done_or_finish_reason(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    await add_fault(http, sim, kind="stream_cut", count=1, after_chunks=3)

    async with await post_chat(http, sim, stream=True) as response:
        assert response.status == 200
        payloads, error = await read_until_cut(response)

    assert isinstance(error, aiohttp.ClientPayloadError)

    assert len(payloads) == 3
    assert "[DONE]" not in payloads
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in parse_chunks(payloads))


async def test_stream_cut_beyond_the_end_still_withholds_the_finish(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    await add_fault(http, sim, kind="stream_cut", count=1, after_chunks=10_000)

    async with await post_chat(http, sim, stream=True) as response:
        payloads, error = await read_until_cut(response)

    assert isinstance(error, aiohttp.ClientPayloadError)
    assert len(payloads) > 3
    assert "[DONE]" not in payloads
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in parse_chunks(payloads))


async def test_stream_cut_on_a_whole_body_closes_mid_body(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    await add_fault(http, sim, kind="stream_cut", count=1)

    async with await post_chat(http, sim) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_hang_times_the_client_out_and_frees_the_handler(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    await add_fault(http, sim, kind="hang", count=1)

    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0, timeout=0.2) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(**chat_body())

    for _ in range(50):  # the client hung up: aiohttp cancels the parked handler
        if (await stats(http, sim))["hanging"] == 0:
            break
        await asyncio.sleep(0.01)
    assert (await stats(http, sim))["hanging"] == 0
    assert (await stats(http, sim))["faults"] == {"hang": 1}


async def test_close_is_prompt_with_hung_requests_in_flight(
    make_sim: MakeSim, http: aiohttp.ClientSession
) -> None:
    sim = await make_sim()
    await add_fault(http, sim, kind="hang", rate=1.0)

    async def attempt() -> int | Exception:
        try:
            async with http.post(f"{sim.base_url}/chat/completions", json=chat_body()) as response:
                return response.status
        except aiohttp.ClientConnectionError as exc:
            return exc

    async with asyncio.TaskGroup() as group:
        hung = [group.create_task(attempt()) for _ in range(3)]
        for _ in range(100):
            if len(sim.state.hangs) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(sim.state.hangs) == 3

        started = time.monotonic()
        await sim.close()
        assert time.monotonic() - started < 0.5

    for task in hung:
        assert isinstance(task.result(), aiohttp.ServerDisconnectedError)


async def test_slow_multiplies_latency(make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
    sim = await make_sim(time_scale=0.001)  # ~0.3 ms to first token by default
    await add_fault(http, sim, kind="slow", count=1, factor=400.0)

    started = time.monotonic()
    async with await post_chat(http, sim, max_tokens=1) as response:
        assert response.status == 200
    slow = time.monotonic() - started
    started = time.monotonic()
    async with await post_chat(http, sim, max_tokens=1) as response:
        assert response.status == 200
    fast = time.monotonic() - started

    assert slow > 0.05
    assert fast < slow
    assert (await stats(http, sim))["faults"] == {"slow": 1}


async def test_standing_faults_from_the_profile(make_sim: MakeSim, http: aiohttp.ClientSession) -> None:
    sim = await make_sim(models={"flaky": {"faults": [{"kind": "overloaded", "count": 1}]}})

    async with await post_chat(http, sim, model="flaky") as first:
        assert first.status == 503
    async with await post_chat(http, sim, model="flaky") as second:
        assert second.status == 200
    async with await post_chat(http, sim, model="other") as unaffected:
        assert unaffected.status == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"kind": "explode", "count": 1}, "kind: Input should be"),
        ({"kind": "hang"}, "give exactly one of 'count'"),
        ({"kind": "hang", "count": 1, "rate": 0.5}, "give exactly one of 'count'"),
        ({"kind": "hang", "count": 0}, "count: Input should be greater than or equal to 1"),
        ({"kind": "hang", "rate": 2}, "rate: Input should be less than or equal to 1"),
        ({"kind": "hang", "count": 1, "color": "red"}, "color: Extra inputs are not permitted"),
        ([1, 2], "must be a JSON object"),
    ],
)
async def test_bad_fault_bodies_get_a_clear_400(
    http: aiohttp.ClientSession, sim: Simulator, body: object, expected: str
) -> None:
    async with http.post(f"{sim.root_url}/_sim/faults", json=body) as response:
        assert response.status == 400
        assert expected in (await response.json())["error"]["message"]


async def test_fault_body_that_is_not_json(http: aiohttp.ClientSession, sim: Simulator) -> None:
    async with http.post(f"{sim.root_url}/_sim/faults", data=b"{nope") as response:
        assert response.status == 400
        assert "could not parse the JSON body" in (await response.json())["error"]["message"]


async def test_listing_and_stats_reset(http: aiohttp.ClientSession, sim: Simulator) -> None:
    await add_fault(http, sim, kind="rate_limit", count=2)
    async with http.get(f"{sim.root_url}/_sim/faults") as listed:
        listing = await listed.json()
    assert listing["runtime"][0]["remaining"] == 2
    async with await post_chat(http, sim):
        pass

    async with http.delete(f"{sim.root_url}/_sim/stats") as reset:
        assert reset.status == 200
    assert await stats(http, sim) == {"requests": {}, "faults": {}, "hanging": 0}


async def test_stream_cut_surfaces_as_the_sdks_connection_error(
    http: aiohttp.ClientSession, sim: Simulator, client: openai.AsyncOpenAI
) -> None:
    await add_fault(http, sim, kind="stream_cut", count=1)
    stream = await client.chat.completions.create(**chat_body(), stream=True)

    async def drain() -> None:
        async for _ in stream:
            pass

    with pytest.raises(openai.APIConnectionError):
        await drain()
