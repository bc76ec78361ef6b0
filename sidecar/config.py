"""Typed settings from one YAML file: validated at start, with errors that name the file and the field.

The file holds models, providers and routes (the routes' schema is in config_routes.py).
Credentials never live in it: a provider names the environment variable that holds its key
(`api_key_env`), read here once. Nothing here touches the
network. The result is a frozen `Config` of domain objects; the rest of the sidecar never sees YAML.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sidecar.config_routes import RouteSettings, to_route_spec
from sidecar.domain.model import ModelSpec, Price, ProviderSpec, Secret, usd_to_nanos
from sidecar.domain.redact import CREDENTIAL_WORDS, is_credential_header, redact
from sidecar.domain.request import Capability
from sidecar.domain.shadow import Compare, ShadowSpec
from sidecar.execution.admission import Limits
from sidecar.policy.specs import RouteSpec
from sidecar.registry.registry import Registry

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
# ListModels carries token counts as int32 and prices as int64 usd_nanos; a million USD per
# million tokens, times 2^31 tokens, still fits an int64 of usd_nanos.
MAX_TOKENS = 2**31 - 1
MAX_USD_PER_MTOK = 1_000_000


class ConfigError(Exception):
    """An invalid config file; the message names the file, each bad field and what is wrong."""


class _Strict(BaseModel):
    # NaN and Infinity are refused in every number: a NaN passes no bound, and an infinite price or
    # timeout would only fail later, converted to an integer or a deadline.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TlsSettings(_Strict):
    """TLS on the gRPC port (grpc's own SSL credentials); read once at start."""

    cert_file: str  # PEM certificate chain
    key_file: str  # PEM private key
    client_ca_file: str = ""  # set: mutual TLS, clients must present a certificate signed by this CA


class ServerSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    unix_socket: str = ""
    # Largest request Turnout accepts, checked by the servicer so the error can name the field;
    # the gRPC transport limit is set above it so that such requests reach the check.
    max_request_mb: float = Field(32, gt=0, le=1024)
    shutdown_grace_s: float = Field(30, ge=0)
    # The whole-request deadline when the client sets none.
    default_timeout_s: float = Field(300, gt=0)
    # How often the config file is checked for a change (by content hash); 0: only on SIGHUP.
    reload_interval_s: float = Field(1.0, ge=0)
    # The HTTP probe listener (/livez, /readyz; sidecar/probes.py): unset is off, 0 a free port.
    # It may bind the pod IP for kubelet while the gRPC API stays on loopback.
    probe_host: str = "127.0.0.1"
    probe_port: int | None = Field(None, ge=0, le=65535)
    # Access control (README, Access control). A host off loopback needs one of these two.
    auth_token_env: Annotated[str, Field(pattern=ENV_NAME)] | None = None  # clients send Bearer <token>
    tls: TlsSettings | None = None
    # The unix socket's file mode: owner only by default (who may connect is who may open it).
    unix_socket_mode: Annotated[int, Field(ge=0, le=0o777)] = 0o600
    # The OpenAI- and Anthropic-compatible HTTP front door (sidecar/http_api): unset or 0 is off.
    # Off loopback it needs its own bearer token (clients send it as their SDK's api_key).
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(None, ge=0, le=65535)
    http_auth_token_env: Annotated[str, Field(pattern=ENV_NAME)] | None = None

    @field_validator("unix_socket_mode", mode="before")
    @classmethod
    def _octal(cls, value: Any) -> Any:
        """A mode as YAML writes it: "0660" (a string: YAML reads a bare 0660 as the number 432)."""
        if isinstance(value, str):
            try:
                return int(value, 8)
            except ValueError:
                raise ValueError(f'not an octal file mode: {value!r} (e.g. "0600")') from None
        return value


class ProviderSettings(_Strict):
    name: Annotated[str, Field(pattern=NAME)]
    kind: Literal["openai", "anthropic", "gemini", "azure_openai", "openai_compatible", "bedrock"]
    base_url: Annotated[str, Field(pattern=r"^https?://")]
    api_key_env: Annotated[str, Field(pattern=ENV_NAME)] | None = None
    headers: dict[str, str] = {}
    options: dict[str, str] = {}  # wire-protocol settings, e.g. api_version (see README, Providers)
    connect_timeout_s: float = Field(5, gt=0)
    request_timeout_s: float = Field(120, gt=0)
    # Admission limits for this endpoint (unset: none): in-flight calls, requests/s, tokens/min.
    max_concurrency: int | None = Field(None, gt=0)
    requests_per_s: float | None = Field(None, gt=0)
    tokens_per_min: float | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _no_inline_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "api_key" in data:
            raise ValueError(
                "api_key is not read from the config file; put the key in an environment variable "
                "and name that variable in api_key_env"
            )
        return data

    @field_validator("base_url")
    @classmethod
    def _no_credentials_in_url(cls, url: str) -> str:
        # ListModels shows every client each model's endpoint, and logs and spans name it too.
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ValueError(
                "a base_url must not hold credentials (user:password@); put the key in an "
                "environment variable and name it in api_key_env"
            )
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if is_credential_header(name):
                raise ValueError(
                    f"a base_url must not hold credentials (query parameter {name!r}); use api_key_env"
                )
        return url

    @field_validator("headers")
    @classmethod
    def _no_credential_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        # By a broad rule on the normalised name (Proxy-Authorization, Cookie, X-Auth-Token,
        # Ocp-Apim-Subscription-Key, "Authorization " with a space, ...), and by the value's shape.
        for key, value in headers.items():
            if is_credential_header(key):
                word = next(w for w in CREDENTIAL_WORDS if w in key.strip().casefold())
                raise ValueError(
                    f"header {key!r} carries credentials (its name contains {word!r}); "
                    "use api_key_env instead"
                )
            if redact(value) != value:
                raise ValueError(f"header {key!r} has a value that looks like a key; use api_key_env instead")
        return headers


class PriceSettings(_Strict):
    """USD per million tokens, as providers publish them."""

    input: float = Field(ge=0, le=MAX_USD_PER_MTOK)
    output: float = Field(ge=0, le=MAX_USD_PER_MTOK)
    cached_input: float | None = Field(None, ge=0, le=MAX_USD_PER_MTOK)


class ModelSettings(_Strict):
    name: Annotated[str, Field(pattern=NAME)]
    provider: str
    upstream_model: str = ""
    price: PriceSettings
    context_window: int = Field(gt=0, le=MAX_TOKENS)
    max_output_tokens: int = Field(gt=0, le=MAX_TOKENS)
    capabilities: list[Capability] = []
    tags: list[str] = []
    quality: float = Field(0.5, ge=0, le=1)
    typical_latency_s: float = Field(1.0, gt=0)
    max_concurrency: int | None = Field(None, gt=0)  # in-flight calls to this model at once

    @model_validator(mode="after")
    def _output_fits(self) -> ModelSettings:
        if self.max_output_tokens > self.context_window:
            raise ValueError(
                f"max_output_tokens {self.max_output_tokens} exceeds context_window {self.context_window}"
            )
        return self


class BreakerSettings(_Strict):
    fail_max: int = Field(5, ge=1)  # endpoint failures in a row that open a model's breaker
    reset_timeout_s: float = Field(30, gt=0)  # the longest an open breaker waits for a probe
    # The first probe after it opens; doubled after each failed probe, up to reset_timeout_s.
    probe_after_s: float = Field(2, gt=0)


class BudgetSettings(_Strict):
    ratio: float = Field(0.1, ge=0, le=1)  # extra attempts per first attempt, per provider
    min_per_s: float = Field(1.0, ge=0)  # always allowed, so that light traffic can still hedge/retry


class ResilienceSettings(_Strict):
    """Shared by every route; kept across reloads only as to state (a reload applies new numbers)."""

    breaker: BreakerSettings = BreakerSettings()
    hedge_budget: BudgetSettings = BudgetSettings()
    retry_budget: BudgetSettings = BudgetSettings(ratio=0.2)
    max_queue_wait_s: float = Field(2.0, gt=0)  # admission: longest wait for a slot or a rate


class CacheSettings(_Strict):
    """The decision cache; see README (Routing)."""

    enabled: bool = True
    ttl_s: float = Field(10, gt=0)
    max_entries: int = Field(4096, gt=0)
    # Also bounded in bytes (estimated per entry at insert; least recently used first out).
    max_bytes: int = Field(32 * 1024 * 1024, gt=0)


class PrometheusSettings(_Strict):
    enabled: bool = True
    host: str = "127.0.0.1"  # a scrape endpoint for the pod's own Prometheus agent; keep it local
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (the log says which)
    # A host off loopback must be chosen deliberately (README, Access control): the endpoint serves
    # read-only aggregates, no prompts or keys, to whoever can reach it.
    allow_remote: bool = False


class TelemetrySettings(_Strict):
    """Traces, metrics and the request log. The standard OTEL_* variables take precedence."""

    service_name: str = "turnout"  # OTEL_SERVICE_NAME wins
    # OTLP export of spans / metrics: auto = when an OTEL_EXPORTER_OTLP_*ENDPOINT variable is set.
    traces: Literal["auto", "otlp", "console", "none"] = "auto"
    metrics: Literal["auto", "otlp", "console", "none"] = "auto"
    otlp_protocol: Literal["", "grpc", "http/protobuf"] = ""  # "": OTEL_EXPORTER_OTLP_PROTOCOL, else grpc
    prometheus: PrometheusSettings = PrometheusSettings()
    propagate_to_providers: bool = False  # send traceparent with provider calls
    # Share of root requests traced (those without a caller's trace). A caller's own decision is
    # always followed, so its sampled traces stay whole. OTEL_TRACES_SAMPLER, when set, wins.
    trace_sample_ratio: float = Field(0.1, ge=0, le=1)
    request_log: bool = True  # one JSON line per request on stderr (logger turnout.access)
    reference_model: str = ""  # savings are measured against this model's prices
    tenant_label: bool = True  # label cost metrics with the hashed tenant id
    id_secret_env: Annotated[str, Field(pattern=ENV_NAME)] = "TURNOUT_TELEMETRY_ID_SECRET"
    metric_export_interval_s: float = Field(15, gt=0)


class ShadowSettings(_Strict):
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


class FileSettings(_Strict):
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

    @model_validator(mode="after")
    def _references(self) -> FileSettings:
        problems: list[str] = []
        problems += _duplicates("providers", [p.name for p in self.providers])
        problems += _duplicates("models", [m.name for m in self.models])
        problems += _duplicates("routes", [r.name for r in self.routes])
        providers = {p.name for p in self.providers}
        models = {m.name for m in self.models}
        for i, m in enumerate(self.models):
            if m.provider not in providers:
                problems.append(f"models[{i}] ({m.name}).provider: unknown provider {m.provider!r}")
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
        if problems:
            raise ValueError("\n".join(problems))  # one line each (see _describe)
        return self


def _duplicates(section: str, names: list[str]) -> list[str]:
    seen: set[str] = set()
    dups = {n for n in names if n in seen or seen.add(n)}  # type: ignore[func-returns-value]
    return [f"{section}: name {n!r} is used more than once" for n in sorted(dups)]


def _unknown(where: str, names: list[str], known: set[str]) -> list[str]:
    return [f"{where}: unknown model {n!r}" for n in names if n not in known]


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
    missing += [_clip(f"  {problem}") for problem in _server_problems(settings.server, env)]
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


MIN_TOKEN_CHARS = 16


def _server_problems(server: ServerSettings, env: Mapping[str, str]) -> list[str]:
    problems = []
    for setting in ("auth_token_env", "http_auth_token_env"):
        name = getattr(server, setting)
        if not name:
            continue
        token = env.get(name, "")
        if not token:
            problems.append(f"server.{setting}: environment variable {name} is not set")
        elif len(token.strip()) < MIN_TOKEN_CHARS or token != token.strip():
            problems.append(
                f"server.{setting}: the token in {name} must be at least "
                f"{MIN_TOKEN_CHARS} characters, without surrounding spaces"
            )
    if server.tls is not None:
        for name in ("cert_file", "key_file", "client_ca_file"):
            path = getattr(server.tls, name)
            if path and ("\0" in path or not os.access(path, os.R_OK)):  # os.access raises on NUL
                problems.append(f"server.tls.{name}: cannot read {path}")
    return problems


def is_loopback(host: str) -> bool:
    """Whether a listen address is on loopback only: localhost, 127.0.0.0/8 or ::1."""
    host = host.strip().removeprefix("[").removesuffix("]")
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, "" or 0.0.0.0-like: it may reach the network
        return False


def exposure_problems(
    server: ServerSettings,
    host: str,
    prometheus: PrometheusSettings,
    metrics_host: str,
    *,
    host_field: str = "server.host",
    metrics_field: str = "telemetry.prometheus.host",
    allow_remote_metrics: bool = False,
    http_host: str | None = None,
    http_field: str = "server.http_host",
) -> list[str]:
    """Listen addresses off loopback that were not chosen deliberately (README, Access control).

    The routing API spends money and returns answers: off loopback it needs a token or TLS. The
    metrics endpoint is read-only aggregates: off loopback it needs to be allowed in so many words.
    The HTTP front door (when its port is set; `http_host` None: its config's) has TLS nowhere in
    front of it, so off loopback it needs its own token.
    """
    problems = []
    http_host = server.http_host if http_host is None else http_host
    if server.http_port and not is_loopback(http_host) and not server.http_auth_token_env:
        problems.append(
            f"{http_field}: {http_host!r} is not a loopback address, and anyone who can reach it could "
            "spend your provider credit: set server.http_auth_token_env (clients then send the token "
            "as their SDK's api_key) or listen on 127.0.0.1"
        )
    if not is_loopback(host) and not server.auth_token_env and server.tls is None:
        problems.append(
            f"{host_field}: {host!r} is not a loopback address, and anyone who can reach it could "
            "spend your provider credit: set server.auth_token_env (clients then send "
            "'authorization: Bearer <token>') or server.tls, or listen on 127.0.0.1"
        )
    allowed = prometheus.allow_remote or allow_remote_metrics
    if prometheus.enabled and not is_loopback(metrics_host) and not allowed:
        problems.append(
            f"{metrics_field}: {metrics_host!r} is not a loopback address; the metrics are "
            "read-only aggregates (no prompts, no keys), so exposing them is allowed, but only "
            "deliberately: set telemetry.prometheus.allow_remote: true (or pass "
            "--allow-remote-metrics), or listen on 127.0.0.1"
        )
    return problems


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
        model_limits={m.name: Limits(m.max_concurrency) for m in s.models if m.max_concurrency},
        telemetry=s.telemetry,
        shadow={sh.route: ShadowSpec(**sh.model_dump()) for sh in s.shadow},
        auth_token=Secret(env[s.server.auth_token_env]) if s.server.auth_token_env else None,
        http_auth_token=Secret(env[s.server.http_auth_token_env]) if s.server.http_auth_token_env else None,
    )
