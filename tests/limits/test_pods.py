"""Two and four `turnout serve` processes sharing one budget through a real redis-server.

Under concurrent load from every side, the deployment's spend ends within the documented bound
(decision 060: the limit, plus at most one request's estimate while estimates cover the real
costs), and Redis holds exactly what the clients were billed: every attempt counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.limits.redis_server import RedisServer
from tests.limits.test_budgets_e2e import stored_total
from tests.processes import serve
from tests.server.helpers import generate_request

pytestmark = pytest.mark.slow

FAST = {"seed": 1, "time_scale": 0.02}
LIMIT_NANOS = 2_000_000  # $0.002: some tens of the simulator's small answers


def with_budget(redis_url: str, pods: int) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        raw["limits"] = {
            # Every charge waits for Redis's check: the exact bound, whatever the pods' pace.
            "store": {"redis_url": redis_url, "timeout_ms": 1000, "replicas": pods, "exact_within": 1},
            "budgets": [{"name": "fleet", "usd": LIMIT_NANOS / 1e9, "window": "hour"}],
        }

    return edit


async def load(address: str, clients: int) -> tuple[list[int], list[int], list[grpc.StatusCode]]:
    """Each client sends until a call fails; (costs, estimates, the status codes that ended them)."""
    costs: list[int] = []
    estimates: list[int] = []
    ends: list[grpc.StatusCode] = []

    async def client(stub: pb_grpc.RouterServiceStub) -> None:
        while True:
            try:
                response = await stub.Generate(generate_request(), timeout=30)
            except grpc.aio.AioRpcError as error:
                ends.append(error.code())
                return
            costs.append(response.total_cost_usd_nanos)
            estimates.append(response.decision.estimated_cost_usd_nanos)

    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        await asyncio.gather(*(client(stub) for _ in range(clients)))
    return costs, estimates, ends


@pytest.mark.parametrize("pods", [2, 4])
async def test_pods_sharing_a_budget_stop_together_within_the_bound(
    pods: int, tmp_path: Path, redis_server: RedisServer
) -> None:
    with contextlib.ExitStack() as stack:
        served = []
        for i in range(pods):
            (tmp_path / str(i)).mkdir()
            edit = with_budget(redis_server.url, pods)
            served.append(stack.enter_context(serve(tmp_path / str(i), FAST, edit=edit)))
        results = await asyncio.gather(*(load(s.address, clients=4) for s in served))
        costs = [c for r in results for c in r[0]]
        spent = sum(costs)
        # What Redis holds, once the pods sent their last adds, is what the clients were billed.
        for _ in range(500):
            if await stored_total(redis_server, "turnout:budget:fleet:*") == spent:
                break
            await asyncio.sleep(0.01)
        assert await stored_total(redis_server, "turnout:budget:fleet:*") == spent
    estimate = max(e for r in results for e in r[1])
    # Every client of every pod was refused by the budget in the end, and nothing else failed.
    assert [code for r in results for code in r[2]] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 4 * pods
    assert spent < LIMIT_NANOS + estimate
    assert spent > LIMIT_NANOS / 2  # the estimates given back were spent again
