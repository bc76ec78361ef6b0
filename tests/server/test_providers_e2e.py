"""Across wire formats through the sidecar: an Anthropic -> Gemini -> OpenAI fallback, and keys
that never show in logs, errors or responses."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
import pytest
import yaml

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from sidecar.simulator.config import load_simulator_config
from sidecar.simulator.server import Simulator, start_simulator
from tests.conftest import EXAMPLE_CONFIG, EXAMPLE_SIMULATOR, inject_fault, point_at_simulator
from tests.server.helpers import generate_request, user

PLANTED = "sk-planted-E2E-SECRET-31337"
CROSS = {
    "name": "cross",
    "models": ["claude-3-5-haiku", "gemini-2.5-flash", "gpt-4o-mini"],
    "execution": {"max_retries": 0},
}


@pytest.fixture
async def keyed_simulator() -> AsyncIterator[Simulator]:
    config = load_simulator_config(EXAMPLE_SIMULATOR).model_copy(
        update={"time_scale": 0.01, "api_key": PLANTED}
    )
    sim = await start_simulator(config, "127.0.0.1", 0)
    yield sim
    await sim.close()


@pytest.fixture
async def cross_stub(keyed_simulator: Simulator) -> AsyncIterator[pb_grpc.RouterServiceStub]:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, keyed_simulator.root_url)
    for provider in raw["providers"]:
        provider["api_key_env"] = "TURNOUT_TEST_PLANTED_KEY"
    raw["routes"].append(CROSS)
    config = parse_config(raw, source="e2e", env={"TURNOUT_TEST_PLANTED_KEY": PLANTED})
    sidecar = Sidecar(config, ListenOverrides(port=0))
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            yield pb_grpc.RouterServiceStub(channel)
    finally:
        await sidecar.stop(grace_s=0)


async def test_anthropic_then_gemini_then_openai(cross_stub, keyed_simulator):
    await inject_fault(keyed_simulator, model="claude-3-5-haiku", kind="overloaded", rate=1.0)
    await inject_fault(keyed_simulator, model="gemini-2.5-flash", kind="server_error", rate=1.0)
    response = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(route="cross")))
    assert response.model == "gpt-4o-mini"
    assert [(a.provider, a.failure_class) for a in response.attempts] == [
        ("anthropic", pb.FAILURE_CLASS_OVERLOADED),
        ("google", pb.FAILURE_CLASS_SERVER_ERROR),
        ("openai", pb.FAILURE_CLASS_UNSPECIFIED),
    ]
    events = [
        e
        async for e in cross_stub.GenerateStream(
            pb.GenerateStreamRequest(messages=[user("stream it")], hints=pb.RoutingHints(route="cross"))
        )
    ]
    assert events[-1].end.model == "gpt-4o-mini"
    assert "".join(e.delta.text for e in events if e.HasField("delta")).strip()


async def test_each_wire_format_answers_through_the_sidecar(cross_stub):
    for model in CROSS["models"]:
        response = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(pinned_model=model)))
        assert response.model == model
        assert response.output.text
        assert response.usage.output_tokens > 0


async def test_the_key_never_shows_in_logs_errors_or_responses(cross_stub, keyed_simulator, caplog):
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for kind in ("rate_limit", "server_error", "malformed_json", "stream_cut"):
        await inject_fault(keyed_simulator, model="*", kind=kind, count=3)
        try:
            response = await cross_stub.Generate(generate_request(hints=pb.RoutingHints(route="cross")))
            seen.append(str(response))
        except grpc.aio.AioRpcError as error:
            seen += [error.details() or "", str(error.trailing_metadata())]
    seen += [r.getMessage() for r in caplog.records] + [str(r.exc_info) for r in caplog.records if r.exc_info]
    assert seen
    assert not [s for s in seen if PLANTED in s]
