"""Compile route specs into an Engine for one registry snapshot (at start and on every reload)."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.policy.cache import DecisionCache
from sidecar.policy.classifier import BUILTIN, Classifier, SuccessModel
from sidecar.policy.draft import Entry
from sidecar.policy.engine import CompiledRoute, Engine
from sidecar.policy.health import HealthTracker
from sidecar.policy.specs import (
    CapabilitySpec,
    CascadeSpec,
    ClassifierSpec,
    ConsensusSpec,
    RouteSpec,
    RulesSpec,
    ScoringSpec,
    SlaSpec,
    StrategySpec,
    SuccessSpec,
)
from sidecar.policy.strategies.base import Strategy
from sidecar.policy.strategies.capability import CapabilityStrategy
from sidecar.policy.strategies.cascade import CascadeStrategy
from sidecar.policy.strategies.classify import ClassifierStrategy
from sidecar.policy.strategies.consensus import ConsensusStrategy
from sidecar.policy.strategies.constraints import HintConstraints
from sidecar.policy.strategies.rules import RulesStrategy
from sidecar.policy.strategies.scoring import ScoringStrategy
from sidecar.policy.strategies.sla import SlaStrategy
from sidecar.policy.strategies.success import SuccessStrategy
from sidecar.policy.tokens import counter_for, preload
from sidecar.registry.registry import Registry


def build_engine(
    routes: Mapping[str, RouteSpec],
    default_route: str,
    registry: Registry,
    health: HealthTracker,
    cache: DecisionCache | None = None,
    classifiers: Mapping[str, Classifier] | None = None,
) -> Engine:
    preload(registry.models)  # build the tokenizers now, so that no request pays for it
    slots: dict[str, int] = {}
    entries = {}
    for m in registry.models:
        counter = counter_for(m)
        slot = slots.setdefault(counter.name, len(slots))
        entries[m.name] = Entry(m, counter, slot, health.stats_for(m.name))
    found = dict(classifiers or {})
    compiled = {name: _compile(spec, entries, found) for name, spec in routes.items()}
    return Engine(compiled, default_route, entries, health, cache)


def _compile(
    spec: RouteSpec, entries: Mapping[str, Entry], classifiers: dict[str, Classifier]
) -> CompiledRoute:
    strategies: list[Strategy] = [_strategy(s, spec.name, entries, classifiers) for s in spec.strategies]
    label = ">".join(s.name for s in strategies) or "pool"
    # The request's own constraints run right after the rules (which pick the list), or first.
    at = 1 if strategies and isinstance(strategies[0], RulesStrategy) else 0
    strategies.insert(at, HintConstraints())
    if not any(isinstance(s, CapabilityStrategy) for s in strategies):
        # Never send a request to a model that cannot take it, whatever the route says.
        strategies.insert(at + 1, CapabilityStrategy(CapabilitySpec()))
    return CompiledRoute(
        name=spec.name,
        pool=tuple(entries[m] for m in spec.models),
        strategies=tuple(strategies),
        label=label,
        reads_content=any(s.reads_content for s in strategies),
        max_candidates=spec.max_candidates,
        execution=spec.execution,
    )


def _strategy(
    spec: StrategySpec, route: str, entries: Mapping[str, Entry], classifiers: dict[str, Classifier]
) -> Strategy:
    match spec:
        case RulesSpec():
            return RulesStrategy(spec, entries, route)
        case CapabilitySpec():
            return CapabilityStrategy(spec)
        case SlaSpec():
            return SlaStrategy(spec)
        case ScoringSpec():
            return ScoringStrategy(spec)
        case ClassifierSpec():
            return ClassifierStrategy(spec, _classifier(spec.name, classifiers))
        case SuccessSpec():
            model = _classifier(spec.classifier, classifiers)
            if not isinstance(model, SuccessModel):
                raise ValueError(f"classifier {spec.classifier!r} does not predict per-model success")
            return SuccessStrategy(spec, model)
        case CascadeSpec():
            return CascadeStrategy(spec)
        case ConsensusSpec():
            return ConsensusStrategy(spec)
    raise TypeError(f"unknown strategy spec {spec!r}")


def _classifier(name: str, classifiers: dict[str, Classifier]) -> Classifier:
    """One instance per name per build, shared by every route that names it."""
    if name not in classifiers:
        classifiers[name] = BUILTIN[name]()
    return classifiers[name]
