"""A stand-in OpenTelemetry collector for the telemetry benchmark: accepts OTLP/gRPC exports, drops them.

The sidecar under test exports its spans and metrics here exactly as it would to a collector
(same exporter, same batching, same serialisation). The sink does not even decode them: on this
2-core machine it shares the CPU with the sidecar and the load generator, and a Python collector
decoding thousands of spans a second would bill its own cost to the sidecar's throughput. It
counts export calls and bytes, and answers each with an empty (valid) response.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import grpc

SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "traces",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics",
    "opentelemetry.proto.collector.logs.v1.LogsService": "logs",
}
Counts: dict[str, int] = {}


def _service(name: str, signal_name: str) -> grpc.GenericRpcHandler:
    async def export(request: bytes, context: Any) -> bytes:
        Counts[f"{signal_name}_exports"] = Counts.get(f"{signal_name}_exports", 0) + 1
        Counts[f"{signal_name}_bytes"] = Counts.get(f"{signal_name}_bytes", 0) + len(request)
        return b""  # an empty Export*ServiceResponse

    handler = grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: raw bytes
    return grpc.method_handlers_generic_handler(name, {"Export": handler})


async def main(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(tuple(_service(name, sig) for name, sig in SERVICES.items()))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"otlp sink: listening on 127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stats", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.port))
    if args.stats is not None:
        args.stats.write_text(json.dumps(Counts))
