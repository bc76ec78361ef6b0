"""An aiohttp low-level listener that refuses what it cannot parse quietly (the probes and the HTTP API).

aiohttp's own answer to a request it cannot parse (too long a header, a malformed line) quotes up
to 100 bytes of the request and logs an ERROR with a traceback for each: anyone who can reach the
port could fill the log. Here such a request gets the listener's constant refusal, a debug line,
and its connection closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
# The answer to an unparsable request, given its HTTP status and what aiohttp raised (None when it
# gave no reason); it must quote nothing of the request.
Refusal = Callable[[int, BaseException | None], web.Response]


async def listen(
    handler: Handler, refusal: Refusal, host: str, port: int, what: str, settings: str, **options: Any
) -> web.ServerRunner:
    """Serve `handler` on host:port (0: a free one); `options` go to aiohttp's RequestHandler
    (and `handler_cancellation` to its Server). An OSError says `what` could not listen and names
    the `settings` that chose the address."""
    server = _Server(handler, refusal, **options)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(
            f"cannot listen for {what} on {host}:{port} ({settings}): {exc.strerror or exc}"
        ) from None
    return runner


def bound_port(runner: web.ServerRunner) -> int:
    return int(runner.addresses[0][1])


def url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(web.Server):
    """aiohttp's low-level server, its connections handled by _Quiet."""

    def __init__(self, handler: Handler, refusal: Refusal, **options: Any) -> None:
        super().__init__(handler, **options)
        self._options = {k: v for k, v in options.items() if k != "handler_cancellation"}
        self._refusal = refusal

    def __call__(self) -> RequestHandler:  # the protocol factory the listening socket calls
        return _Quiet(self, self._refusal, loop=asyncio.get_running_loop(), **self._options)


class _Quiet(RequestHandler):
    def __init__(self, manager: web.Server, refusal: Refusal, **options: Any) -> None:
        super().__init__(manager, **options)
        self._refusal = refusal

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        log.debug("refused a request from %s: %s", request.remote, type(exc).__name__)
        if request.writer.output_size > 0:  # as aiohttp does: an answer is already on its way
            raise ConnectionError("the response was sent already")
        response = self._refusal(status, exc)
        response.force_close()
        return response
