"""RedisCounters against a real redis-server: atomic charges, batches, an outage and its reconciliation."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from sidecar.limits.counters import Claim, LocalCounters
from sidecar.limits.redis_counters import RedisCounters, connect
from tests.limits.redis_server import RedisServer

DAY = Claim(("spend:team=a:day",), limit=1_000, ttl_s=3600)
OPEN = Claim(("spend:all:day",), limit=None, ttl_s=3600)


def pod(server: RedisServer, **kwargs: float) -> RedisCounters:
    options: dict[str, float] = {"timeout_s": 0.2, "flush_interval_s": 0.001, "probe_interval_s": 0.02}
    options |= kwargs
    return RedisCounters(connect(server.url, options["timeout_s"]), **options)  # type: ignore[arg-type]


async def stored(server: RedisServer, key: str) -> int:
    client = aioredis.Redis.from_url(server.url)
    try:
        return int(await client.get("turnout:" + key) or 0)
    finally:
        await client.aclose()


async def settled(counters: RedisCounters) -> None:
    for _ in range(500):
        if counters.up and not counters._has_unsent():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the counters did not send everything within 5 s")


@pytest.mark.parametrize("kind", ["local", "redis"])
async def test_a_charge_is_refused_once_the_total_reached_the_limit(
    kind: str, redis_server: RedisServer
) -> None:
    counters = LocalCounters() if kind == "local" else pod(redis_server)
    try:
        first = await counters.charge([DAY, OPEN], 600)
        second = await counters.charge([DAY, OPEN], 600)  # 600 < 1000: let in, crosses the limit
        third = await counters.charge([DAY, OPEN], 1)
        assert (first.totals, first.refused) == ((0, 0), None)
        assert (second.totals, second.refused) == ((600, 600), None)
        assert (third.totals, third.refused) == ((1200, 1200), 0)
        assert await counters.totals([DAY, OPEN]) == (1200, 1200)
        assert first.shared is (kind == "redis")
    finally:
        await counters.close()


async def test_an_add_reaches_redis_in_a_batch_without_anyone_waiting(redis_server: RedisServer) -> None:
    counters = pod(redis_server)
    try:
        await counters.charge([DAY], 500)
        counters.add(DAY.keys[0], 200, DAY.ttl_s)  # the real cost came in above the estimate
        counters.add(DAY.keys[0], -500, DAY.ttl_s)  # and the estimate is given back
        await settled(counters)
        assert await stored(redis_server, DAY.keys[0]) == 200
    finally:
        await counters.close()


async def test_concurrent_pods_overshoot_a_limit_by_at_most_one_charge(redis_server: RedisServer) -> None:
    # A generous timeout: this is about the store's atomicity, and 400 charges at once on a busy
    # machine can take longer than 0.2 s, which the pods would rightly take for an outage and
    # then serve on their own shares (tested on its own below).
    pods = [pod(redis_server, timeout_s=5.0) for _ in range(4)]
    limit, cost = 10_000, 70
    claim = Claim(("spend:race",), limit=limit, ttl_s=60)
    try:
        verdicts = await asyncio.gather(*(p.charge([claim], cost) for p in pods for _ in range(100)))
        admitted = sum(v.refused is None for v in verdicts)
        total = await stored(redis_server, "spend:race")
        assert total == admitted * cost
        assert limit <= total < limit + cost
    finally:
        for p in pods:
            await p.close()


async def test_a_resent_batch_is_applied_once(redis_server: RedisServer) -> None:
    counters = pod(redis_server)
    try:
        counters.add("spend:x", 5, 60)
        counters._ensure_flusher()
        await settled(counters)
        batch_key = counters._seq_key
        keys, args = [batch_key, "turnout:spend:x"], [counters._seq, 86_400_000, 5, 60_000, 0]
        await counters._flush(keys=keys, args=args)  # the same batch again: its reply was lost
        assert await stored(redis_server, "spend:x") == 5
    finally:
        await counters.close()


async def test_an_outage_falls_back_to_the_pods_share_and_is_reconciled(redis_server: RedisServer) -> None:
    changes: list[bool] = []
    counters = pod(redis_server, replicas=4)
    counters._on_state = changes.append
    claim = Claim(("spend:outage",), limit=10_000, ttl_s=3600)
    try:
        assert (await counters.charge([claim], 2_000)).shared
        redis_server.kill()
        started = time.monotonic()
        # Remaining 8000, this pod's share 2000: charges of 500 are let in while 2000 + 4 x local
        # is under 10000, i.e. four of them (the fourth crosses at 2000 + 4 x 1500 = 8000 < 10000).
        verdicts = [await counters.charge([claim], 500) for _ in range(8)]
        assert time.monotonic() - started < 2  # one timeout, then no waiting on a dead store
        assert [v.refused for v in verdicts] == [None] * 4 + [0] * 4
        assert not any(v.shared for v in verdicts)
        assert changes == [False]
        redis_server.start()  # empty: no persistence
        await settled(counters)
        assert changes == [False, True]
        # The last total seen (2000) restored the lost counter; the 4 x 500 made meanwhile were added.
        assert await stored(redis_server, "spend:outage") == 4_000
        assert (await counters.charge([claim], 0)).totals == (4_000,)
    finally:
        await counters.close()


async def test_close_sends_what_is_unsent(redis_server: RedisServer) -> None:
    counters = pod(redis_server, flush_interval_s=60)
    counters.add("spend:closing", 42, 60)
    await asyncio.sleep(0)
    await counters.close()
    assert await stored(redis_server, "spend:closing") == 42


async def test_far_from_the_limit_a_charge_waits_for_nothing_and_near_it_for_redis(
    redis_server: RedisServer,
) -> None:
    counters, other = pod(redis_server, exact_within=0.35), pod(redis_server)
    try:
        await counters.charge([DAY], 100)  # no view of Redis yet: waits, and now has one
        assert counters.unawaited == 0
        for _ in range(5):  # 200..600 of 1000: below 65% by a fresh view
            assert (await counters.charge([DAY], 100)).refused is None
        assert counters.unawaited == 5
        await settled(counters)
        assert await stored(redis_server, "spend:team=a:day") == 600  # the adds reached Redis
        await other.charge([DAY], 300)  # another pod: 900, which this one has not seen yet
        await counters.charge([DAY], 100)  # 700 by its view: within 35% of the limit, so it waits
        assert counters.unawaited == 5
        refused = await counters.charge([DAY], 1)  # Redis says 1000: refused there, exactly
        assert (refused.refused, refused.totals) == (0, (1000,))
    finally:
        await counters.close()
        await other.close()


async def test_an_old_view_is_not_trusted(redis_server: RedisServer) -> None:
    now = [1000.0]
    counters = RedisCounters(
        connect(redis_server.url, 0.2), timeout_s=0.2, exact_within=0.5, clock=lambda: now[0]
    )
    try:
        await counters.charge([DAY], 100)
        now[0] += 0.15  # the view is older than fresh_s (0.1 s)
        await counters.charge([DAY], 100)
        assert counters.unawaited == 0
        now[0] += 0.05
        await counters.charge([DAY], 100)  # the view the last charge brought is fresh
        assert counters.unawaited == 1
    finally:
        await counters.close()
