"""Escalation caps: the share of a route's requests sent above a quality stays under the cap."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

from sidecar.domain.observe import Planned, RpcStarted
from sidecar.domain.outcome import AttemptCause, AttemptStart
from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.request import ChatRequest
from sidecar.limits.counters import Counters, LocalCounters
from sidecar.limits.escalation import EscalationCap, EscalationCaps
from sidecar.limits.policy import LimitedPolicy
from sidecar.limits.redis_counters import RedisCounters, connect
from sidecar.limits.windows import Period, Window
from tests.factories import chat, model
from tests.limits.redis_server import RedisServer

CHEAP, FRONTIER = model("cheap", quality=0.5), model("frontier", quality=0.9)
CAP = EscalationCap("default", above_quality=0.8, max_share=0.15, window=Window(Period.HOUR), min_requests=20)
NOON = 1_796_385_600.0


class _Engine:
    """Wants the frontier model for every `hard`-tagged request, the cheap one otherwise."""

    def plan(self, request: ChatRequest) -> Plan:
        hard = "hard" in request.hints.tags and FRONTIER.name not in request.hints.denied_models
        return Plan("default", "test", (Stage((Candidate(FRONTIER if hard else CHEAP, 0),)),))


class _Routing:
    """What Pipeline.route does with the caps: plan, then tell the call's observers (the caps)."""

    def __init__(self, policy: LimitedPolicy, caps: EscalationCaps) -> None:
        self._policy, self._caps = policy, caps

    def plan(self, request: ChatRequest) -> Plan:
        plan = self._policy.plan(request)
        self._caps.rpc_started(RpcStarted("Route")).planned(Planned(request, plan))
        return plan


def capped(counters: Counters) -> tuple[_Routing, EscalationCaps]:
    caps = EscalationCaps([CAP], counters, [CHEAP, FRONTIER], "default", clock=lambda: NOON)
    return _Routing(LimitedPolicy(_Engine(), [CHEAP, FRONTIER], "default", caps=caps), caps), caps


def workload(n: int) -> list[ChatRequest]:
    """Every other request would like the frontier model: a share of 50% without a cap."""
    return [chat(tags=frozenset({"hard"}) if i % 2 else frozenset()) for i in range(n)]


def test_past_the_cap_the_policy_keeps_the_cheaper_choice_and_says_so() -> None:
    policy, caps = capped(LocalCounters())
    plans = [policy.plan(r) for r in workload(400)]
    seen = caps.seen("default")
    assert seen is not None
    assert seen.requests == 400
    assert seen.share <= CAP.max_share + 1 / 400
    assert sum(p.stages[0].candidates[0].model is FRONTIER for p in plans) == seen.above
    held = [p for p in plans if p.reasons]
    assert held
    assert str(held[-1].reasons[-1]).startswith(
        "escalation cap: 15% of route default's requests this hour went above quality 0.8 (cap 15%), "
        "models above quality 0.8 excluded"
    )


def test_no_cap_before_the_window_has_min_requests() -> None:
    policy, _ = capped(LocalCounters())
    plans = [policy.plan(chat(tags=frozenset({"hard"}))) for _ in range(CAP.min_requests)]
    assert all(p.stages[0].candidates[0].model is FRONTIER for p in plans)


def test_a_cascades_escalation_above_the_quality_counts() -> None:
    policy, caps = capped(LocalCounters())
    policy.plan(chat())  # planned cheap
    start = AttemptStart(2, FRONTIER, None, chat(), AttemptCause.ESCALATION, stage=1)
    caps.attempt_started(start)
    seen = caps.seen("default")
    assert seen is not None
    assert (seen.requests, seen.above) == (1, 1)
    fallback = dataclasses.replace(start, cause=AttemptCause.FALLBACK)
    caps.attempt_started(fallback)  # not an escalation: not counted again
    assert caps.seen("default") == seen


async def test_two_pods_sharing_a_cap_through_redis_hold_it(redis_server: RedisServer) -> None:
    pods = [RedisCounters(connect(redis_server.url, 1.0), timeout_s=1.0) for _ in range(2)]
    policies = [capped(p)[0] for p in pods]
    try:
        above = 0
        # The pods take turns, and each sees the other's counts only through Redis: as its adds ride
        # on a flush. A short pause now and then lets the flushers run, as traffic would.
        for i, (request, policy) in enumerate(zip(workload(600), itertools.cycle(policies), strict=False)):
            above += policy.plan(request).stages[0].candidates[0].model is FRONTIER
            if i % 10 == 9:
                await asyncio.sleep(0.03)
        share = above / 600
        assert share <= CAP.max_share + 0.02, share
        assert share >= CAP.max_share - 0.05  # the cap holds the share near it, not far below
    finally:
        for p in pods:
            await p.close()
