"""Reading a file: YAML -> FileSettings (validated) -> Config (domain objects), with errors that
name the file and each bad field."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sidecar.config.common import ConfigError
from sidecar.config.limits import LimitsSettings
from sidecar.config.routes import to_route_spec
from sidecar.config.server import ServerSettings, exposure_problems, server_problems
from sidecar.config.settings import CacheSettings, FileSettings, ResilienceSettings
from sidecar.config.telemetry import TelemetrySettings
from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret, usd_to_nanos
from sidecar.domain.shadow import ShadowSpec
from sidecar.execution.admission import Limits
from sidecar.limits.budgets import BudgetSpec
from sidecar.limits.escalation import EscalationCap
from sidecar.policy.specs import RouteSpec
from sidecar.registry.registry import Registry


@dataclass(frozen=True, slots=True)
class Config:
    """The validated config, as domain objects."""

    source: str
    server: ServerSettings
    providers: Mapping[str, ProviderSpec]
    registry: Registry
    routes: Mapping[str, RouteSpec]
    default_route: str
    decision_cache: CacheSettings
    resilience: ResilienceSettings
    provider_limits: Mapping[str, Limits]
    model_limits: Mapping[str, Limits]
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    shadow: Mapping[str, ShadowSpec] = field(default_factory=dict)
    auth_token: Secret | None = None  # from server.auth_token_env
    http_auth_token: Secret | None = None  # from server.http_auth_token_env
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    budgets: tuple[BudgetSpec, ...] = ()
    escalation_caps: tuple[EscalationCap, ...] = ()
    store_password: Secret | None = None  # from limits.store.password_env


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, validate and convert a config file; raise ConfigError naming the file and fields."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(raw, source=str(path), env=os.environ if env is None else env)


def parse_config(raw: Any, *, source: str, env: Mapping[str, str]) -> Config:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the top level must be a mapping with providers, models and routes")
    try:
        settings = FileSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid config:\n" + _describe(exc, raw)) from None
    missing = [
        f"  providers[{i}] ({p.name}).api_key_env: environment variable {p.api_key_env} is not set"
        for i, p in enumerate(settings.providers)
        if p.api_key_env and not env.get(p.api_key_env)
    ]
    missing += [_clip(f"  {problem}") for problem in server_problems(settings.server, env)]
    store = settings.limits.store
    if store.password_env and not env.get(store.password_env):
        missing.append(f"  limits.store.password_env: environment variable {store.password_env} is not set")
    missing += [
        _clip(f"  {problem}")
        for problem in exposure_problems(
            settings.server,
            settings.server.host,
            settings.telemetry.prometheus,
            settings.telemetry.prometheus.host,
        )
    ]
    if missing:
        raise ConfigError(f"{source}: invalid config:\n" + "\n".join(missing))
    return _convert(settings, source, env)


def _describe(exc: ValidationError, raw: Mapping[str, Any]) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = _format_loc(err["loc"], raw)
        for msg in err["msg"].removeprefix("Value error, ").split("\n"):
            lines.append(_clip(f"  {loc}: {msg}" if loc else f"  {msg}"))
    return "\n".join(lines)


MAX_LINE = 500


def _clip(line: str) -> str:
    """A problem line of at most ~500 characters: a 100 KB name echoed back helps no one."""
    if len(line) <= MAX_LINE:
        return line
    return f"{line[:400]}…({len(line) - 480} characters left out)…{line[-80:]}"


def _format_loc(loc: tuple[int | str, ...], raw: Any) -> str:
    """('models', 2, 'price') -> 'models[2] (gpt-4o).price', naming list items where they have a name."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, Mapping) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        elif re.fullmatch(r"[a-z_]+", str(part)):
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, Mapping) else None
        elif part == "[key]":  # the key itself is wrong (not a string, say), not its value
            out += " (the key)"
        else:  # a mapping key that is not a plain field name
            node = node.get(part) if isinstance(node, Mapping) else None
            out += f"[{part!r}]"
    return out


def _convert(s: FileSettings, source: str, env: Mapping[str, str]) -> Config:
    providers = {
        p.name: ProviderSpec(
            name=p.name,
            kind=p.kind,
            base_url=p.base_url.rstrip("/"),
            api_key=Secret(env[p.api_key_env]) if p.api_key_env else None,
            headers=tuple(p.headers.items()),
            connect_timeout_s=p.connect_timeout_s,
            request_timeout_s=p.request_timeout_s,
            options=tuple(sorted(p.options.items())),
        )
        for p in s.providers
    }
    models = tuple(
        ModelSpec(
            name=m.name,
            provider=m.provider,
            upstream_model=m.upstream_model or m.name,
            price=Price(
                input_per_mtok=usd_to_nanos(m.price.input),
                output_per_mtok=usd_to_nanos(m.price.output),
                cached_input_per_mtok=usd_to_nanos(
                    m.price.input if m.price.cached_input is None else m.price.cached_input
                ),
            ),
            context_window=m.context_window,
            max_output_tokens=m.max_output_tokens,
            capabilities=frozenset(m.capabilities),
            tags=frozenset(m.tags),
            quality=m.quality,
            typical_latency_s=m.typical_latency_s,
        )
        for m in s.models
    )
    registry = Registry(models=models, providers=providers)
    routes = {r.name: to_route_spec(r) for r in s.routes}
    return Config(
        source=source,
        server=s.server,
        providers=providers,
        registry=registry,
        routes=routes,
        default_route=s.default_route or s.routes[0].name,
        decision_cache=s.decision_cache,
        resilience=s.resilience,
        provider_limits={
            p.name: Limits(p.max_concurrency, p.requests_per_s, p.tokens_per_min) for p in s.providers
        },
        model_limits={
            m.name: Limits(m.max_concurrency, m.requests_per_s, m.tokens_per_min)
            for m in s.models
            if m.max_concurrency or m.requests_per_s or m.tokens_per_min
        },
        telemetry=s.telemetry,
        shadow={sh.route: ShadowSpec(**sh.model_dump()) for sh in s.shadow},
        auth_token=Secret(env[s.server.auth_token_env]) if s.server.auth_token_env else None,
        http_auth_token=Secret(env[s.server.http_auth_token_env]) if s.server.http_auth_token_env else None,
        limits=s.limits,
        budgets=tuple(b.to_spec() for b in s.limits.budgets),
        escalation_caps=tuple(e.to_spec() for e in s.limits.escalation),
        store_password=Secret(env[store.password_env]) if (store := s.limits.store).password_env else None,
    )
