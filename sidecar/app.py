"""Composition root: the sidecar's parts, named here (and in runtime.py) only, and their start/stop order.

start:  telemetry -> HTTP session -> health, shared counters
        -> runtime (adapters -> executor -> policy -> pipeline)
        -> limits heartbeat (shared rates and health, when on) -> gRPC server
        -> HTTP front door (when server.http_port) -> probe listener (/readyz 200)
        -> config watcher (process.serve_until_signalled)
reload: runtime rebuilt from the new file on the same session, health and telemetry, swapped in whole
stop:   config watcher -> /readyz 503 "draining" -> gRPC server and HTTP front door (graceful,
        side by side) -> limits heartbeat -> shared counters (sends what is unsent)
        -> HTTP session -> telemetry (flushes spans) -> probe listener (/livez answers until here)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
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
from sidecar.http_api.server import HttpApi
from sidecar.policy.health import HealthTracker
from sidecar.probes import ProbeListener, Readiness
from sidecar.providers.session import make_session
from sidecar.reload import ReloadResult
from sidecar.runtime import Shared, build_runtime
from sidecar.server.access import Access, TlsFiles
from sidecar.server.serve import GrpcServer, Listen
from sidecar.server.servicer import RouterServicer, Runtime
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
    "http_host",
    "http_port",
    "http_auth_token_env",
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
    http_host: str | None = None
    http_port: int | None = None  # 0 turns the HTTP front door off, as server.http_port does


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
        self._http: HttpApi | None = None
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
    def http(self) -> HttpApi | None:
        """The HTTP front door once started; None while server.http_port is unset or 0."""
        return self._http

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
        self._shared.heartbeat.start()
        telemetry.watch(self._shared.breakers.states, self._queue_depths)
        telemetry.watch_shadow(self._shadow_agreements)
        board = self._shared.limits
        telemetry.watch_limits(board.store_up, board.spend, board.escalation_shares)
        servicer = RouterServicer(
            self.runtime,
            self.health,
            max_request_bytes=int(config.server.max_request_mb * 1024 * 1024),
            default_timeout_s=config.server.default_timeout_s,
            budgets=board.report,
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
            self._http = await self._start_http(config)
            self._readiness = Readiness.SERVING
            # The probe listener starts after the gRPC server, not before: start-up work runs on
            # the event loop without yielding, so an earlier listener could not answer "starting"
            # anyway, and kubelet counts a refused connection as a failed probe just the same.
            # Started here, its first answer is true, and an open probe port means the API serves.
            self._probes = await self._start_probes(config.server)
        except BaseException:
            if self._http is not None:
                await self._http.close()
                self._http = None
            if self._server is not None:
                await self._server.stop(0)
                self._server = None
            await self._shared.heartbeat.close()
            await self._shared.limits.counters.close()
            await self._session.close()
            telemetry.shutdown()
            raise

    async def _start_http(self, config: Config) -> HttpApi | None:
        o, settings = self._overrides, config.server
        port = o.http_port if o.http_port is not None else settings.http_port
        if not port:
            return None
        http = HttpApi(
            self.runtime,
            lambda: self.config.routes.keys(),
            lambda: self._readiness is Readiness.SERVING,
            host=o.http_host if o.http_host is not None else settings.http_host,
            port=port,
            token=config.http_auth_token,
            max_request_bytes=int(settings.max_request_mb * 1024 * 1024),
            default_timeout_s=settings.default_timeout_s,
        )
        await http.start()
        log.info("HTTP front door (OpenAI and Anthropic APIs) at %s/v1", http.url)
        return http

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
        if o.http_port is not None:
            server = server.model_copy(update={"http_port": o.http_port})
        problems = exposure_problems(
            server,
            o.host if o.host is not None else server.host,
            prometheus,
            o.metrics_host if o.metrics_host is not None else prometheus.host,
            host_field="--host" if o.host is not None else "server.host",
            metrics_field="--metrics-host" if o.metrics_host is not None else "telemetry.prometheus.host",
            allow_remote_metrics=bool(o.allow_remote_metrics),
            http_host=o.http_host,
            http_field="--http-host" if o.http_host is not None else "server.http_host",
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
        grace = self.config.server.shutdown_grace_s if grace_s is None else grace_s
        try:
            stopping = [self._server.stop(grace)] if self._server is not None else []
            if self._http is not None:
                stopping.append(self._http.close(grace))
            await asyncio.gather(*stopping)
            if self._shared is not None:
                await self._shared.shadow.close()  # shadow calls in flight are only ever extra work
                await self._shared.heartbeat.close()
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
