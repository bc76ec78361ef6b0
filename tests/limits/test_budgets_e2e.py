"""A sidecar with a tenant budget in a real Redis: Generate until the budget refuses, over gRPC and
over the HTTP front door (OpenAI and Anthropic shapes)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import grpc
import pytest
import redis.asyncio as aioredis
import yaml
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.cli import main
from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from sidecar.telemetry import Telemetry, TelemetryOptions, build_telemetry
from tests.conftest import EXAMPLE_CONFIG, point_at_simulator, serving
from tests.integration.services import free_port
from tests.limits.redis_server import RedisServer
from tests.server.helpers import details, generate_request

LIMIT_NANOS = 100_000  # $0.0001: a handful of the simulator's small answers


def budget_config(simulator: Simulator, redis_url: str, **server: Any) -> Any:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, simulator.root_url)
    raw["server"].update(server)
    raw["limits"] = {
        "store": {"redis_url": redis_url, "timeout_ms": 500, "replicas": 2},
        "budgets": [
            {"name": "tenant-daily", "per": "tenant", "usd": LIMIT_NANOS / 1e9, "window": "day"},
            {"name": "team-hourly", "per": "label:team", "usd": 100, "window": "hour"},
        ],
    }
    return parse_config(raw, source=str(EXAMPLE_CONFIG), env={})


@pytest.fixture
async def stub(simulator: Simulator, redis_server: RedisServer) -> AsyncIterator[pb_grpc.RouterServiceStub]:
    async with serving(budget_config(simulator, redis_server.url)) as stub:
        yield stub


@contextlib.asynccontextmanager
async def started(config: Any, telemetry: Telemetry | None = None) -> AsyncIterator[tuple[str, Any]]:
    """A sidecar with `config` (and `telemetry`); its address and a stub."""
    sidecar = Sidecar(config, ListenOverrides(host="127.0.0.1", port=0), telemetry)
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            yield sidecar.address, pb_grpc.RouterServiceStub(channel)
    finally:
        await sidecar.stop(grace_s=0)


async def stored_total(server: RedisServer, pattern: str) -> int:
    client = aioredis.Redis.from_url(server.url)
    try:
        keys = [k async for k in client.scan_iter(match=pattern)]
        return sum(int(v) for v in await client.mget(keys)) if keys else 0
    finally:
        await client.aclose()


async def test_a_tenant_budget_refuses_with_budget_exceeded_and_counts_every_attempt(
    stub: pb_grpc.RouterServiceStub, redis_server: RedisServer
) -> None:
    costs: list[int] = []
    for _ in range(100):
        try:
            response = await stub.Generate(generate_request(tenant_id="acme"))
        except grpc.aio.AioRpcError as error:
            refused = error
            break
        costs.append(response.total_cost_usd_nanos)
    else:
        raise AssertionError("the budget never refused")
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = details(refused)
    assert found["ErrorInfo"].reason == "BUDGET_EXCEEDED"
    assert found["ErrorInfo"].metadata["scope"] == "tenant=acme"
    assert found["RetryInfo"].retry_delay.seconds > 0
    assert sum(costs) >= LIMIT_NANOS > sum(costs[:-1])  # refused once spent, not before
    # Another tenant still has its whole budget.
    assert (await stub.Generate(generate_request(tenant_id="other"))).output.text
    # What Redis holds for acme is the real cost of the answered requests: the estimates came back.
    for _ in range(200):
        if await stored_total(redis_server, "turnout:budget:tenant-daily:tenant=acme:*") == sum(costs):
            break
        await asyncio.sleep(0.01)
    assert await stored_total(redis_server, "turnout:budget:tenant-daily:tenant=acme:*") == sum(costs)


async def test_killing_redis_under_load_fails_no_request_and_loses_no_spend(
    stub: pb_grpc.RouterServiceStub, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.limits.redis_counters")
    costs: list[int] = []
    done = asyncio.Event()

    async def client() -> None:
        while not done.is_set():
            response = await stub.Generate(generate_request(labels={"team": "chaos"}), timeout=10)
            costs.append(response.total_cost_usd_nanos)

    async def chaos() -> None:
        await asyncio.sleep(0.3)
        redis_server.kill()
        await asyncio.sleep(0.5)
        redis_server.start()  # empty: no persistence
        await asyncio.sleep(0.5)
        done.set()

    await asyncio.gather(chaos(), *(client() for _ in range(4)))  # a failed request raises here
    # The counts made while Redis was away were sent when it came back, onto the last total seen.
    pattern = "turnout:budget:team-hourly:team=chaos:*"
    for _ in range(300):
        if await stored_total(redis_server, pattern) == sum(costs):
            break
        await asyncio.sleep(0.01)
    assert await stored_total(redis_server, pattern) == sum(costs)
    said = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0].split(";")[0] for m in said] == [
        "limits: the shared store is unreachable",
        "limits: the shared store answers again",
    ]


def gauges(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """The limits' gauges: name -> (attributes, value) per point."""
    data = reader.get_metrics_data()
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name.startswith(("turnout.limits", "turnout.budget", "turnout.escalation")):
                    out[m.name] = [(dict(p.attributes or {}), p.value) for p in m.data.data_points]
    return out


