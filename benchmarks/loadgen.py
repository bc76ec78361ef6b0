"""A closed-loop gRPC load generator for one unary method: N workers, each one call at a time.

Runs as its own process (so it has its own core and GIL), sends the same request for a fixed
number of calls per worker after a warm-up, and prints one JSON line: calls/s, latency
percentiles, errors. Measured here against ghz on the same machine, it drives a grpc.aio server
harder (ghz builds a dynamic message per call), so the load generator is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
from google.protobuf import json_format

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc


async def run(target: str, request: pb.RouteRequest, concurrency: int, calls: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for _ in range(min(200, calls)):  # warm-up: connection, server caches
            await stub.Route(request)

        async def worker(n: int) -> None:
            nonlocal errors
            for _ in range(n):
                t0 = time.perf_counter()
                try:
                    await stub.Route(request, timeout=30)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker(calls // concurrency) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "rps": round(n / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 3),
        "p99_ms": round(latencies[int(n * 0.99)] * 1000, 3),
        "calls": n,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target")
    parser.add_argument("--request", required=True, help="a RouteRequest as protobuf JSON (file)")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with open(args.request, encoding="utf-8") as f:
        request = json_format.Parse(f.read(), pb.RouteRequest())
    print(json.dumps(asyncio.run(run(args.target, request, args.concurrency, args.calls))))


if __name__ == "__main__":
    main()
