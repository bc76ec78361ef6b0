"""How each fault looks on the wire: error statuses and headers, broken JSON, cut and hung connections.

A cut is made by closing the transport and then returning the response as usual: aiohttp's attempt to
finish it fails with a ConnectionError, which it treats as a client that went away, so nothing is
logged as a server error and the connection is not reused.
"""

from __future__ import annotations

import math

from aiohttp import web

from turnout_simulator.config import FaultKind, FaultSpec
from turnout_simulator.errors import WireError
from turnout_simulator.hangs import HangingRequests


def error_for(fault: FaultSpec, model: str) -> WireError | None:
    """The HTTP error a fault answers with, or None for faults that are not a plain error status."""
    if fault.kind is FaultKind.RATE_LIMIT:
        wait = fault.retry_after_s
        return WireError(
            429,
            f"Rate limit reached for {model} (simulated). Please try again in {wait:g}s.",
            kind="rate_limit_exceeded",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(round(wait * 1000))},
        )
    if fault.kind is FaultKind.SERVER_ERROR:
        return WireError(
            500,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            kind="server_error",
        )
    if fault.kind is FaultKind.OVERLOADED:
        return WireError(
            503,
            "The engine is currently overloaded, please try again later. (simulated)",
            kind="server_error",
            code="overloaded",
        )
    return None


async def hang(request: web.Request, hangs: HangingRequests) -> web.StreamResponse:
    """Never answer: wait until the client goes away (this handler is cancelled) or shutdown."""
    await hangs.hold()
    return drop(request, web.Response(status=503))


def malformed(body: bytes) -> bytes:
    """A JSON document cut in half: valid UTF-8 and plausible, but not parseable."""
    return body[: max(len(body) // 2, 1)]


async def send_cut_body(request: web.Request, body: bytes) -> web.StreamResponse:
    """Promise the whole body in Content-Length, send half of it, then close the connection."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    return drop(request, response)


def drop(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Close the connection now (after flushing what was written); aiohttp then abandons `response`."""
    if request.transport is not None:
        request.transport.close()
    return response