async def test_metrics_show_spend_remaining_and_the_store_going_down_and_back(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    reader = InMemoryMetricReader()
    telemetry = build_telemetry(TelemetryOptions(prometheus=False), env={}, metric_readers=(reader,))
    async with started(budget_config(simulator, redis_server.url), telemetry) as (_, stub):
        await stub.Generate(generate_request(labels={"team": "metrics"}))
        seen = gauges(reader)
        assert seen["turnout.limits.store.up"] == [({}, 1)]
        scope = {"turnout.budget": "team-hourly", "turnout.budget.scope": "team=metrics"}
        (spent,) = [v for a, v in seen["turnout.budget.spent.usd"] if a == scope]
        (left,) = [v for a, v in seen["turnout.budget.remaining.usd"] if a == scope]
        assert 0 < spent < 0.01
        assert left == pytest.approx(100 - spent)
        redis_server.kill()
        await stub.Generate(generate_request(labels={"team": "metrics"}))
        # Seen by that request's charge, or (a charge far from the limit waits for nothing) by
        # the flusher sending its count.
        for _ in range(300):
            if gauges(reader)["turnout.limits.store.up"] == [({}, 0)]:
                break
            await asyncio.sleep(0.01)
        assert gauges(reader)["turnout.limits.store.up"] == [({}, 0)]
        redis_server.start()
        for _ in range(300):
            if gauges(reader)["turnout.limits.store.up"] == [({}, 1)]:
                break
            await asyncio.sleep(0.01)
        assert gauges(reader)["turnout.limits.store.up"] == [({}, 1)]


async def test_get_budgets_and_turnout_budgets_report_spend_limit_and_reset(
    simulator: Simulator, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    async with started(budget_config(simulator, redis_server.url)) as (address, stub):
        await _report_and_print(address, stub, capsys)


async def _report_and_print(
    address: str, stub: pb_grpc.RouterServiceStub, capsys: pytest.CaptureFixture[str]
) -> None:
    answered = await stub.Generate(generate_request(tenant_id="acme", labels={"team": "search"}))
    cost = answered.total_cost_usd_nanos
    for _ in range(200):  # the real cost and the estimate given back reach Redis
        report = await stub.GetBudgets(pb.GetBudgetsRequest())
        if {b.scope: b.spent_usd_nanos for b in report.budgets}.get("tenant=acme") == cost:
            break
        await asyncio.sleep(0.01)
    assert report.shared
    found = {(b.name, b.scope): b for b in report.budgets}
    assert set(found) == {("tenant-daily", "tenant=acme"), ("team-hourly", "team=search")}
    tenant = found[("tenant-daily", "tenant=acme")]
    assert (tenant.window, tenant.spent_usd_nanos, tenant.limit_usd_nanos) == ("day", cost, LIMIT_NANOS)
    assert tenant.hard
    assert tenant.resets_at.ToDatetime(tzinfo=UTC) > datetime.now(UTC)
    # The command line prints the same, one line a budget and scope.
    assert await asyncio.to_thread(main, ["budgets", "--target", address]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["budget", "scope", "window"]
    assert sorted(line.split()[:3] for line in lines[1:]) == [
        ["team-hourly", "team=search", "hour"],
        ["tenant-daily", "tenant=acme", "day"],
    ]


async def test_a_sidecar_started_without_its_redis_serves_on_its_share(
    simulator: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.limits.redis_counters")
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with started(budget_config(simulator, nowhere)) as (_, stub):
        assert (await stub.Generate(generate_request(tenant_id="acme"))).output.text
        report = await stub.GetBudgets(pb.GetBudgetsRequest())
    assert not report.shared
    assert any("the shared store is unreachable" in r.getMessage() for r in caplog.records)


async def test_over_http_a_spent_budget_is_a_429_with_retry_after_in_each_apis_shape(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    config = budget_config(simulator, redis_server.url, http_port=free_port())
    hello = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 5}
    tenant = {"x-turnout-tenant": "acme"}
    async with started(config) as (_, stub), aiohttp.ClientSession() as http:
        with pytest.raises(grpc.aio.AioRpcError) as spent:  # acme's budget, spent over gRPC
            await _spend(stub, "acme")
        assert spent.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        url = f"http://127.0.0.1:{config.server.http_port}/v1"
        for path, body in [
            ("/chat/completions", hello),
            ("/chat/completions", {**hello, "stream": True}),  # refused before any event
            ("/messages", hello),
        ]:
            async with http.post(url + path, json=body, headers=tenant) as response:
                assert response.status == 429, await response.text()
                assert int(response.headers["retry-after"]) > 0
                assert int(response.headers["retry-after-ms"]) > 0
                error = (await response.json())["error"]
            assert error["type"] == "rate_limit_error"
            assert error["reason"] == "BUDGET_EXCEEDED"
            assert error["metadata"]["budget"] == "tenant-daily"
            assert error["metadata"]["scope"] == "tenant=acme"
            assert "budget 'tenant-daily' for tenant=acme is spent" in error["message"]
        async with http.post(url + "/chat/completions", json=hello, headers={"x-turnout-tenant": "b"}) as ok:
            assert ok.status == 200  # another tenant's budget is whole


async def _spend(stub: pb_grpc.RouterServiceStub, tenant: str) -> None:
    """Generate for `tenant` until its budget refuses (the error propagates)."""
    for _ in range(100):
        await stub.Generate(generate_request(tenant_id=tenant))
