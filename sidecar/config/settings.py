"""The whole file's schema (`FileSettings`) and the sections without a module of their own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sidecar.config.common import Strict
from sidecar.config.limits import LimitsSettings
from sidecar.config.models import ModelSettings, ProviderSettings
from sidecar.config.routes import RouteSettings
from sidecar.config.server import ServerSettings
from sidecar.config.telemetry import TelemetrySettings
from sidecar.domain.request import Capability
from sidecar.domain.shadow import Compare


class BreakerSettings(Strict):
    fail_max: int = Field(5, ge=1)  # endpoint failures in a row that open a model's breaker
    reset_timeout_s: float = Field(30, gt=0)  # the longest an open breaker waits for a probe
    # The first probe after it opens; doubled after each failed probe, up to reset_timeout_s.
    probe_after_s: float = Field(2, gt=0)


class BudgetSettings(Strict):
    ratio: float = Field(0.1, ge=0, le=1)  # extra attempts per first attempt, per provider
    min_per_s: float = Field(1.0, ge=0)  # always allowed, so that light traffic can still hedge/retry


class ResilienceSettings(Strict):
    """Shared by every route; kept across reloads only as to state (a reload applies new numbers)."""

    breaker: BreakerSettings = BreakerSettings()
    hedge_budget: BudgetSettings = BudgetSettings()
    retry_budget: BudgetSettings = BudgetSettings(ratio=0.2)
    max_queue_wait_s: float = Field(2.0, gt=0)  # admission: longest wait for a slot or a rate


class CacheSettings(Strict):
    """The decision cache; see README (Routing)."""

    enabled: bool = True
    ttl_s: float = Field(10, gt=0)
    max_entries: int = Field(4096, gt=0)
    # Also bounded in bytes (estimated per entry at insert; least recently used first out).
    max_bytes: int = Field(32 * 1024 * 1024, gt=0)


class ShadowSettings(Strict):
    """Shadow evaluation of one route: a share of its answers re-asked of a reference model."""

    route: str
    reference_model: str
    share: float = Field(0.05, ge=0, le=1)
    compare: Compare = Compare.EXACT
    judge_model: str = ""
    max_usd_per_hour: float = Field(1.0, ge=0)
    alert_below: float = Field(0.8, ge=0, le=1)
    window: int = Field(200, ge=1, le=100_000)
    min_samples: int = Field(30, ge=1)
    timeout_s: float = Field(60, gt=0)
    max_in_flight: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _judge(self) -> ShadowSettings:
        if self.compare is Compare.JUDGE and not self.judge_model:
            raise ValueError("compare: judge needs judge_model")
        return self


class FileSettings(Strict):
    version: Literal[1] = 1
    server: ServerSettings = ServerSettings()
    providers: list[ProviderSettings] = Field(min_length=1)
    models: list[ModelSettings] = Field(min_length=1)
    routes: list[RouteSettings] = Field(min_length=1)
    default_route: str = ""
    decision_cache: CacheSettings = CacheSettings()
    resilience: ResilienceSettings = ResilienceSettings()
    telemetry: TelemetrySettings = TelemetrySettings()
    shadow: list[ShadowSettings] = []
    limits: LimitsSettings = LimitsSettings()

    @model_validator(mode="after")
    def _references(self) -> FileSettings:
        problems: list[str] = []
        problems += _duplicates("providers", [p.name for p in self.providers])
        problems += _duplicates("models", [m.name for m in self.models])
        problems += _duplicates("routes", [r.name for r in self.routes])
        providers = {p.name: p for p in self.providers}
        models = {m.name for m in self.models}
        for i, m in enumerate(self.models):
            provider = providers.get(m.provider)
            if provider is None:
                problems.append(f"models[{i}] ({m.name}).provider: unknown provider {m.provider!r}")
            elif Capability.LOGPROBS in m.capabilities and not provider.returns_logprobs:
                flavor = provider.options.get("flavor")
                problems.append(
                    f"models[{i}] ({m.name}).capabilities: {provider.kind}"
                    + (f" ({flavor})" if flavor and provider.kind == "openai_compatible" else "")
                    + f" provider {provider.name!r} returns no token log-probabilities; "
                    "remove logprobs"
                )
        for i, route in enumerate(self.routes):
            for where, names in route.model_references():
                problems += _unknown(f"routes[{i}] ({route.name}).{where}", names, models)
        if self.default_route and self.default_route not in {r.name for r in self.routes}:
            problems.append(f"default_route: unknown route {self.default_route!r}")
        reference = self.telemetry.reference_model
        if reference and reference not in models:
            problems.append(f"telemetry.reference_model: unknown model {reference!r}")
        routes = {r.name for r in self.routes}
        for i, sh in enumerate(self.shadow):
            where = f"shadow[{i}] ({sh.route})"
            if sh.route not in routes:
                problems.append(f"{where}.route: unknown route {sh.route!r}")
            problems += _unknown(f"{where}.reference_model", [sh.reference_model], models)
            if sh.judge_model:
                problems += _unknown(f"{where}.judge_model", [sh.judge_model], models)
        problems += _duplicates("shadow", [sh.route for sh in self.shadow])
        for i, cap in enumerate(self.limits.escalation):
            if cap.route not in routes:
                problems.append(f"limits.escalation[{i}].route: unknown route {cap.route!r}")
        if problems:
            raise ValueError("\n".join(problems))  # one line each (see _describe)
        return self


def _duplicates(section: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    dups = {n for n in names if n in seen or seen.add(n)}  # type: ignore[func-returns-value]
    return [f"{section}: name {n!r} is used more than once" for n in sorted(dups)]


def _unknown(where: str, names: list[str], known: set[str]) -> list[str]:
    return [f"{where}: unknown model {n!r}" for n in names if n not in known]
