"""The Anthropic Messages API transport: POST the codec's body with aiohttp, translate what comes back.

All the format knowledge lives in `codec`; this module owns the HTTP exchange and is the edge where
aiohttp and asyncio errors become ProviderError. It follows the OpenAI adapter step for step (same
pooling, timeouts, close-on-error and secret scrubbing); what differs is the path, the headers
(`x-api-key`, `anthropic-version`) and the stream, which ends with `message_stop` instead of `[DONE]`.
Foreign exceptions are not chained (`from None`): aiohttp keeps the request headers, the key
included, on some of its exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.domain.response import Completion, StreamChunk
from sidecar.providers.anthropic.codec import (
    StreamDecoder,
    decode_completion,
    encode_request,
    output_tool_name,
)
from sidecar.providers.anthropic.errors import classify_error
from sidecar.providers.base import ProviderCall
from sidecar.providers.shape import parse_json
from sidecar.providers.sse import SSEDecoder, SSEEvent
from sidecar.providers.transport import JsonTransport

MESSAGES_PATH = "/messages"
DEFAULT_API_VERSION = "2023-06-01"


class AnthropicAdapter:
    """A ProviderAdapter for the Anthropic Messages API under `spec.base_url` (e.g. .../v1).

    `spec.option("api_version")` sets the `anthropic-version` header (default 2023-06-01).
    """

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession) -> None:
        self._spec = spec
        self._session = session
        self._url = spec.base_url.rstrip("/") + MESSAGES_PATH
        headers = dict(spec.headers)
        headers["anthropic-version"] = spec.option("api_version", DEFAULT_API_VERSION)
        if spec.api_key is not None:
            headers["x-api-key"] = spec.api_key.reveal()
        self._headers = headers
        self._http = JsonTransport(spec, session, headers, classify_error)

    def __repr__(self) -> str:
        return f"AnthropicAdapter(provider={self._spec.name!r}, url={self._url!r})"

    async def complete(self, call: ProviderCall) -> Completion:
        return await self._http.fetch(call, self._unary, _decode)

    def _unary(self, call: ProviderCall) -> tuple[str, dict[str, Any]]:
        return self._url, encode_request(call.request, call.model, stream=False)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState(StreamDecoder(output_tool=output_tool_name(call.request)))
        with self._http.edge(call, interrupted=lambda: state.yielded):
            payload = encode_request(call.request, call.model, stream=True)
            async with self._http.exchange(call, self._url, payload, accept="text/event-stream") as response:
                decoder = SSEDecoder()
                async for data in response.content.iter_any():
                    for chunk in state.fold(decoder.feed(data)):
                        state.yielded = True
                        yield chunk
                    if state.decoder.done:
                        break
                else:
                    for chunk in state.fold(decoder.close()):
                        state.yielded = True
                        yield chunk
            final = state.decoder.final()
        # Outside the exchange: the connection is back in the pool before the caller sees the end.
        yield final


def _decode(body: dict[str, Any], call: ProviderCall) -> Completion:
    return decode_completion(body, output_tool=output_tool_name(call.request))


class _StreamState:
    """Feeds SSE events to the codec's StreamDecoder; nothing after message_stop is read."""

    def __init__(self, decoder: StreamDecoder) -> None:
        self.decoder = decoder
        self.yielded = False

    def fold(self, events: list[SSEEvent]) -> list[StreamChunk]:
        chunks = []
        for event in events:
            if self.decoder.done:
                break
            body = parse_json(event.data)
            if event.event == "error" and body.get("type") != "error":
                body = {"type": "error", "error": body.get("error", body)}
            chunk = self.decoder.feed(body)
            if chunk is not None:
                chunks.append(chunk)
        return chunks
