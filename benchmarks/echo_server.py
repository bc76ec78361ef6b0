"""The ceiling for Route over gRPC: a minimal grpc.aio RouterService answering a canned decision.

Same proto, same loopback, same response size as the real sidecar, and no routing at all; the
RPC benchmark reports the sidecar's throughput as a ratio to this server's, measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc

from benchmarks.workload import config, requests
from sidecar.policy.build import build_engine
from sidecar.policy.health import HealthTracker
from sidecar.server import convert_out
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc


class Echo(pb_grpc.RouterServiceServicer):
    def __init__(self, response: pb.RouteResponse) -> None:
        self._response = response

    async def Route(self, request: pb.RouteRequest, context: Any) -> pb.RouteResponse:
        return self._response


async def main(port: int) -> None:
    cfg = config()
    plan = build_engine(cfg.routes, "bench", cfg.registry, HealthTracker()).plan(requests()[1])
    server = grpc.aio.server()
    pb_grpc.add_RouterServiceServicer_to_server(
        Echo(pb.RouteResponse(decision=convert_out.decision(plan))), server
    )  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"echo: listening on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(main(parser.parse_args().port))
