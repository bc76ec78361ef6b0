"""Composition root: the only module that names concrete classes, and the start/stop order.

start:  telemetry -> HTTP session -> health, shared counters
        -> runtime (adapters -> executor -> policy -> pipeline) -> gRPC server
        -> probe listener (/readyz 200) -> config watcher (`serve_until_signalled`)
reload: runtime rebuilt from the new file on the same session, health and telemetry, swapped in whole
stop:   config watcher -> /readyz 503 "draining" -> gRPC server (graceful) -> shared counters (sends
        what is unsent) -> HTTP session
        -> telemetry (flushes spans) -> probe listener (/livez answers until here)
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from sidecar.config import (
    Config,
    ConfigError,
    ServerSettings,
    TelemetrySettings,
    exposure_problems,
    load_config,
)
from sidecar.execution.admission import Admission
from sidecar.execution.breaker import BreakerSet
from sidecar.execution.budget import Budget
from sidecar.execution.executor import Executor, Resilience
from sidecar.limits.board import Board
from sidecar.limits.budgets import BudgetBook, SoftAction
from sidecar.limits.counters import Counters, LocalCounters
from sidecar.limits.escalation import EscalationCaps
from sidecar.limits.policy import LimitedPolicy
from sidecar.limits.redis_counters import RedisCounters, connect
from sidecar.pipeline import Pipeline, Policy
from sidecar.policy.build import build_engine
from sidecar.policy.cache import DecisionCache
from sidecar.policy.health import HealthTracker
from sidecar.probes import ProbeListener, Readiness
from sidecar.providers.factory import build_adapter
from sidecar.providers.session import make_session
from sidecar.reload import ConfigWatcher, ReloadResult
from sidecar.server.access import Access, TlsFiles
from sidecar.server.serve import GrpcServer, Listen
from sidecar.server.servicer import RouterServicer, Runtime
from sidecar.shadow.runner import ShadowBook, ShadowRunner
from sidecar.telemetry import Telemetry, TelemetryOptions, build_telemetry, redact_log_records

log = logging.getLogger(__name__)

# Server settings that the listeners and the servicer take at start; a reload cannot change them.
RESTART_ONLY = (
    "host",
    "port",
    "unix_socket",
    "max_request_mb",
    "default_timeout_s",
    "probe_host",
    "probe_port",
    "auth_token_env",
    "tls",
    "unix_socket_mode",
)
# limits.store: the counters and their connection are kept across reloads, like health.


@dataclass(frozen=True, slots=True)
class ListenOverrides:
    """Command-line addresses that win over the config's (`turnout serve --port ...`).

    The server ones are named as in ServerSettings, so a reload knows which settings they pin.
    metrics_* stand for telemetry.prometheus.host / port: a Helm chart passes them all in the
    container's args, so that they hold whatever config file the user mounts.
    """

    host: str | None = None
    port: int | None = None
    unix_socket: str | None = None
    probe_host: str | None = None
    probe_port: int | None = None
    metrics_host: str | None = None
    metrics_port: int | None = None
    # --allow-remote-metrics: the metrics host may be off loopback (telemetry.prometheus.allow_remote)
    allow_remote_metrics: bool | None = None


@dataclass(frozen=True, slots=True)
class Shared:
    """State that outlives a config snapshot: live health, circuit breakers, retry/hedge budgets,
    the counters that spend budgets are kept in.

    Built once at start from the first config; a reload keeps them (and their thresholds).
    """

    health: HealthTracker
    breakers: BreakerSet
    hedge_budget: Budget
    retry_budget: Budget
    telemetry: Telemetry
    shadow: ShadowBook
    limits: Board  # the counters, and the budgets and caps in effect (for gauges)

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
            limits=Board(build_counters(config)),
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
    return RedisCounters(client, prefix=store.key_prefix, timeout_s=timeout_s, replicas=store.replicas)


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
    watching = telemetry.tracing or telemetry.metering
    counters = shared.limits.counters
    budgets = BudgetBook(config.budgets, counters, config.default_route) if config.budgets else None
    caps = (
        EscalationCaps(config.escalation_caps, counters, config.registry.models, config.default_route)
        if config.escalation_caps
        else None
    )
    hooks = [telemetry.attempt_started] if watching else []
    hooks += [limit.attempt_started for limit in (budgets, caps) if limit is not None]
    executor = Executor(
        adapters,
        config.providers,
        observers=[health.observe],
        attempt_hooks=hooks,
        resilience=resilience,
        health=health,
    )
    c = config.decision_cache
    # A new cache per snapshot: a reload drops every cached decision with the old registry.
    cache = DecisionCache(c.max_entries, c.ttl_s, max_bytes=c.max_bytes) if c.enabled else None
    policy: Policy = build_engine(config.routes, config.default_route, config.registry, health, cache)
    if caps or any(b.on_soft is SoftAction.CHEAPER for b in config.budgets):
        policy = LimitedPolicy(policy, config.registry.models, config.default_route, budgets, caps)
    shadow = (
        ShadowRunner(config.shadow, config.registry, executor, shared.shadow, observers=[telemetry])
        if config.shadow
        else None
    )
    pipeline = Pipeline(
        policy,
        executor,
        observers=[telemetry] if telemetry.active else [],
        answer_observers=[shadow] if shadow is not None else [],
        spending=budgets,
    )
    # The gauges read the budgets of the snapshot being built: the caller swaps it in next, without
    # an await in between, so no collection sees the new budgets beside the old runtime.
    shared.limits.budgets, shared.limits.caps = budgets, caps
    return Runtime(pipeline, config.registry, shadow)


class Sidecar:
    """One running sidecar: build with a Config, `await start()`, `reload(path)`, `await stop()`."""

    def __init__(
        self,
        config: Config,
        overrides: ListenOverrides = ListenOverrides(),
        telemetry: Telemetry | None = None,
    ) -> None:
        self.config = config  # the config in effect (after a reload, with the restart-only settings kept)
        self._overrides = overrides
        self._telemetry = telemetry  # built from config.telemetry at start unless given (tests)
        self.health = HealthTracker()
        self._session: aiohttp.ClientSession | None = None
        self._server: GrpcServer | None = None
        self._readiness = Readiness.STARTING
        self._probes: ProbeListener | None = None
        self._runtime: Runtime | None = None
        self._shared: Shared | None = None

    @property
    def address(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.address

    @property
    def server(self) -> GrpcServer:
        assert self._server is not None, "start() first"
        return self._server

    @property
    def telemetry(self) -> Telemetry:
        assert self._telemetry is not None, "start() first"
        return self._telemetry

    @property
    def probes(self) -> ProbeListener | None:
        """The probe listener once started; None while server.probe_port is unset."""
        return self._probes

    @property
    def readiness(self) -> Readiness:
        return self._readiness

    async def start(self) -> None:
        config = self.config
        redact_log_records()  # before anything can log a provider's words
        self._check_exposure()
        if self._telemetry is None:
            self._telemetry = build_telemetry(telemetry_options(config.telemetry, self._overrides))
        telemetry = self._telemetry
        reference = config.telemetry.reference_model or telemetry.options.reference_model
        telemetry.reference = config.registry.get(reference)
        if telemetry.sdk.prometheus_address is not None:
            host, port = telemetry.sdk.prometheus_address
            log.info("telemetry: Prometheus metrics at http://%s:%d/metrics", host, port)
        self._session = make_session()
        self._shared = Shared.build(config, self.health, telemetry)
        self._runtime = build_runtime(config, self._session, self._shared)
        telemetry.watch(self._shared.breakers.states, self._queue_depths)
        telemetry.watch_shadow(self._shadow_agreements)
        board = self._shared.limits
        telemetry.watch_limits(board.store_up, board.spend, board.escalation_shares)
        servicer = RouterServicer(
            self.runtime,
            self.health,
            max_request_bytes=int(config.server.max_request_mb * 1024 * 1024),
            default_timeout_s=config.server.default_timeout_s,
            telemetry=telemetry,
            budgets=self._shared.limits.report,
        )
        o = self._overrides
        listen = Listen(
            host=o.host if o.host is not None else config.server.host,
            port=o.port if o.port is not None else config.server.port,
            unix_socket=o.unix_socket if o.unix_socket is not None else config.server.unix_socket,
            max_request_bytes=int(config.server.max_request_mb * 1024 * 1024),
            access=_access(config),
        )
        try:
            server = GrpcServer(servicer, listen)
            await server.start()
            self._server = server
            self._readiness = Readiness.SERVING
            # The probe listener starts after the gRPC server, not before: start-up work runs on
            # the event loop without yielding, so an earlier listener could not answer "starting"
            # anyway, and kubelet counts a refused connection as a failed probe just the same.
            # Started here, its first answer is true, and an open probe port means the API serves.
            self._probes = await self._start_probes(config.server)
        except BaseException:
            if self._server is not None:
                await self._server.stop(0)
                self._server = None
            await self._session.close()
            telemetry.shutdown()
            raise

    async def _start_probes(self, settings: ServerSettings) -> ProbeListener | None:
        o = self._overrides
        port = o.probe_port if o.probe_port is not None else settings.probe_port
        if port is None:
            return None
        host = o.probe_host if o.probe_host is not None else settings.probe_host
        probes = ProbeListener(host, port, lambda: self._readiness)
        await probes.start()
        log.info("probes: /livez, /readyz and /startupz at %s", probes.url)
        return probes

    def _check_exposure(self) -> None:
        """The config's check of listen addresses off loopback, again with the command line's."""
        o, server = self._overrides, self.config.server
        prometheus = self.config.telemetry.prometheus
        problems = exposure_problems(
            server,
            o.host if o.host is not None else server.host,
            prometheus,
            o.metrics_host if o.metrics_host is not None else prometheus.host,
            host_field="--host" if o.host is not None else "server.host",
            metrics_field="--metrics-host" if o.metrics_host is not None else "telemetry.prometheus.host",
            allow_remote_metrics=bool(o.allow_remote_metrics),
        )
        if problems:
            raise ConfigError(
                f"{self.config.source}: cannot serve:\n" + "\n".join(f"  {p}" for p in problems)
            )

    def runtime(self) -> Runtime:
        assert self._runtime is not None, "start() first"
        return self._runtime

    def _shadow_agreements(self) -> dict[str, tuple[float, int, bool]]:
        shadow = self.runtime().shadow
        if shadow is None:
            return {}
        return {route: (a.agreement, a.samples, a.alerting) for route, a in shadow.agreements().items()}

    def _queue_depths(self) -> dict[str, int]:
        """Waiting attempts per provider: 0 for every configured one, so the gauge always exists."""
        waiting = self.runtime().pipeline.executor.admission.depths()
        return {name: waiting.get(name, 0) for name in self.config.providers} | waiting

    def reload(self, path: str | Path) -> ReloadResult:
        """Load `path`, build a runtime from it and swap it in; ConfigError (nothing changed) if invalid.

        Server settings in RESTART_ONLY keep their running values (a warning names the ones the new
        file changes); everything else applies to requests that start after this returns. Requests
        in flight keep the runtime they started with: each handler reads `runtime()` once.
        """
        assert self._session is not None, "start() first"
        previous = self.config
        loaded = load_config(path)
        pending = self._restart_only_changes(previous.server, loaded.server)
        if pending:
            log.warning(
                "config reload: %s: %s changed but take%s effect only after a restart; "
                "the rest of the new config applies now",
                loaded.source,
                ", ".join(pending),
                "s" if len(pending) == 1 else "",
            )
        if loaded.limits.store != previous.limits.store:
            log.warning(
                "config reload: %s: limits.store changed but takes effect only after a restart "
                "(the budgets apply now)",
                loaded.source,
            )
        if _without_reference(loaded.telemetry) != _without_reference(previous.telemetry):
            log.warning(
                "config reload: %s: telemetry settings changed but take effect only after a restart "
                "(telemetry.reference_model applies now)",
                loaded.source,
            )
        kept = {name: getattr(previous.server, name) for name in RESTART_ONLY}
        config = dataclasses.replace(
            loaded, server=loaded.server.model_copy(update=kept), telemetry=previous.telemetry
        )
        assert self._shared is not None
        runtime = build_runtime(config, self._session, self._shared)
        self.telemetry.reference = config.registry.get(loaded.telemetry.reference_model)
        # The swap. Handlers run on this one asyncio loop and this method does not await, so no
        # request can observe a half-made change: one that started before this line keeps the old
        # runtime (it holds a reference), one that starts after gets the new one. No lock needed.
        self._runtime = runtime
        self.config = config
        return ReloadResult(config=config, previous=previous, restart_required=tuple(pending))

    def _restart_only_changes(self, running: ServerSettings, new: ServerSettings) -> list[str]:
        """'server.port (50051 -> 50052)' for each restart-only setting whose effective value differs."""
        pinned = {name for name, value in dataclasses.asdict(self._overrides).items() if value is not None}
        return [
            f"server.{name} ({getattr(running, name)!r} -> {getattr(new, name)!r})"
            for name in RESTART_ONLY
            if name not in pinned and getattr(running, name) != getattr(new, name)
        ]

    async def stop(self, grace_s: float | None = None) -> None:
        # Readiness goes first, so that kubelet takes the pod out of rotation while requests drain;
        # the probe listener closes last, so that /livez answers (and kubelet does not restart the
        # container) for as long as the drain and the span flush take.
        self._readiness = Readiness.DRAINING
        try:
            if self._server is not None:
                await self._server.stop(self.config.server.shutdown_grace_s if grace_s is None else grace_s)
            if self._shared is not None:
                await self._shared.shadow.close()  # shadow calls in flight are only ever extra work
                await self._shared.limits.counters.close()
            if self._session is not None:
                await self._session.close()
            if self._telemetry is not None:
                # Flushing spans may block on the exporter for a moment: not on the event loop.
                await asyncio.to_thread(self._telemetry.shutdown)
        finally:
            if self._probes is not None:
                await self._probes.close()


def _access(config: Config) -> Access:
    tls = config.server.tls
    return Access(
        token=config.auth_token,
        tls=TlsFiles(tls.cert_file, tls.key_file, tls.client_ca_file) if tls is not None else None,
        unix_socket_mode=config.server.unix_socket_mode,
    )


def telemetry_options(
    s: TelemetrySettings, overrides: ListenOverrides = ListenOverrides()
) -> TelemetryOptions:
    """The config's telemetry block as the telemetry package takes it (same names, Prometheus flat),
    with the command line's metrics address, if any, in place of the file's."""
    prometheus = s.prometheus
    o = overrides
    return TelemetryOptions(
        **s.model_dump(exclude={"prometheus"}),
        prometheus=prometheus.enabled,
        prometheus_host=o.metrics_host if o.metrics_host is not None else prometheus.host,
        prometheus_port=o.metrics_port if o.metrics_port is not None else prometheus.port,
    )


def _without_reference(s: TelemetrySettings) -> TelemetrySettings:
    return s.model_copy(update={"reference_model": ""})


async def serve_until_signalled(
    config: Config,
    overrides: ListenOverrides,
    announce: Callable[[str], None] = print,
    reload_interval_s: float | None = None,
) -> None:
    """`turnout serve`: start, wait for SIGTERM/SIGINT, stop.

    While serving, the config file is reloaded when its content changes (polled every
    `reload_interval_s`, default server.reload_interval_s) and on SIGHUP. On SIGTERM/SIGINT the
    sidecar stops accepting, lets in-flight requests finish within server.shutdown_grace_s, and
    returns, so the process exits 0.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sidecar = Sidecar(config, overrides)
    watcher = ConfigWatcher(
        config.source,
        sidecar.reload,
        interval_s=config.server.reload_interval_s if reload_interval_s is None else reload_interval_s,
        follow_config_interval=reload_interval_s is None,
    )
    try:
        await sidecar.start()
        _freeze_startup_heap()
        watcher.start()  # before the announcement: once it is out, SIGHUP reloads
        try:
            where = sidecar.address + (
                f" and unix:{sidecar.server.unix_socket}" if sidecar.server.unix_socket else ""
            )
            announce(
                f"turnout: listening on {where} (config {config.source}); SIGTERM or Ctrl-C stops, "
                "SIGHUP reloads the config"
            )
            await stop.wait()
        finally:
            await watcher.stop()
        grace = sidecar.config.server.shutdown_grace_s
        announce(f"turnout: stopping; in-flight requests have {grace:g}s to finish")
        await sidecar.stop()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _freeze_startup_heap() -> None:
    """Move everything built at start (modules, registry, tokenizers, the OTel SDK) out of the
    cyclic garbage collector's sight, so that a full collection scans only what requests made:
    a scan of the whole startup heap stops the event loop long enough to show in p99.

    Objects frozen here are still freed by reference counting; only cyclic garbage among them
    (a config replaced by a reload, say) is kept, which is small and rare. Then the youngest
    generation's threshold is raised (GC_YOUNG_THRESHOLD, below). Decision 006.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


# The youngest generation is collected after this many more container objects were made than
# freed (CPython's default: 700). A request's objects mostly die by reference counting within
# milliseconds, but many requests in flight keep thousands alive, and at 700 each collection
# scanned them all, every few requests. Decision 006.
GC_YOUNG_THRESHOLD = 10_000
