"""OpenAI-style errors: the exception handlers raise, and the middleware that turns it into a response.

Every error the simulator sends has OpenAI's body, `{"error": {message, type, param, code}}`, so a
client's error handling sees what it would see from the real provider.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler


def error_body(
    message: str, kind: str, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class WireError(Exception):
    """A request that ends in an HTTP error with an OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        body = error_body(self.message, self.kind, self.param, self.code)
        return web.json_response(body, status=self.status, headers=self.headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate WireError, and aiohttp's own 404/405, into OpenAI-style error responses."""
    try:
        return await handler(request)
    except WireError as exc:
        return exc.response()
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
        message = f"Invalid URL ({request.method} {request.path})"
        return web.json_response(error_body(message, "invalid_request_error"), status=exc.status)
