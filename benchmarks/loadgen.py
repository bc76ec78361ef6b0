"""A load generator: closed loop (N workers, one call at a time each) or open loop (a fixed rate).

Runs as its own process (so it has its own core and GIL) and prints one JSON line: calls/s,
latency percentiles, time to first token for streams, errors. The driver here is generic over one
call (a coroutine that returns its time to first token, or None, and raises on failure); this
module's own targets are the sidecar's gRPC methods (Route, Generate, GenerateStream), and
benchmarks/loadgen_http.py has the OpenAI HTTP ones. Measured here against ghz on the same
machine, it drives a grpc.aio server harder (ghz builds a dynamic message per call), so the load
generator is not the bottleneck.

Closed loop: after a warm-up, `concurrency` workers each make calls // concurrency calls.
Open loop: call i is due at start + i / rate whatever the answers do, so a slow target sees its
queue grow instead of being asked less (no coordinated omission); latency runs from the moment
each call is sent, and how late the generator sent them (`send_lag_*`) is reported beside it.
Latency percentiles are over the calls that succeeded; failures are counted in `errors`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# One call: returns the seconds to its first token (streams) or None (unary); raises on failure.
Call = Callable[[], Awaitable[float | None]]

# Open loop: calls still in flight when this many are: counted as `dropped`, not sent (a target
# far over its capacity would otherwise hold thousands of connections).
MAX_IN_FLIGHT = 1024


def percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank q-quantile (0 < q <= 1) of an ascending list: the smallest value with at
    least q of the samples at or below it."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass
class Samples:
    """What the calls of one load point did, in seconds."""

    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)
    send_lags: list[float] = field(default_factory=list)
    errors: int = 0
    dropped: int = 0
    first_error: str = ""

    async def measure(self, call: Call) -> None:
        t0 = time.perf_counter()
        try:
            ttft = await call()
        except Exception as exc:  # noqa: BLE001 - a load generator counts every failure, whatever its kind
            self.errors += 1
            self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:300]
            return
        self.latencies.append(time.perf_counter() - t0)
        if ttft is not None:
            self.ttfts.append(ttft)

    def summary(self, elapsed_s: float, *, raw: bool = False) -> dict[str, Any]:
        """calls/s over the run and p50/p95/p99 in milliseconds (the keys rpc_bench reads included);
        with `raw`, every latency and TTFT too (seconds), for pool() to merge rounds."""

        def ms(x: float) -> float:
            return round(x * 1000, 3)

        lat = sorted(self.latencies)
        out: dict[str, Any] = {
            "rps": round(len(lat) / elapsed_s, 1) if elapsed_s > 0 else 0.0,
            "p50_ms": ms(percentile(lat, 0.50)),
            "p95_ms": ms(percentile(lat, 0.95)),
            "p99_ms": ms(percentile(lat, 0.99)),
            "max_ms": ms(lat[-1]) if lat else math.nan,
            "mean_ms": ms(statistics.fmean(lat)) if lat else math.nan,
            "calls": len(lat) + self.errors,
            "errors": self.errors,
            "elapsed_s": round(elapsed_s, 3),
        }
        if self.ttfts:
            ttft = sorted(self.ttfts)
            out |= {f"ttft_p{q}_ms": ms(percentile(ttft, q / 100)) for q in (50, 95, 99)}
        if self.send_lags:
            lag = sorted(self.send_lags)
            out |= {"send_lag_p50_ms": ms(percentile(lag, 0.5)), "send_lag_p99_ms": ms(percentile(lag, 0.99))}
            out["dropped"] = self.dropped
        if self.first_error:
            out["first_error"] = self.first_error
        if raw:
            out["latencies_s"] = [round(x, 6) for x in self.latencies]
            out["ttfts_s"] = [round(x, 6) for x in self.ttfts]
        return out


def pool(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary of several rounds of the same load point, each run with `--raw`: percentiles over
    all their samples, calls/s over their summed time, errors and drops summed, the worst send lag."""
    samples = Samples(
        latencies=[x for r in rounds for x in r["latencies_s"]],
        ttfts=[x for r in rounds for x in r["ttfts_s"]],
        errors=sum(r["errors"] for r in rounds),
        first_error=next((r["first_error"] for r in rounds if "first_error" in r), ""),
    )
    out = {k: v for k, v in rounds[0].items() if k in ("mode", "concurrency", "rate")}
    out |= samples.summary(sum(r["elapsed_s"] for r in rounds))
    out["rounds"] = len(rounds)
    out["rps_range"] = [min(r["rps"] for r in rounds), max(r["rps"] for r in rounds)]
    if "sent_rate" in rounds[0]:
        out["sent_rate"] = round(statistics.fmean(r["sent_rate"] for r in rounds), 1)
        out["send_lag_p99_ms"] = max(r["send_lag_p99_ms"] for r in rounds)
        out["dropped"] = sum(r["dropped"] for r in rounds)
    return out


