"""Listening: a unix socket beside the TCP port, and live health from attempts."""

from __future__ import annotations

import grpc

from sidecar.app import ListenOverrides, Sidecar
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import example_config, inject_fault
from tests.server.helpers import generate_request


async def test_unix_socket(simulator, tmp_path):
    path = tmp_path / "turnout.sock"
    sidecar = Sidecar(example_config(simulator.base_url), ListenOverrides(port=0, unix_socket=str(path)))
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(f"unix:{path}") as channel:
            response = await pb_grpc.RouterServiceStub(channel).Generate(generate_request())
        assert response.output.text
    finally:
        await sidecar.stop(grace_s=0)


async def test_health_degrades_with_failures(stub, simulator):
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
    await stub.Generate(generate_request())

    async def state() -> int:
        models = (await stub.ListModels(pb.ListModelsRequest())).models
        return next(m.health for m in models if m.name == "gpt-4o-mini")

    health = await state()
    assert health.state == pb.HEALTH_STATE_DEGRADED
    assert health.last_failure == pb.FAILURE_CLASS_SERVER_ERROR
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=5)
    for _ in range(5):
        await stub.Generate(generate_request())
    assert (await state()).state == pb.HEALTH_STATE_UNHEALTHY
