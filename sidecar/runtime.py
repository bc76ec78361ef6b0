"""What one config snapshot serves with (`build_runtime`), and the state that outlives snapshots (`Shared`).

Start and reload both build a Runtime here, from the config, the one HTTP session and the shared
state: adapters, admission limits, executor, policy, shadows and pipeline are rebuilt; live health,
breakers, retry/hedge budgets and telemetry are kept. The only module besides app.py that names
concrete classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

from sidecar.config import (
    Config,
)
from sidecar.domain.observe import Observer, fan_out
from sidecar.execution.admission import Admission
from sidecar.execution.breaker import BreakerSet
from sidecar.execution.budget import Budget
from sidecar.execution.executor import Executor, Resilience
from sidecar.pipeline import Pipeline
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
    """State that outlives a config snapshot: live health, circuit breakers, retry/hedge budgets.

    Built once at start from the first config; a reload keeps them (and their thresholds).
    """

    health: HealthTracker
    breakers: BreakerSet
    hedge_budget: Budget
    retry_budget: Budget
    telemetry: Telemetry
    shadow: ShadowBook

    @staticmethod
    def build(config: Config, health: HealthTracker, telemetry: Telemetry) -> Shared:
        r = config.resilience

        def breaker_changed(model: str, state: str) -> None:
            log.info("circuit breaker for %s is now %s", model, state)
            health.set_breaker(model, state == "open")
            telemetry.breaker_changed(model, state)

        return Shared(
            health=health,
            breakers=BreakerSet(
                fail_max=r.breaker.fail_max,
                reset_timeout_s=r.breaker.reset_timeout_s,
                probe_after_s=r.breaker.probe_after_s,
                on_change=breaker_changed,
            ),
            hedge_budget=Budget(ratio=r.hedge_budget.ratio, min_per_s=r.hedge_budget.min_per_s),
            retry_budget=Budget(ratio=r.retry_budget.ratio, min_per_s=r.retry_budget.min_per_s),
            telemetry=telemetry,
            shadow=ShadowBook(),
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
    resilience = Resilience(shared.breakers, shared.hedge_budget, shared.retry_budget, admission)
    telemetry = shared.telemetry
    executor = Executor(adapters, config.providers, resilience=resilience, health=health)
    c = config.decision_cache
    # A new cache per snapshot: a reload drops every cached decision with the old registry.
    cache = DecisionCache(c.max_entries, c.ttl_s, max_bytes=c.max_bytes) if c.enabled else None
    policy = build_engine(config.routes, config.default_route, config.registry, health, cache)
    shadow = (
        ShadowRunner(config.shadow, config.registry, executor, shared.shadow, observers=[telemetry])
        if config.shadow
        else None
    )
    pipeline = Pipeline(policy, executor)
    # Each RPC's events, in this order: live health first (the policy reads it), then telemetry,
    # then shadows (which report their own attempts back to the same call).
    subscribers: list[Observer] = [health]
    if telemetry.active:
        subscribers.append(telemetry)
    if shadow is not None:
        subscribers.append(shadow)
    return Runtime(pipeline, config.registry, shadow, fan_out(subscribers))
