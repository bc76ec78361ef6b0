"""Hedging against a heavy latency tail: p50/p95/p99 with hedging off and on, and what it costs.

Two providers serve equivalent models from one simulator in real time (time_scale 1): time to first
token 100 ms (lognormal, sigma 0.1) plus 20 tokens at 1000/s, and one request in twenty waits ten
times as long for its first token. Requests go through the real sidecar's Generate over gRPC on
loopback (sidecar, simulator and load in one process), at a modest concurrency, alternating between
routes that differ only in `execution:`, so every route sees the same machine and latency draws:

    off          no hedging
    on           hedge_delay_s = the p90 of the first choice's attempt latency in a warm-up
    on-late      hedge_delay_s = 1.5 x that p90: past the body of the distribution, into the tail

A hedge delay at the p90 hedges about one request in ten by construction (every request slower
than the p90), which is the whole extra-request allowance; a delay past the body hedges little
more than the tail itself. The live p95 the engine would hedge at by default (`hedge_delay_s:
null`) is reported too: with a 5 % tail it sits at the edge of the tail, a poor trigger. Extra
requests are the hedged attempts in the responses' attempts lists, per request sent.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass, field
from typing import Any

import grpc
from turnout_simulator import ModelProfile, SimulatorConfig, start_simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc

PROFILE = ModelProfile(
    ttft_ms=100,
    tokens_per_second=1000,
    jitter=0.1,
    tail_probability=0.05,
    tail_multiplier=10,
    default_output_tokens=20,
)
CONCURRENCY = 8
LATE_FACTOR = 1.5
TARGET_P99_REDUCTION = 0.40
TARGET_EXTRA_SHARE = 0.10
# route -> the key its figures have in the results (benchmarks/run.py reads these)
VARIANTS = {"off": "without_hedging", "on": "with_hedging", "on-late": "with_later_hedging"}


def _config(base_url: str, delays: dict[str, float]) -> dict[str, Any]:
    """Two equivalent models on two providers; a route per hedge delay (none for `off`)."""

    def model(name: str, provider: str) -> dict[str, Any]:
        return {
            "name": name,
            "provider": provider,
            "price": {"input": 0.15, "output": 0.60},
            "context_window": 128_000,
            "max_output_tokens": 16_384,
            "capabilities": ["json", "streaming"],
            "quality": 0.7,
            "typical_latency_s": 0.12,
        }

    pair = ["model-a", "model-b"]
    routes: list[dict[str, Any]] = [{"name": "off", "models": pair, "execution": {"max_retries": 0}}]
    routes += [
        {
            "name": name,
            "models": pair,
            "execution": {"hedging": True, "hedge_delay_s": delay, "max_retries": 0},
        }
        for name, delay in delays.items()
    ]
    return {
        "version": 1,
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": [
            {"name": p, "kind": "openai", "base_url": base_url, "request_timeout_s": 10}
            for p in ("provider-a", "provider-b")
        ],
        "models": [model("model-a", "provider-a"), model("model-b", "provider-b")],
        "routes": routes,
        # The defaults: hedges may add 10 % to the hedged provider's first attempts, plus 1/s.
        "resilience": {"hedge_budget": {"ratio": 0.1, "min_per_s": 1}},
        # Measured in process: no metrics endpoint to bind, no request log.
        "telemetry": {
            "traces": "none",
            "metrics": "none",
            "prometheus": {"enabled": False},
            "request_log": False,
        },
    }


@dataclass
class _Route:
    """What one route's requests did."""

    latencies_s: list[float] = field(default_factory=list)
    first_attempt_s: list[float] = field(default_factory=list)  # the first choice's attempt latency
    attempts: int = 0
    hedged: int = 0
    hedge_wins: int = 0
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)
        sent = len(ordered) + self.errors
        return {
            "requests": sent,
            "errors": self.errors,
            "p50_ms": _ms(_pct(ordered, 0.50)),
            "p90_ms": _ms(_pct(ordered, 0.90)),
            "p95_ms": _ms(_pct(ordered, 0.95)),
            "p99_ms": _ms(_pct(ordered, 0.99)),
            "max_ms": _ms(ordered[-1]),
            "mean_ms": _ms(statistics.fmean(ordered)),
            "attempts": self.attempts,
            "hedged_attempts": self.hedged,
            "hedge_wins": self.hedge_wins,
            "extra_requests_share": round(self.hedged / max(sent, 1), 4),
        }


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _request(route: str, i: int) -> pb.GenerateRequest:
    text = f"Request {i}: summarise the change log in one line."
    return pb.GenerateRequest(
        messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])],
        hints=pb.RoutingHints(route=route),
    )


