"""Composition root: the only module that names concrete classes, and the start/stop order.

start: HTTP session -> adapters -> health -> executor -> policy -> pipeline -> gRPC server
stop:  gRPC server (graceful) -> HTTP session
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from sidecar.config import Config
from sidecar.execution.executor import Executor
from sidecar.pipeline import Pipeline
from sidecar.policy.rules import RulesPolicy
from sidecar.providers.factory import build_adapter
from sidecar.providers.http import make_session
from sidecar.registry.health import HealthTracker
from sidecar.server.serve import GrpcServer, Listen
from sidecar.server.servicer import RouterServicer, Runtime
from sidecar.simulator.config import load_simulator_config
from sidecar.simulator.server import start_simulator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ListenOverrides:
    host: str | None = None
    port: int | None = None
    unix_socket: str | None = None


class Sidecar:
    """One running sidecar: build with a Config, `await start()`, `await stop()`."""

    def __init__(self, config: Config, overrides: ListenOverrides = ListenOverrides()) -> None:
        self.config = config
        self._overrides = overrides
        self.health = HealthTracker()
        self._session: aiohttp.ClientSession | None = None
        self._server: GrpcServer | None = None
        self._runtime: Runtime | None = None

    @property
    def address(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.address

    @property
    def server(self) -> GrpcServer:
        assert self._server is not None, "start() first"
        return self._server

    async def start(self) -> None:
        config = self.config
        self._session = make_session()
        adapters = {name: build_adapter(spec, self._session) for name, spec in config.providers.items()}
        executor = Executor(adapters, config.providers, observers=[self.health.observe])
        policy = RulesPolicy(config.routes, config.default_route, config.registry)
        self._runtime = Runtime(Pipeline(policy, executor), config.registry)
        servicer = RouterServicer(
            self.runtime,
            self.health,
            max_request_bytes=int(config.server.max_request_mb * 1024 * 1024),
            default_timeout_s=config.server.default_timeout_s,
        )
        o = self._overrides
        listen = Listen(
            host=o.host if o.host is not None else config.server.host,
            port=o.port if o.port is not None else config.server.port,
            unix_socket=o.unix_socket if o.unix_socket is not None else config.server.unix_socket,
            max_request_bytes=int(config.server.max_request_mb * 1024 * 1024),
        )
        try:
            self._server = GrpcServer(servicer, listen)
            await self._server.start()
        except BaseException:
            await self._session.close()
            raise

    def runtime(self) -> Runtime:
        assert self._runtime is not None, "start() first"
        return self._runtime

    async def stop(self, grace_s: float | None = None) -> None:
        if self._server is not None:
            await self._server.stop(self.config.server.shutdown_grace_s if grace_s is None else grace_s)
        if self._session is not None:
            await self._session.close()


async def serve_until_signalled(
    config: Config,
    overrides: ListenOverrides,
    simulator: SimulatorOption | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """`turnout serve`: start (with the embedded simulator if asked), wait for SIGTERM/SIGINT, stop.

    On the signal the sidecar stops accepting, lets in-flight requests finish within
    server.shutdown_grace_s, and returns, so the process exits 0.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sim = None
    if simulator is not None:
        sim_config = load_simulator_config(simulator.config_path)
        try:
            sim = await start_simulator(sim_config, "127.0.0.1", simulator.port)
        except OSError as exc:
            raise OSError(
                f"cannot start the simulator on 127.0.0.1:{simulator.port}: {exc.strerror}"
            ) from None
        announce(f"simulator: serving the OpenAI wire format at {sim.base_url}")
    sidecar = Sidecar(config, overrides)
    try:
        await sidecar.start()
        where = sidecar.address + (
            f" and unix:{sidecar.server.unix_socket}" if sidecar.server.unix_socket else ""
        )
        announce(f"turnout: listening on {where} (config {config.source}); SIGTERM or Ctrl-C stops")
        await stop.wait()
        grace = config.server.shutdown_grace_s
        announce(f"turnout: stopping; in-flight requests have {grace:g}s to finish")
        await sidecar.stop()
    finally:
        if sim is not None:
            await sim.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


@dataclass(frozen=True, slots=True)
class SimulatorOption:
    config_path: str
    port: int
