"""Starting and stopping: addresses, health, idempotent close and serve_forever's clean exit."""

from __future__ import annotations

import asyncio
import os
import signal

import aiohttp
from turnout_simulator import Simulator, SimulatorConfig, serve_forever, start_simulator


async def test_base_url_and_health(sim: Simulator, http: aiohttp.ClientSession) -> None:
    assert sim.port > 0
    assert sim.base_url == f"http://127.0.0.1:{sim.port}/v1"
    async with http.get(f"{sim.root_url}/healthz") as response:
        assert await response.json() == {"status": "ok"}


async def test_close_twice_and_context_manager() -> None:
    async with await start_simulator(SimulatorConfig(time_scale=0)) as sim:
        port = sim.port
    await sim.close()

    async with aiohttp.ClientSession() as http:
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz"):
                raise AssertionError("still listening after close")
        except aiohttp.ClientConnectionError:
            pass


async def test_serve_forever_serves_until_stopped() -> None:
    stop = asyncio.Event()
    ready: list[Simulator] = []

    async with asyncio.TaskGroup() as group:
        serving = group.create_task(
            serve_forever(SimulatorConfig(time_scale=0), port=0, on_ready=ready.append, stop=stop)
        )
        for _ in range(100):
            if ready:
                break
            await asyncio.sleep(0.01)
        async with aiohttp.ClientSession() as http, http.get(f"{ready[0].root_url}/healthz") as response:
            assert response.status == 200
        stop.set()

    assert serving.done()
    assert serving.exception() is None


async def test_serve_forever_stops_on_sigterm() -> None:
    ready: list[Simulator] = []

    async with asyncio.TaskGroup() as group:
        serving = group.create_task(
            serve_forever(SimulatorConfig(time_scale=0), port=0, on_ready=ready.append)
        )
        for _ in range(100):
            if ready:
                break
            await asyncio.sleep(0.01)
        assert ready
        # serve_forever installed its handler before on_ready; never send SIGTERM to an unguarded process.
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        os.kill(os.getpid(), signal.SIGTERM)

    assert serving.exception() is None
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # handlers removed again
