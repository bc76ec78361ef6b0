"""Fixtures: an instant simulator (time_scale 0) on 127.0.0.1, an OpenAI SDK client and a raw HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest
from turnout_simulator import ModelProfile, Simulator, SimulatorConfig, start_simulator

MakeSim = Callable[..., Awaitable[Simulator]]

SMALL = ModelProfile(context_window=200, max_output_tokens=100, default_output_tokens=20)


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """Start simulators with config overrides (time_scale defaults to 0); all are closed afterwards."""
    started: list[Simulator] = []

    async def make(**overrides: Any) -> Simulator:
        settings: dict[str, Any] = {"time_scale": 0.0, "models": {"tiny": SMALL}, **overrides}
        simulator = await start_simulator(SimulatorConfig.model_validate(settings))
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        await simulator.close()


@pytest.fixture
async def sim(make_sim: MakeSim) -> Simulator:
    return await make_sim()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session
