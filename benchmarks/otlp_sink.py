"""A stand-in OpenTelemetry collector for the telemetry-on benchmark: accepts OTLP/gRPC, counts, drops.

The sidecar under test exports its spans and metrics here exactly as it would to a collector
(same exporter, same batching, same serialisation); the sink answers at once, so what the
benchmark measures is the sidecar's own cost of telemetry, not a collector's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc


class Counts:
    spans = 0
    metric_exports = 0


class Traces(trace_grpc.TraceServiceServicer):
    async def Export(self, request: Any, context: Any) -> Any:
        Counts.spans += sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        return trace_pb.ExportTraceServiceResponse()


class Metrics(metrics_grpc.MetricsServiceServicer):
    async def Export(self, request: Any, context: Any) -> Any:
        Counts.metric_exports += 1
        return metrics_pb.ExportMetricsServiceResponse()


async def main(port: int) -> None:
    server = grpc.aio.server()
    trace_grpc.add_TraceServiceServicer_to_server(Traces(), server)  # type: ignore[no-untyped-call]
    metrics_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)  # type: ignore[no-untyped-call]
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
        args.stats.write_text(json.dumps({"spans": Counts.spans, "metric_exports": Counts.metric_exports}))
