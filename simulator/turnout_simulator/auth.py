"""API-key auth for the provider routes, answering 401 with OpenAI-shaped error bodies.

Each wire format sends its key its own way: `Authorization: Bearer` (OpenAI and compatibles),
`x-api-key` (Anthropic), `x-goog-api-key` (Gemini), `api-key` (Azure OpenAI); any one is accepted.
The admin API (`/_sim/`) and `/healthz` are a test harness's back door and are not guarded.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from turnout_simulator.errors import WireError

MISSING = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def auth_middleware(api_key: str) -> Middleware:
    expected = api_key.encode()

    @web.middleware
    async def require_key(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(("/_sim/", "/healthz")):
            return await handler(request)
        bearer = request.headers.get("Authorization", "")
        given = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else ""
        for header in ("x-api-key", "x-goog-api-key", "api-key"):
            given = given or request.headers.get(header, "")
        if not given and not bearer:
            raise WireError(401, MISSING)
        if not hmac.compare_digest((given or bearer).encode(), expected):
            shown = (given or bearer)[:6]
            raise WireError(
                401,
                f"Incorrect API key provided: {shown}***. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        return await handler(request)

    return require_key