async def warm_up(call: Call, calls: int) -> None:
    """One call at a time: opens the connection and fills the server's caches. Failures are ignored
    here; the measured calls count them."""
    for _ in range(calls):
        try:
            await call()
        except Exception:  # noqa: BLE001 - the measured run counts and reports failures
            break


async def closed_loop(
    call: Call, concurrency: int, calls: int, duration_s: float | None = None, *, raw: bool = False
) -> dict[str, Any]:
    """Each worker makes calls // concurrency calls, or calls until `duration_s` has passed."""
    samples = Samples()
    started = time.perf_counter()

    async def worker(n: int) -> None:
        if duration_s is None:
            for _ in range(n):
                await samples.measure(call)
        else:
            while time.perf_counter() - started < duration_s:
                await samples.measure(call)

    async with asyncio.TaskGroup() as tasks:
        for _ in range(concurrency):
            tasks.create_task(worker(calls // concurrency))
    result = samples.summary(time.perf_counter() - started, raw=raw)
    return {"mode": "closed", "concurrency": concurrency, **result}


async def open_loop(call: Call, rate: float, calls: int, *, raw: bool = False) -> dict[str, Any]:
    samples = Samples()
    in_flight = 0

    async def one() -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            await samples.measure(call)
        finally:
            in_flight -= 1

    started = time.perf_counter()
    async with asyncio.TaskGroup() as tasks:
        for i in range(calls):
            due = started + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            samples.send_lags.append(max(0.0, time.perf_counter() - due))
            if in_flight >= MAX_IN_FLIGHT:
                samples.dropped += 1
                continue
            tasks.create_task(one())
        sent_s = time.perf_counter() - started
    result = samples.summary(time.perf_counter() - started, raw=raw)
    sent = calls - samples.dropped
    return {
        "mode": "open",
        "rate": rate,
        "sent_rate": round(sent / sent_s, 1) if sent_s > 0 else 0.0,
        **result,
    }


async def interleaved(calls: list[Call], concurrency: int, slice_s: float, cycles: int) -> dict[str, Any]:
    """A closed loop on each target in turn, in short slices: the first target (the reference)
    runs before and after each slice of every other, and each such slice's calls/s is taken over
    the mean of its two neighbours'. On a shared machine whose speed drifts over seconds, the
    neighbours run under nearly the same conditions, so the ratio is steadier than that of whole
    rounds run one after the other (same targets, a few % vs ±10% from one run to the next here).
    Returns per target its pooled calls/s and errors, and per other target the slices' ratios:
    median and quartiles."""
    sequence = [t for _ in range(cycles) for j in range(1, len(calls)) for t in (0, j)] + [0]
    rps: list[float] = []
    errors = [0] * len(calls)
    for target in sequence:
        result = await closed_loop(calls[target], concurrency, 0, slice_s)
        rps.append(result["rps"])
        errors[target] += result["errors"]
    out: dict[str, Any] = {"mode": "interleaved", "concurrency": concurrency, "slice_s": slice_s}
    out["cycles"] = cycles
    out["rps"] = [
        round(statistics.fmean(r for r, t in zip(rps, sequence, strict=True) if t == i), 1)
        for i in range(len(calls))
    ]
    out["errors"] = errors
    ratios = []
    for j in range(1, len(calls)):
        each = [rps[k] / ((rps[k - 1] + rps[k + 1]) / 2) for k, t in enumerate(sequence) if t == j]
        q1, _, q3 = statistics.quantiles(each, n=4) if len(each) > 1 else (each[0],) * 3
        median = round(statistics.median(each), 3)
        ratios.append({"median": median, "q1": round(q1, 3), "q3": round(q3, 3), "slices": len(each)})
    out["ratios"] = ratios
    return out


def compare(
    addresses: list[str],
    request: str,
    concurrency: int,
    slice_s: float,
    cycles: int,
    *,
    method: str = "Route",
    warmup: int | None = None,
) -> dict[str, Any]:
    """`interleaved` over gRPC in a process of its own (this module's --compare): the first address
    the reference, the others compared with it; its JSON output."""
    argv = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        addresses[0],
        "--request",
        request,
        "--method",
        method,
    ]
    for address in addresses[1:]:
        argv += ["--compare", address]
    argv += ["--concurrency", str(concurrency), "--slice", str(slice_s), "--cycles", str(cycles)]
    if warmup is not None:
        argv += ["--warmup", str(warmup)]
    timeout = 120 + 4 * slice_s * cycles * len(addresses)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=root, timeout=timeout)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def drive(call: Call, args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, then run the load point the command line asks for (see add_load_arguments)."""
    await warm_up(call, int(args.warmup) if args.warmup is not None else min(200, args.calls))
    if args.rate is not None:
        calls = round(args.rate * args.duration) if args.duration is not None else args.calls
        return await open_loop(call, args.rate, calls, raw=args.raw)
    return await closed_loop(call, args.concurrency, args.calls, args.duration, raw=args.raw)


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The load-shape options shared by this module's CLI and loadgen_http's."""
    parser.add_argument("--concurrency", type=int, default=1, help="closed loop: workers")
    parser.add_argument("--calls", type=int, default=2000, help="calls measured (after the warm-up)")
    parser.add_argument(
        "--rate", type=float, help="open loop: calls per second (then --concurrency is unused)"
    )
    parser.add_argument(
        "--warmup", type=int, help="sequential calls before measuring (default min(200, calls))"
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="seconds to run instead of a number of calls (open loop: rate x duration)",
    )
    parser.add_argument("--raw", action="store_true", help="also print every latency (to pool rounds)")


# --- gRPC targets ------------------------------------------------------------------------------------


async def run_grpc(target: str, method: str, request_json: str, args: argparse.Namespace) -> dict[str, Any]:
    # Imported here so that loadgen_http, which shares the driver, does not load grpc.
    import grpc

    if not args.compare:
        async with grpc.aio.insecure_channel(target) as channel:
            return await drive(_grpc_call(channel, method, request_json), args)
    channels = [grpc.aio.insecure_channel(t) for t in (target, *args.compare)]
    try:
        calls = [_grpc_call(channel, method, request_json) for channel in channels]
        for call in calls:
            await warm_up(call, int(args.warmup) if args.warmup is not None else 200)
        return await interleaved(calls, args.concurrency, args.slice, args.cycles)
    finally:
        for channel in channels:
            await channel.close()


def _grpc_call(channel: Any, method: str, request_json: str) -> Call:
    """One call of `method` on the channel, with the request given as protobuf JSON."""
    from google.protobuf import json_format

    from sidecar.server._proto.turnout.v1 import router_pb2 as pb
    from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc

    stub = pb_grpc.RouterServiceStub(channel)  # type: ignore[no-untyped-call]
    call: Call
    if method == "Route":
        route_request = json_format.Parse(request_json, pb.RouteRequest())

        async def call() -> float | None:
            await stub.Route(route_request, timeout=30)
            return None

    elif method == "Generate":
        generate_request = json_format.Parse(request_json, pb.GenerateRequest())

        async def call() -> float | None:
            response = await stub.Generate(generate_request, timeout=30)
            if not response.output.text:
                raise RuntimeError("an empty answer")
            return None

    else:
        stream_request = json_format.Parse(request_json, pb.GenerateStreamRequest())

        async def call() -> float | None:
            t0 = time.perf_counter()
            ttft: float | None = None
            ended = False
            async for event in stub.GenerateStream(stream_request, timeout=30):
                if ttft is None and event.delta.text:
                    ttft = time.perf_counter() - t0
                ended = ended or event.HasField("end")
            if ttft is None or not ended:
                raise RuntimeError("a stream without a first token or without its end event")
            return ttft

    return call


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("target", help="host:port of the sidecar")
    parser.add_argument("--request", required=True, help="the request as protobuf JSON (file)")
    parser.add_argument("--method", choices=["Route", "Generate", "GenerateStream"], default="Route")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="interleave: closed-loop slices alternating between the target and each of these "
        "(repeatable); prints each one's calls/s over its neighbouring slices of the target's",
    )
    parser.add_argument("--slice", type=float, default=0.5, help="interleave: seconds per slice")
    parser.add_argument("--cycles", type=int, default=30, help="interleave: slices of each compared target")
    add_load_arguments(parser)
    args = parser.parse_args()
    with open(args.request, encoding="utf-8") as f:
        request_json = f.read()
    print(json.dumps(asyncio.run(run_grpc(args.target, args.method, request_json, args))))


if __name__ == "__main__":
    main()
