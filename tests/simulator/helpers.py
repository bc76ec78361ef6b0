"""Small helpers shared by the simulator tests: request bodies, admin calls and SSE reading."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from turnout_simulator import Simulator


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}], **extra}


async def add_fault(http: aiohttp.ClientSession, sim: Simulator, **fault: Any) -> None:
    async with http.post(f"{sim.root_url}/_sim/faults", json=fault) as response:
        assert response.status == 201, await response.text()


async def stats(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, Any]:
    async with http.get(f"{sim.root_url}/_sim/stats") as response:
        body: dict[str, Any] = await response.json()
        return body


async def read_sse(response: aiohttp.ClientResponse) -> list[str]:
    """The payloads of every `data:` line, in order, until the body ends."""
    payloads = []
    async for raw in response.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            payloads.append(line.removeprefix("data: "))
    return payloads


def parse_chunks(payloads: list[str]) -> list[dict[str, Any]]:
    return [json.loads(payload) for payload in payloads if payload != "[DONE]"]


async def read_until_cut(response: aiohttp.ClientResponse) -> tuple[list[str], Exception | None]:
    """Every `data:` payload received, and the payload error that ended the body (None if it ended well)."""
    payloads: list[str] = []
    try:
        async for raw in response.content:
            if raw.startswith(b"data: "):
                payloads.append(raw.decode().strip().removeprefix("data: "))
    except aiohttp.ClientPayloadError as exc:
        return payloads, exc
    return payloads, None
