"""Bearer-token auth for the OpenAI routes, answering 401 with OpenAI's error bodies.

Only `/v1/` is guarded: the admin API (`/_sim/`) and `/healthz` are a test harness's back door.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from sidecar.simulator.errors import WireError

MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def auth_middleware(api_key: str) -> Middleware:
    expected = f"Bearer {api_key}".encode()

    @web.middleware
    async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        given = request.headers.get("Authorization", "")
        if not given:
            raise WireError(401, MISSING)
        if not hmac.compare_digest(given.encode(), expected):
            shown = given.removeprefix("Bearer ")[:6]
            raise WireError(
                401,
                f"Incorrect API key provided: {shown}***. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return await handler(request)

    return require_key
