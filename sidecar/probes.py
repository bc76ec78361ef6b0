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
header sizes (below), and a request it cannot parse gets a constant 400 and a debug log line
(sidecar/listener.py); each answer is a few constant bytes, so a client cannot make the loop work.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from http import HTTPStatus

from aiohttp import web

from sidecar.listener import bound_port, listen, url

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
        return url(self.host, self.port)

    async def start(self) -> None:
        self._runner = await listen(
            self._answer,
            _refusal,
            self.host,
            self.port,
            "probes",
            "server.probe_host / server.probe_port, or --probe-host / --probe-port",
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
            keepalive_timeout=KEEPALIVE_S,
            lingering_time=0,  # a request body is never read: the connection closes instead
            access_log=None,  # a probe every few seconds in every pod is not worth a log line
        )
        self.port = bound_port(self._runner)

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


def _refusal(status: int, exc: BaseException | None) -> web.Response:
    return _plain(status, HTTPStatus(status).phrase.lower())


def _plain(status: int, word: str, allow: str = "") -> web.Response:
    # A Server header of our own, so that aiohttp's default does not tell the world its version.
    headers = {"Server": "turnout", "Cache-Control": "no-store"} | ({"Allow": allow} if allow else {})
    return web.Response(status=status, text=word + "\n", headers=headers)
