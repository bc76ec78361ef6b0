"""Shared fixtures: an in-process simulator and sidecar on loopback, and a gRPC stub to call it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from turnout_simulator.config import load_simulator_config
from turnout_simulator.server import Simulator, start_simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import Config, parse_config
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "examples" / "turnout.yaml"
EXAMPLE_SIMULATOR = ROOT / "examples" / "simulator.yaml"


SIMULATOR_PATHS = {"gemini": "/v1beta"}  # every other kind the simulator serves under /v1


def point_at_simulator(raw: dict[str, Any], root_url: str) -> None:
    """Point every provider of a config at a simulator, each at the path of its wire format.

    The metrics endpoint moves to any free port too: tests run several sidecars side by side.
    """
    for provider in raw["providers"]:
        provider["base_url"] = root_url + SIMULATOR_PATHS.get(provider["kind"], "/v1")
    raw.setdefault("telemetry", {}).setdefault("prometheus", {})["port"] = 0


def example_config(base_url: str, **server: Any) -> Config:
    """The example config with every provider pointed at a test simulator (`base_url`: its /v1)."""
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, base_url.removesuffix("/v1"))
    raw["server"].update(server)
    return parse_config(raw, source=str(EXAMPLE_CONFIG), env={})


@contextlib.asynccontextmanager
async def serving(config: Config) -> AsyncIterator[pb_grpc.RouterServiceStub]:
    """A sidecar on a free loopback port with `config`, and a stub to call it; stopped after."""
    sidecar = Sidecar(config, ListenOverrides(host="127.0.0.1", port=0))
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            yield pb_grpc.RouterServiceStub(channel)
    finally:
        await sidecar.stop(grace_s=0)


async def inject_fault(sim: Simulator, **fault: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.root_url}/_sim/faults", json=fault) as response,
    ):
        assert response.status in (200, 201), await response.text()


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    config = load_simulator_config(EXAMPLE_SIMULATOR).model_copy(update={"time_scale": 0.01})
    sim = await start_simulator(config, "127.0.0.1", 0)
    yield sim
    await sim.close()


@pytest.fixture
async def sidecar(simulator: Simulator) -> AsyncIterator[Sidecar]:
    running = Sidecar(example_config(simulator.base_url), ListenOverrides(host="127.0.0.1", port=0))
    await running.start()
    yield running
    await running.stop(grace_s=0)


@pytest.fixture
async def channel(sidecar: Sidecar) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(sidecar.address) as ch:
        yield ch


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> pb_grpc.RouterServiceStub:
    return pb_grpc.RouterServiceStub(channel)
