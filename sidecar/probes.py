"""The probe listener: a tiny HTTP server that answers kubelet's liveness and readiness probes.

Why HTTP on a port of its own: kubelet's HTTP and gRPC probes connect to the pod IP, but the gRPC
API listens on loopback only (the routing API is never on the network), and an exec probe would
start a Python process (grpc import, ~0.3-0.5 s of CPU) every period in every pod. This listener
may bind the pod IP and says nothing but status words, so exposing it exposes no API.

It runs on the sidecar's event loop on purpose: a loop that is wedged cannot answer /livez, so
kubelet restarts the container.

    GET|HEAD /livez    200 "ok" while the event loop answers
    GET|HEAD /readyz   200 "ok" while the gRPC server serves; 503 "starting" before, "draining" after
    GET|HEAD /startupz the same as /readyz (for a startupProbe)
    any other path     404;  any other method on these paths  405

Bounded: no request body is read and no request data is echoed; aiohttp caps the request line and
header sizes (below), and a request it cannot parse gets a constant 400 and a debug log line (not
aiohttp's error with a traceback and a quote of the request); each answer is a few constant bytes,
so a client cannot make the loop work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import Enum
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

# Kubelet sends a request line and a handful of short headers; anything larger is refused (400).
MAX_LINE_BYTES = 1024
MAX_FIELD_BYTES = 1024
MAX_HEADERS = 32
KEEPALIVE_S = 5.0  # kubelet opens a connection per probe; an idle one is not kept long
PATHS = frozenset({"/livez", "/readyz", "/startupz"})


class Readiness(Enum):
    """The sidecar's phase as /readyz reports it; the value is the body word."""

    STARTING = "starting"
    SERVING = "ok"
    DRAINING = "draining"


class ProbeListener:
    """`await start()` binds host:port (0: a free one, see `port`); `await close()` stops it.

    `readiness` is asked on every /readyz: the sidecar owns its phase, the listener only reports it.
    """

    def __init__(self, host: str, port: int, readiness: Callable[[], Readiness]) -> None:
        self.host = host
        self.port = port
        self._readiness = readiness
        self._runner: web.ServerRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        server = _Server(
            self._answer,
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
            keepalive_timeout=KEEPALIVE_S,
            lingering_time=0,  # a request body is never read: the connection closes instead
            access_log=None,  # a probe every few seconds in every pod is not worth a log line
        )
        runner = web.ServerRunner(server, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                f"cannot listen for probes on {self.host}:{self.port} (server.probe_host / "
                f"server.probe_port, or --probe-host / --probe-port): {exc.strerror or exc}"
            ) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.BaseRequest) -> web.Response:
        if request.path not in PATHS:
            return _plain(404, "not found")
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "method not allowed", allow="GET, HEAD")
        if request.path == "/livez":
            return _plain(200, "ok")
        readiness = self._readiness()
        return _plain(200 if readiness is Readiness.SERVING else 503, readiness.value)


class _Server(web.Server):
    """aiohttp's low-level server, its connections handled by _Quiet."""

    def __init__(self, handler: Callable[[web.BaseRequest], Awaitable[web.Response]], **options: Any) -> None:
        super().__init__(handler, **options)
        self._options = options

    def __call__(self) -> RequestHandler:  # the protocol factory the listening socket calls
        return _Quiet(self, loop=asyncio.get_running_loop(), **self._options)


class _Quiet(RequestHandler):
    """Answers a request aiohttp refuses (too long, malformed) with a constant body.

    aiohttp's own answer quotes up to 100 bytes of the request and logs an ERROR with a traceback:
    on a port open to the pod network, anyone could fill the log. See the oversized-header test.
    """

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        log.debug("probes: refused a request from %s: %s", request.remote, type(exc).__name__)
        if request.writer.output_size > 0:  # as aiohttp does: an answer is already on its way
            raise ConnectionError("the response was sent already")
        response = _plain(status, HTTPStatus(status).phrase.lower())
        response.force_close()
        return response


def _plain(status: int, word: str, allow: str = "") -> web.Response:
    # A Server header of our own, so that aiohttp's default does not tell the world its version.
    headers = {"Server": "turnout", "Cache-Control": "no-store"} | ({"Allow": allow} if allow else {})
    return web.Response(status=status, text=word + "\n", headers=headers)
