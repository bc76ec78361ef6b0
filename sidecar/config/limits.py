"""`limits:`: the shared store (Redis, or none) and the spend budgets; see README (Budgets)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from sidecar.config.common import ENV_NAME, NAME, Strict
from sidecar.domain.model import usd_to_nanos
from sidecar.limits.budgets import BudgetSpec, Scope, SoftAction
from sidecar.limits.escalation import EscalationCap
from sidecar.limits.windows import BUCKETS, Period, Window


class StoreSettings(Strict):
    """Where the counters live. No redis_url: in this process only (limits per pod, as before)."""

    redis_url: str = ""  # redis://host:6379/0 or rediss:// (TLS); the password never goes here
    password_env: str = Field("", pattern=f"^$|{ENV_NAME}")  # the variable that holds the password
    timeout_ms: float = Field(50, gt=0, le=10_000)  # longest wait for Redis before falling back
    # Pods sharing the limits: while Redis is unreachable each pod spends 1/replicas of what remains.
    replicas: int = Field(1, ge=1, le=100_000)
    key_prefix: str = Field("turnout:", max_length=64)
    max_connections: int = Field(16, ge=1, le=1024)
    # Within this share of a hard limit every request waits for Redis's atomic check; below it (by
    # a view of Redis at most 0.1 s old) its charge is sent without waiting. 1: always wait.
    exact_within: float = Field(0.1, ge=0, le=1)
    # The providers' requests_per_s and tokens_per_min are the deployment's (an account's), not each
    # pod's: every pod runs at a demand-weighted share of them (limits/rates.py). Needs redis_url.
    share_rates: bool = False
    # A breaker one pod opens opens on every pod (limits/health.py says what that trades). Needs redis_url.
    share_health: bool = False

    @model_validator(mode="after")
    def _sharing_needs_a_store(self) -> StoreSettings:
        for name in ("share_rates", "share_health"):
            if getattr(self, name) and not self.redis_url:
                raise ValueError(f"{name}: needs redis_url (the pods share it through Redis)")
        return self

    @field_validator("redis_url")
    @classmethod
    def _url(cls, url: str) -> str:
        if not url:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"must start with redis://, rediss:// or unix://, not {parts.scheme!r}")
        if parts.password:
            raise ValueError("holds a password: name its environment variable in password_env instead")
        return url


class BudgetSettings(Strict):
    name: str = Field(pattern=NAME)
    usd: float = Field(gt=0, le=1e9)  # the limit, in US dollars per window
    # deployment | tenant | route | model | label:<name> (one budget per value of that label)
    per: str = "deployment"
    window: Period = Period.DAY
    rolling_s: int = Field(3600, ge=BUCKETS, le=90 * 86400)  # with window: rolling
    timezone: str = "UTC"  # calendar windows start at midnight (or the hour, the 1st) here
    hard: bool = True  # refuse requests once spent (RESOURCE_EXHAUSTED, BUDGET_EXCEEDED)
    soft_at: float = Field(0.8, gt=0, le=1)  # share of the limit past which on_soft applies
    on_soft: SoftAction = SoftAction.WARN
    cheaper_max_quality: float = Field(1.0, ge=0, le=1)  # on_soft: cheaper keeps to models at or below

    @field_validator("per")
    @classmethod
    def _per(cls, per: str) -> str:
        if not re.fullmatch(r"deployment|tenant|route|model|label:[A-Za-z0-9_.-]{1,63}", per):
            raise ValueError(f"{per!r}: one of deployment, tenant, route, model or label:<label name>")
        return per

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        return _known_zone(zone)

    def to_spec(self) -> BudgetSpec:
        scope, _, label = self.per.partition(":")
        return BudgetSpec(
            name=self.name,
            limit_usd_nanos=usd_to_nanos(self.usd),
            window=Window(self.window, self.timezone, self.rolling_s),
            scope=Scope(scope),
            label=label,
            hard=self.hard,
            soft_at=self.soft_at,
            on_soft=self.on_soft,
            cheaper_max_quality=self.cheaper_max_quality,
        )


class EscalationSettings(Strict):
    """At most `max_share` of a route's requests in a window go to models above `above_quality`."""

    route: str = Field(pattern=NAME)
    above_quality: float = Field(ge=0, le=1)
    max_share: float = Field(ge=0, le=1)
    window: Period = Period.HOUR
    rolling_s: int = Field(3600, ge=BUCKETS, le=90 * 86400)
    timezone: str = "UTC"
    min_requests: int = Field(20, ge=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        return _known_zone(zone)

    def to_spec(self) -> EscalationCap:
        return EscalationCap(
            route=self.route,
            above_quality=self.above_quality,
            max_share=self.max_share,
            window=Window(self.window, self.timezone, self.rolling_s),
            min_requests=self.min_requests,
        )


class LimitsSettings(Strict):
    store: StoreSettings = StoreSettings()
    budgets: list[BudgetSettings] = []
    escalation: list[EscalationSettings] = []

    @model_validator(mode="after")
    def _names(self) -> LimitsSettings:
        seen: set[str] = set()
        for b in self.budgets:
            if b.name in seen:
                raise ValueError(f"budgets: name {b.name!r} is used more than once")
            seen.add(b.name)
        routes = [e.route for e in self.escalation]
        for route in {r for r in routes if routes.count(r) > 1}:
            raise ValueError(f"escalation: route {route!r} has more than one cap")
        return self


def _known_zone(zone: str) -> str:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {zone!r} (an IANA name, e.g. Europe/Berlin)") from None
    return zone
