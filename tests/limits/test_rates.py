"""Rate limits shared through a real Redis: demand-weighted shares that sum to the configured rate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.limits.rates import SharedRates, shares
from sidecar.limits.redis_counters import RedisCounters, connect
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.limits.redis_server import RedisServer
from tests.processes import serve
from tests.server.helpers import generate_request


class _Lanes:
    """A snapshot's rate lanes as the heartbeat sees them: demand set by the test, shares kept."""

    def __init__(self, demand: dict[str, int]) -> None:
        self.demand = demand
        self.shares: dict[str, float] = {}
        self.default = 1.0

    def take_demand(self) -> dict[str, int]:
        return dict(self.demand)

    def share_rates(self, shares: Mapping[str, float], default: float) -> None:
        self.shares, self.default = dict(shares), default


def test_shares_sum_to_one_and_follow_demand() -> None:
    demands = {"a": {"provider:p": 90}, "b": {"provider:p": 10}, "c": {}}
    got = {pod: shares(pod, demands)["provider:p"] for pod in demands}
    assert sum(got.values()) == pytest.approx(1.0)
    assert got["a"] == pytest.approx(0.5 / 3 + 0.5 * 0.9)
    assert got["c"] == pytest.approx(0.5 / 3)  # idle: enough to start, not more
    assert shares("a", {"a": {}, "b": {}}) == {}  # nobody asked: every lane at 1/pods (the default)


async def test_pods_take_demand_weighted_shares_and_one_over_replicas_without_redis(
    redis_server: RedisServer,
) -> None:
    stores = [RedisCounters(connect(redis_server.url, 1.0), timeout_s=1.0) for _ in range(2)]
    busy, quiet = _Lanes({"provider:p": 30}), _Lanes({"provider:p": 10})
    rates = [SharedRates(store, replicas=4, interval_s=3600) for store in stores]
    try:
        rates[0].apply(busy)
        rates[1].apply(quiet)
        assert busy.default == 0.25  # before the first heartbeat: 1/replicas
        for r in rates:
            await r.beat()
        await rates[0].beat()  # now it sees the other pod's demand too
        assert rates[0].pods == 2
        assert busy.shares == {"provider:p": pytest.approx(0.25 + 0.5 * 0.75)}
        assert busy.default == 0.5
        await rates[1].beat()
        assert busy.shares["provider:p"] + quiet.shares["provider:p"] == pytest.approx(1.0)
        redis_server.kill()
        await rates[0].beat()
        assert (rates[0].pods, busy.shares, busy.default) == (0, {}, 0.25)
    finally:
        for store in stores:
            await store.close()


RATE = 10.0  # requests/s for the whole deployment
SECONDS = 4.0
FAST = {"seed": 1, "time_scale": 0.0}


def _shared_rate(redis_url: str, pods: int) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        raw["limits"] = {
            "store": {"redis_url": redis_url, "replicas": pods, "share_rates": True, "timeout_ms": 1000}
        }
        for provider in raw["providers"]:
            if provider["name"] == "openai":
                provider["requests_per_s"] = RATE
        raw.setdefault("resilience", {})["max_queue_wait_s"] = 0.2

    return edit


async def _hammer(address: str, clients: int, until: float) -> int:
    """Calls pinned to an OpenAI model until `until`; how many reached it (the rest were not admitted)."""
    answered = 0

    async def client(stub: pb_grpc.RouterServiceStub) -> None:
        nonlocal answered
        while time.monotonic() < until:
            request = generate_request()
            request.hints.pinned_model = "gpt-4o-mini"
            with contextlib.suppress(grpc.aio.AioRpcError):  # NOT_ADMITTED: past this pod's share
                await stub.Generate(request, timeout=10)
                answered += 1

    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        await asyncio.gather(*(client(stub) for _ in range(clients)))
    return answered


@pytest.mark.slow
async def test_two_pods_sharing_a_providers_rate_stay_within_it(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    pods = 2
    with contextlib.ExitStack() as stack:
        served = []
        for i in range(pods):
            (tmp_path / str(i)).mkdir()
            served.append(
                stack.enter_context(serve(tmp_path / str(i), FAST, edit=_shared_rate(redis_server.url, pods)))
            )
        await asyncio.sleep(1.5)  # a heartbeat each: both pods see each other
        until = time.monotonic() + SECONDS
        # Uneven demand: one pod's clients outnumber the other's four to one.
        answered = await asyncio.gather(
            *(_hammer(s.address, c, until) for s, c in zip(served, (8, 2), strict=True))
        )
    total = sum(answered)
    # The bound (decision 061): the rate over the run, plus the pods' bursts (a second's worth of
    # each one's share: the rate in all, and at least one request each), plus one heartbeat in
    # which shares lagging a change of demand may sum to (1 + pods) / 2 of the rate.
    assert total <= RATE * SECONDS + RATE + pods + RATE * (pods - 1) / 2, answered
    # Each pod alone would take the whole rate: together they do not double it, nor waste it.
    assert total >= RATE * SECONDS * 0.7, answered
    assert answered[0] > answered[1], answered  # the busier pod got the larger share
