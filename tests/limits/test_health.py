"""Shared health through a real Redis: a breaker one pod opens opens on the others, once."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
import yaml
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import parse_config
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.execution.breaker import BreakerSet
from sidecar.limits.health import SharedHealth
from sidecar.limits.heartbeat import Heartbeat
from sidecar.limits.redis_counters import RedisCounters, connect
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLE_CONFIG, inject_fault, point_at_simulator
from tests.limits.redis_server import RedisServer
from tests.server.helpers import generate_request

MODEL = "gpt-4o-mini"


class _Pod:
    """One pod's breakers and shared health over its own connection to the one Redis."""

    def __init__(self, server: RedisServer) -> None:
        self.store = RedisCounters(connect(server.url, 1.0), timeout_s=1.0)
        self.changes: list[tuple[str, str]] = []
        self.breakers = BreakerSet(
            fail_max=2, reset_timeout_s=10, probe_after_s=0.05, on_change=self._changed
        )
        self.health = SharedHealth(self.store, self.breakers)

    def _changed(self, model: str, state: str) -> None:
        self.changes.append((model, state))
        if state == "open":
            self.health.opened(model)

    async def fail(self, model: str) -> None:
        for _ in range(2):
            with pytest.raises(ProviderError):
                async with self.breakers.guard(model):
                    raise ProviderError(FailureClass.SERVER_ERROR, "500")

    async def succeed(self, model: str) -> None:
        async with self.breakers.guard(model):
            pass


async def test_a_breaker_one_pod_opens_opens_on_the_others_once(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sidecar.limits.health")
    a, b, c = _Pod(redis_server), _Pod(redis_server), _Pod(redis_server)
    try:
        await a.fail("gpt")
        assert a.breakers.state("gpt") == "open"
        for pod in (a, b, c):  # a's heartbeat sends the news, b's and c's read it
            await pod.health.beat()
        assert (b.breakers.state("gpt"), c.breakers.state("gpt")) == ("open", "open")
        assert "circuit breaker for gpt opened: another pod saw it fail" in caplog.text
        await asyncio.sleep(0.06)  # past probe_after_s: b probes on its own, and the model works
        await b.succeed("gpt")
        assert b.breakers.state("gpt") == "closed"
        for pod in (b, c, a):  # the same news again: b is not tripped twice, nor does b echo it
            await pod.health.beat()
        assert b.breakers.state("gpt") == "closed"
        assert b.changes == [("gpt", "open"), ("gpt", "half_open"), ("gpt", "closed")]
        assert [state for _, state in a.changes].count("open") == 1  # its own news is not news to it
    finally:
        for pod in (a, b, c):
            await pod.store.close()


async def test_without_redis_the_news_waits_and_the_heartbeat_goes_on(redis_server: RedisServer) -> None:
    a, b = _Pod(redis_server), _Pod(redis_server)
    beats = 0

    class _Counted:
        async def beat(self) -> None:
            nonlocal beats
            beats += 1

    heartbeat = Heartbeat([a.health, _Counted()], interval_s=0.01)
    try:
        redis_server.kill()
        await a.fail("gpt")
        heartbeat.start()
        await asyncio.sleep(0.1)
        assert beats >= 3  # a's beat finds the store away each time; the others still run
        redis_server.start()
        for _ in range(300):  # the flusher's probe sees the store back; the news goes then
            await b.health.beat()
            if b.breakers.state("gpt") == "open":
                break
            await asyncio.sleep(0.01)
        assert b.breakers.state("gpt") == "open"
    finally:
        await heartbeat.close()
        for pod in (a, b):
            await pod.store.close()


async def test_two_sidecars_sharing_health_open_each_others_breakers(
    simulator: Simulator, redis_server: RedisServer
) -> None:
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, simulator.root_url)
    raw["limits"] = {"store": {"redis_url": redis_server.url, "share_health": True, "timeout_ms": 1000}}
    raw["resilience"]["breaker"] = {"fail_max": 2, "probe_after_s": 30, "reset_timeout_s": 30}
    config = parse_config(raw, source="test", env={})
    a, b = (Sidecar(config, ListenOverrides(host="127.0.0.1", port=0)) for _ in range(2))
    await a.start()
    await b.start()
    try:
        await inject_fault(simulator, model=MODEL, kind="server_error", count=1000)
        async with grpc.aio.insecure_channel(a.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            pinned = generate_request(hints=pb.RoutingHints(pinned_model=MODEL))
            for _ in range(10):  # with retries, a call makes one or two failed attempts
                with pytest.raises(grpc.aio.AioRpcError):
                    await stub.Generate(pinned, timeout=5)
                if a.health.snapshot(MODEL).breaker_open:
                    break
        assert a.health.snapshot(MODEL).breaker_open
        assert not b.health.snapshot(MODEL).breaker_open  # b sent nothing to MODEL
        for _ in range(300):  # the next heartbeats (1 s apart): a's sends the news, b's reads it
            if b.health.snapshot(MODEL).breaker_open:
                break
            await asyncio.sleep(0.01)
        assert b.health.snapshot(MODEL).breaker_open
    finally:
        await a.stop(grace_s=0)
        await b.stop(grace_s=0)