async def _drive(address: str, jobs: list[tuple[str, int]]) -> dict[str, _Route]:
    """Send every job (route, number), in order, from CONCURRENCY workers sharing one queue."""
    routes = {route: _Route() for route, _ in jobs}
    queue = iter(jobs)
    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)

        async def worker() -> None:
            for route, i in queue:
                seen = routes[route]
                started = loop.time()
                try:
                    response = await stub.Generate(_request(route, i), timeout=30)
                except grpc.aio.AioRpcError:
                    seen.errors += 1
                    continue
                seen.latencies_s.append(loop.time() - started)
                seen.first_attempt_s.append(response.attempts[0].latency.ToTimedelta().total_seconds())
                seen.attempts += len(response.attempts)
                seen.hedged += sum(a.hedged for a in response.attempts)
                seen.hedge_wins += any(
                    a.hedged and a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS for a in response.attempts
                )

        async with asyncio.TaskGroup() as tasks:
            for _ in range(CONCURRENCY):
                tasks.create_task(worker())
    return routes


async def _serving(base_url: str, delays: dict[str, float]) -> Sidecar:
    sidecar = Sidecar(
        parse_config(_config(base_url, delays), source="hedge_bench", env={}), ListenOverrides()
    )
    await sidecar.start()
    return sidecar


async def _warm_up(base_url: str, requests: int) -> tuple[float, float | None]:
    """(p90 of the first choice's attempt latency without hedging, the live p95 after it)."""
    sidecar = await _serving(base_url, {})
    try:
        seen = await _drive(sidecar.address, [("off", -i) for i in range(1, requests + 1)])
        stats = sidecar.health.stats("model-a")
        live_p95 = stats.latency_p95_s if stats is not None else None
    finally:
        await sidecar.stop(grace_s=0)
    return _pct(sorted(seen["off"].first_attempt_s), 0.90), live_p95


async def _run(quick: bool) -> dict[str, Any]:
    per_route = 200 if quick else 1000
    simulator = await start_simulator(SimulatorConfig(seed=3, time_scale=1.0, default_profile=PROFILE))
    try:
        p90_s, live_p95_s = await _warm_up(simulator.base_url, 100 if quick else 200)
        delays = {"on": round(p90_s, 3), "on-late": round(LATE_FACTOR * p90_s, 3)}
        sidecar = await _serving(simulator.base_url, delays)
        try:
            jobs = [(route, i) for i in range(per_route) for route in VARIANTS]
            seen = await _drive(sidecar.address, jobs)
        finally:
            await sidecar.stop(grace_s=0)
    finally:
        await simulator.close()
    results: dict[str, Any] = {
        "requests_per_route": per_route,
        "concurrency": CONCURRENCY,
        "profile": PROFILE.model_dump(exclude={"faults"}),
        "hedge_delay_s": delays["on"],
        "late_hedge_delay_s": delays["on-late"],
        "hedge_delay_from": "p90 of the first choice's attempt latency in a warm-up without hedging",
        "live_p95_s": round(live_p95_s, 3) if live_p95_s is not None else None,
        "target": {"p99_reduction": TARGET_P99_REDUCTION, "max_extra_share": TARGET_EXTRA_SHARE},
    }
    results.update({key: seen[route].summary() for route, key in VARIANTS.items()})
    off = results["without_hedging"]
    for key, prefix in (("with_hedging", ""), ("with_later_hedging", "late_")):
        on = results[key]
        cut = 1 - on["p99_ms"] / off["p99_ms"]
        results[f"{prefix}p99_reduction"] = round(cut, 3)
        results[f"{prefix}p95_reduction"] = round(1 - on["p95_ms"] / off["p95_ms"], 3)
        results[f"{prefix}target_met"] = (
            cut >= TARGET_P99_REDUCTION and on["extra_requests_share"] <= TARGET_EXTRA_SHARE
        )
    return results


def run(quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=2))
