"""What one config snapshot serves with (`build_runtime`), and the state that outlives snapshots (`Shared`).

Start and reload both build a Runtime here, from the config, the one HTTP session and the shared
state: adapters, admission limits, executor, policy, budgets, shadows and pipeline are rebuilt;
live health, breakers, retry/hedge budgets, the limits' counters and telemetry are kept. The only
module besides app.py that names concrete classes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import aiohttp

from sidecar.config import (
    Config,
)
from sidecar.domain.observe import Observer, fan_out
from sidecar.execution.admission import Admission
from sidecar.execution.breaker import BreakerSet
from sidecar.execution.budget import Budget
from sidecar.execution.executor import Executor, Resilience
from sidecar.limits.board import Board
from sidecar.limits.budgets import BudgetBook, SoftAction
from sidecar.limits.counters import Counters, LocalCounters
from sidecar.limits.escalation import EscalationCaps
from sidecar.limits.health import SharedHealth
from sidecar.limits.heartbeat import Heartbeat
from sidecar.limits.policy import LimitedPolicy
from sidecar.limits.rates import SharedRates
from sidecar.limits.redis_counters import RedisCounters, connect
from sidecar.pipeline import Pipeline, Policy
from sidecar.policy.build import build_engine
from sidecar.policy.cache import DecisionCache
from sidecar.policy.health import HealthTracker
from sidecar.providers.factory import build_adapter
from sidecar.server.servicer import Runtime
from sidecar.shadow.runner import ShadowBook, ShadowRunner
from sidecar.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Shared:
    """State that outlives a config snapshot: live health, circuit breakers, retry/hedge budgets,
    the counters that spend budgets and escalation caps are kept in.

    Built once at start from the first config; a reload keeps them (and their thresholds).
    """

    health: HealthTracker
    breakers: BreakerSet
    hedge_budget: Budget
    retry_budget: Budget
    telemetry: Telemetry
    shadow: ShadowBook
    limits: Board  # the counters, and the budgets and caps in effect (for gauges)
    rates: SharedRates | None = None  # the providers' rates shared by the pods (share_rates)
    # Beats the shared rates and health; app starts and stops it.
    heartbeat: Heartbeat = field(default_factory=lambda: Heartbeat(()))

    @staticmethod
    def build(config: Config, health: HealthTracker, telemetry: Telemetry) -> Shared:
        r, store = config.resilience, config.limits.store
        peers: SharedHealth | None = None  # set below, once the breakers exist

        def breaker_changed(model: str, state: str) -> None:
            log.info("circuit breaker for %s is now %s", model, state)
            health.set_breaker(model, state == "open")
            telemetry.breaker_changed(model, state)
            if peers is not None and state == "open":
                peers.opened(model)

        breakers = BreakerSet(
            fail_max=r.breaker.fail_max,
            reset_timeout_s=r.breaker.reset_timeout_s,
            probe_after_s=r.breaker.probe_after_s,
            on_change=breaker_changed,
        )
        counters = build_counters(config)
        redis = counters if isinstance(counters, RedisCounters) else None
        rates = SharedRates(redis, store.replicas) if redis and store.share_rates else None
        peers = SharedHealth(redis, breakers) if redis and store.share_health else None
        return Shared(
            health=health,
            breakers=breakers,
            hedge_budget=Budget(ratio=r.hedge_budget.ratio, min_per_s=r.hedge_budget.min_per_s),
            retry_budget=Budget(ratio=r.retry_budget.ratio, min_per_s=r.retry_budget.min_per_s),
            telemetry=telemetry,
            shadow=ShadowBook(),
            limits=Board(counters),
            rates=rates,
            heartbeat=Heartbeat([part for part in (rates, peers) if part is not None]),
        )


def build_counters(config: Config) -> Counters:
    """Redis when limits.store.redis_url is set, else this process's memory (limits per pod)."""
    store = config.limits.store
    if not store.redis_url:
        if store.replicas > 1 and config.budgets:
            log.warning(
                "limits: %d replicas but no limits.store.redis_url: each pod keeps its own budgets",
                store.replicas,
            )
        return LocalCounters()
    password = config.store_password.reveal() if config.store_password else None
    timeout_s = store.timeout_ms / 1000
    client = connect(store.redis_url, timeout_s, store.max_connections, password=password)
    return RedisCounters(
        client,
        prefix=store.key_prefix,
        timeout_s=timeout_s,
        replicas=store.replicas,
        exact_within=store.exact_within,
    )


def build_runtime(config: Config, session: aiohttp.ClientSession, shared: Shared) -> Runtime:
    """Everything one config snapshot serves with. Start and reload both build it here.

    The session (one connection pool) and the shared state are kept across reloads; adapters,
    admission limits, executor and policy are rebuilt from the config.
    """
    health = shared.health
    adapters = {name: build_adapter(spec, session) for name, spec in config.providers.items()}
    admission = Admission(
        config.provider_limits, config.model_limits, max_wait_s=config.resilience.max_queue_wait_s
    )
    if shared.rates is not None:
        shared.rates.apply(admission)
    resilience = Resilience(shared.breakers, shared.hedge_budget, shared.retry_budget, admission)
    telemetry = shared.telemetry
    # time.monotonic is what asyncio's own loop reads for loop.time(), without the two calls
    # (get_running_loop, loop.time) per reading: the executor reads its clock about six times a
    # request. Tests on a virtual-time loop build their executors with loop.time instead.
    executor = Executor(
        adapters, config.providers, resilience=resilience, health=health, clock=time.monotonic
    )
    c = config.decision_cache
    # A new cache per snapshot: a reload drops every cached decision with the old registry.
    cache = DecisionCache(c.max_entries, c.ttl_s, max_bytes=c.max_bytes) if c.enabled else None
    counters = shared.limits.counters
    budgets = BudgetBook(config.budgets, counters, config.default_route) if config.budgets else None
    caps = (
        EscalationCaps(config.escalation_caps, counters, config.registry.models, config.default_route)
        if config.escalation_caps
        else None
    )
    policy: Policy = build_engine(config.routes, config.default_route, config.registry, health, cache)
    if caps or any(b.on_soft is SoftAction.CHEAPER for b in config.budgets):
        policy = LimitedPolicy(policy, config.registry.models, config.default_route, budgets, caps)
    shadow = (
        ShadowRunner(config.shadow, config.registry, executor, shared.shadow, observers=[telemetry])
        if config.shadow
        else None
    )
    pipeline = Pipeline(policy, executor, spending=budgets)
    # The gauges read the budgets of the snapshot being built: the caller swaps it in next, without
    # an await in between, so no collection sees the new budgets beside the old runtime.
    shared.limits.budgets, shared.limits.caps = budgets, caps
    # Each RPC's events, in this order: live health first (the policy reads it), then the limits
    # (spend and escalations), then telemetry, then shadows (which report their own attempts back
    # to the same call, so their spend counts too).
    subscribers: list[Observer] = [health]
    subscribers += [limit for limit in (budgets, caps) if limit is not None]
    if telemetry.active:
        subscribers.append(telemetry)
    if shadow is not None:
        subscribers.append(shadow)
    return Runtime(pipeline, config.registry, shadow, fan_out(subscribers))
