"""The least an aiohttp proxy can do: the floor under any Python HTTP front door's added latency.

It reads the body, POSTs it unchanged to `<upstream>/chat/completions` over one pooled session, and
answers with the upstream's bytes: no parsing, no routing, no fallback, no telemetry. Run by
benchmarks/http_floor.py beside Turnout's HTTP front door on the same workload, so that the part of
Turnout's added latency that is the platform's (two more loopback sends, the proxy's own wake-ups)
is measured, not guessed.

    python -m benchmarks.passthrough_proxy PORT UPSTREAM_BASE_URL
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from aiohttp import web


async def serve(port: int, upstream: str) -> None:
    url = upstream.rstrip("/") + "/chat/completions"
    async with aiohttp.ClientSession() as session:

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            body = await request.read()
            headers = {"Content-Type": "application/json"}
            async with session.post(url, data=body, headers=headers) as upstream_response:
                data = await upstream_response.read()
                status = upstream_response.status
            return web.Response(body=data, status=status, content_type="application/json")

        runner = web.ServerRunner(web.Server(handle), handle_signals=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
