"""HTTP targets for the load generator: OpenAI chat completions, unary or streamed (SSE).

The same driver as benchmarks/loadgen.py (closed loop at a concurrency, or open loop at a fixed
rate), in its own process, printing one JSON line. It sends one request body to
`<base_url>/chat/completions` over keep-alive connections (aiohttp) and checks each answer: a 200
with a message for unary calls; for streams, a first content token (its time is the TTFT) and the
closing `data: [DONE]`. A bearer token, when the target wants one, comes from the environment
variable LOADGEN_API_KEY, never from the command line (where `ps` would show it); other headers a
target needs (Portkey's routing config) are given with --header.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

import aiohttp

from benchmarks.loadgen import Call, add_load_arguments, drive

API_KEY_ENV = "LOADGEN_API_KEY"


def first_content(line: bytes) -> bool:
    """Whether an SSE line is a chunk carrying answer text (the first such one marks the TTFT)."""
    if not line.startswith(b"data:") or b'"content"' not in line:
        return False
    payload = line[5:].strip()
    if payload == b"[DONE]":
        return False
    chunk = json.loads(payload)
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or ())


async def run_http(
    base_url: str, body: dict[str, Any], stream: bool, args: argparse.Namespace
) -> dict[str, Any]:
    url = base_url.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    for header in getattr(args, "header", None) or ():
        name, _, value = header.partition(":")
        headers[name.strip()] = value.strip()
    key = os.environ.get(API_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    payload = json.dumps({**body, "stream": stream}).encode()
    timeout = aiohttp.ClientTimeout(total=30)
    # No cap on connections: the load shape (workers, or the rate) decides how many are open.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:

        async def unary() -> float | None:
            async with session.post(url, data=payload) as response:
                raw = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {raw[:200]!r}")
            answer = json.loads(raw)
            if not answer["choices"][0]["message"].get("content"):
                raise RuntimeError("an empty answer")
            return None

        async def streamed() -> float | None:
            t0 = time.perf_counter()
            ttft: float | None = None
            done = False
            async with session.post(url, data=payload) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
                async for line in response.content:
                    if ttft is None and first_content(line):
                        ttft = time.perf_counter() - t0
                    done = done or line.strip() == b"data: [DONE]"
            if ttft is None or not done:
                raise RuntimeError("a stream without a first token or without data: [DONE]")
            return ttft

        call: Call = streamed if stream else unary
        return await drive(call, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8400/v1")
    parser.add_argument("--body", required=True, help="the chat completion request as JSON (file)")
    parser.add_argument("--stream", action="store_true", help="ask for SSE and measure time to first token")
    parser.add_argument("--header", action="append", help="'Name: value', sent with every request")
    add_load_arguments(parser)
    args = parser.parse_args()
    with open(args.body, encoding="utf-8") as f:
        body = json.load(f)
    print(json.dumps(asyncio.run(run_http(args.base_url, body, args.stream, args))))


if __name__ == "__main__":
    main()
