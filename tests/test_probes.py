"""The HTTP probe listener (/livez, /readyz, /startupz) of a sidecar started in-process on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import grpc
import pytest
import yaml
from turnout_simulator.config import ModelProfile, SimulatorConfig
from turnout_simulator.server import Simulator, start_simulator

from sidecar.app import ListenOverrides, Sidecar, telemetry_options
from sidecar.config import TelemetrySettings
from sidecar.probes import Readiness
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLE_CONFIG, example_config, point_at_simulator
from tests.server.helpers import generate_request

# Every answer takes about a second, so that a request is surely in flight while the sidecar stops.
SLOW = ModelProfile(ttft_ms=1000, tokens_per_second=400, jitter=0.0, tail_probability=0.0)


async def get(url: str, method: str = "GET", **options: Any) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **options) as response:
        return response.status, await response.text(), dict(response.headers)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port some other socket listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


@pytest.fixture
async def probed(simulator: Simulator) -> AsyncIterator[Sidecar]:
    running = Sidecar(example_config(simulator.base_url, probe_port=0), ListenOverrides(port=0))
    await running.start()
    yield running
    await running.stop(grace_s=0)


def probe_url(sidecar: Sidecar) -> str:
    assert sidecar.probes is not None
    return sidecar.probes.url


async def test_probes_are_off_by_default(sidecar: Sidecar) -> None:
    assert sidecar.config.server.probe_port is None
    assert sidecar.probes is None


async def test_livez_readyz_and_startupz_answer_200_once_serving(probed: Sidecar) -> None:
    url = probe_url(probed)
    assert url.startswith("http://127.0.0.1:")
    assert not url.endswith(":0")
    for path in ("/livez", "/readyz", "/startupz"):
        status, body, headers = await get(url + path)
        assert (status, body) == (200, "ok\n")
        assert headers["Content-Type"].startswith("text/plain")
        assert headers["Server"] == "turnout"  # not aiohttp's name and version
        head_status, head_body, _ = await get(url + path, method="HEAD")
        assert (head_status, head_body) == (200, "")


async def test_an_unknown_path_is_404_and_another_method_405_without_echoing_the_request(
    probed: Sidecar,
) -> None:
    url = probe_url(probed)
    status, body, _ = await get(url + "/metrics?x=<script>")
    assert (status, body) == (404, "not found\n")
    status, body, headers = await get(url + "/readyz", method="POST", data=b"x" * 100_000)
    assert (status, body) == (405, "method not allowed\n")
    assert headers["Allow"] == "GET, HEAD"
    assert (await get(url + "/livez", method="DELETE"))[0] == 405


async def test_an_oversized_request_is_refused_quietly_and_the_listener_still_answers(
    probed: Sidecar, caplog: pytest.LogCaptureFixture
) -> None:
    url = probe_url(probed)
    status, body, _ = await get(url + "/livez", headers={"X-Padding": "x" * 4096})
    assert (status, body) == (400, "bad request\n")  # not aiohttp's, which quotes the request
    status, body, _ = await get(url + "/" + "a" * 2048)
    assert (status, body) == (400, "bad request\n")
    assert (await get(url + "/livez"))[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no traceback per request


async def test_readyz_turns_503_draining_while_an_in_flight_request_drains_and_livez_stays_200() -> None:
    sim = await start_simulator(SimulatorConfig(seed=1, time_scale=1.0, default_profile=SLOW), "127.0.0.1", 0)
    sidecar = Sidecar(example_config(sim.base_url, probe_port=0), ListenOverrides(port=0))
    await sidecar.start()
    try:
        url = probe_url(sidecar)
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            call = asyncio.ensure_future(
                pb_grpc.RouterServiceStub(channel).Generate(generate_request(), timeout=10)
            )
            await asyncio.sleep(0.3)  # waiting on the simulator now
            stopping = asyncio.ensure_future(sidecar.stop(grace_s=10))
            await asyncio.sleep(0.05)
            assert sidecar.readiness is Readiness.DRAINING
            assert (await get(url + "/readyz"))[:2] == (503, "draining\n")
            assert (await get(url + "/startupz"))[:2] == (503, "draining\n")
            assert (await get(url + "/livez"))[:2] == (200, "ok\n")
            assert not call.done()
            assert not stopping.done()
            response = await call
            assert response.output.text  # the drain let it finish
            await stopping
        with pytest.raises(aiohttp.ClientConnectionError):  # closed last, but closed
            await get(url + "/livez")
    finally:
        await sim.close()


async def test_the_command_line_wins_over_the_config(simulator: Simulator, taken_port: int) -> None:
    # The config names a taken port, so only the override lets the sidecar start.
    config = example_config(simulator.base_url, probe_port=taken_port, probe_host="localhost")
    sidecar = Sidecar(config, ListenOverrides(port=0, probe_host="127.0.0.1", probe_port=0))
    await sidecar.start()
    try:
        assert sidecar.probes is not None
        assert sidecar.probes.host == "127.0.0.1"
        assert sidecar.probes.port not in (0, taken_port)
        assert (await get(probe_url(sidecar) + "/readyz"))[0] == 200
    finally:
        await sidecar.stop(grace_s=0)


async def test_a_taken_probe_port_is_a_clear_error_and_the_grpc_port_is_released(
    simulator: Simulator, taken_port: int
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        grpc_port = int(s.getsockname()[1])
    sidecar = Sidecar(
        example_config(simulator.base_url, probe_port=taken_port), ListenOverrides(port=grpc_port)
    )
    with pytest.raises(OSError, match="cannot listen for probes") as raised:
        await sidecar.start()
    assert str(raised.value).startswith(
        f"cannot listen for probes on 127.0.0.1:{taken_port} (server.probe_host / server.probe_port, "
        "or --probe-host / --probe-port): "
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", grpc_port))  # the gRPC server that had started was stopped


async def test_the_probe_address_takes_a_restart_to_change(
    probed: Sidecar, simulator: Simulator, tmp_path
) -> None:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, simulator.root_url)
    raw["server"]["probe_port"] = 18081
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = probed.reload(path)
    assert result.restart_required == ("server.probe_port (0 -> 18081)",)
    assert probed.config.server.probe_port == 0


def test_metrics_overrides_replace_the_prometheus_address_of_the_config() -> None:
    settings = TelemetrySettings()
    options = telemetry_options(settings, ListenOverrides(metrics_host="0.0.0.0", metrics_port=9999))
    assert (options.prometheus_host, options.prometheus_port) == ("0.0.0.0", 9999)
    assert options.prometheus is True
    plain = telemetry_options(settings)
    assert (plain.prometheus_host, plain.prometheus_port) == ("127.0.0.1", 9464)
