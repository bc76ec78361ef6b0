"""Assemble the simulator's aiohttp app and run it: in-process for tests, or until a signal for the CLI.

Shutdown is prompt even with hung requests in flight: the app's on_shutdown hook releases every hanging
handler (they are held in an owned set, see hangs.py), and the runner cancels whatever is still
running after SHUTDOWN_GRACE_S. Handler cancellation is on, so a client that hangs up also ends its
handler at once instead of leaving it parked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web
from aiohttp.typedefs import Middleware

from turnout_simulator.admin import add_admin_routes
from turnout_simulator.anthropic_wire import messages
from turnout_simulator.auth import auth_middleware
from turnout_simulator.bedrock_wire import add_bedrock_routes
from turnout_simulator.config import SimulatorConfig
from turnout_simulator.errors import error_middleware
from turnout_simulator.gemini_wire import add_gemini_routes
from turnout_simulator.openai_wire import chat_completions, list_models
from turnout_simulator.state import STATE, SimState, Sleep

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 1.0
MAX_BODY_BYTES = 64 * 1024 * 1024  # room for prompts that overflow a 1M-token context window
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def build_app(
    config: SimulatorConfig,
    *,
    rng: random.Random | None = None,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """The whole simulator as an aiohttp app; `rng`, `sleep` and `clock` default to seeded/real ones."""
    middlewares: list[Middleware] = [error_middleware]  # outermost: turns WireError into a response
    if config.api_key is not None:
        middlewares.append(auth_middleware(config.api_key))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[STATE] = SimState.create(config, rng=rng, sleep=sleep, clock=clock)
    app.router.add_post("/v1/chat/completions", chat_completions)
    # Azure OpenAI's paths to the same API: the v1 path, and the deployment path (the body names the model).
    app.router.add_post("/openai/v1/chat/completions", chat_completions)
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/messages", messages)
    add_gemini_routes(app)
    add_bedrock_routes(app)
    add_admin_routes(app)
    app.on_shutdown.append(_release_hangs)
    return app


async def _release_hangs(app: web.Application) -> None:
    app[STATE].hangs.release_all()


class Simulator:
    """A running simulator. Use `base_url` as an OpenAI client's base URL; `close()` when done."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self._runner = runner
        self._closed = False
        self.host = host
        self.port = port

    @property
    def root_url(self) -> str:
        """The server's root, where the admin API (`/_sim/...`) and `/healthz` live."""
        host = "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def state(self) -> SimState:
        """The live state (stats, faults), for in-process tests that would rather not go over HTTP."""
        return self._runner.app[STATE]

    async def close(self) -> None:
        """Stop listening and end every request in flight, hung ones included; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def start_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0, *, rng: random.Random | None = None
) -> Simulator:
    """Serve the simulator on host:port (port 0 picks a free one) and return once it is listening."""
    runner = web.AppRunner(
        build_app(config, rng=rng),
        handler_cancellation=True,
        shutdown_timeout=SHUTDOWN_GRACE_S,
        access_log=None,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = int(runner.addresses[0][1])
    return Simulator(runner, host, bound_port)


async def serve_forever(
    config: SimulatorConfig,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Callable[[Simulator], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM (or until `stop` is set), then close cleanly.

    `on_ready` is called once the port is bound, e.g. for the CLI to print the base URL.
    """
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    simulator = await start_simulator(config, host, port)
    installed: list[signal.Signals] = []
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop.set)
            except (NotImplementedError, RuntimeError):  # not on Windows, not outside the main thread
                continue
            installed.append(signum)
        logger.info("simulator listening on %s", simulator.base_url)
        if on_ready is not None:
            on_ready(simulator)
        await stop.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        await simulator.close()
