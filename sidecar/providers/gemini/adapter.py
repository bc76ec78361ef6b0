"""The Gemini transport: POST the codec's body with aiohttp to generateContent, translate what comes back.

All the format knowledge lives in `codec`; this module owns the HTTP exchange and is the edge where
aiohttp and asyncio errors become ProviderError. The API key travels in the `x-goog-api-key` header,
never in the URL's `?key=` (URLs end up in logs, proxies and exception messages); messages are still
scrubbed of it, and foreign exceptions are not chained (`from None`), since aiohttp keeps the request
headers on some of its exceptions.

Streaming uses `:streamGenerateContent?alt=sse`: each event's data is a whole GenerateContentResponse
holding the next piece of text (function calls arrive whole), and the stream simply ends, without a
`[DONE]` sentinel; the last event carries the finish reason and the usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.providers.base import ProviderCall
from sidecar.providers.gemini.codec import decode_chunk, decode_completion, encode_request
from sidecar.providers.gemini.errors import classify_error
from sidecar.providers.shape import parse_json
from sidecar.providers.sse import SSEDecoder, SSEEvent
from sidecar.providers.transport import JsonTransport

API_KEY_HEADER = "x-goog-api-key"


class GeminiAdapter:
    """A ProviderAdapter for the Gemini API under `spec.base_url` (e.g. `.../v1beta`)."""

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession) -> None:
        self._spec = spec
        self._session = session
        self._base = spec.base_url.rstrip("/")
        headers = dict(spec.headers)
        if spec.api_key is not None:
            headers[API_KEY_HEADER] = spec.api_key.reveal()
        self._headers = headers
        self._http = JsonTransport(spec, session, headers, classify_error)

    def __repr__(self) -> str:
        return f"GeminiAdapter(provider={self._spec.name!r}, url={self._base!r})"

    def url(self, upstream_model: str, *, stream: bool) -> str:
        """`{base}/models/{model}:generateContent`, or the SSE stream endpoint."""
        name = quote(upstream_model.removeprefix("models/"), safe="")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self._base}/models/{name}:{method}"

    async def complete(self, call: ProviderCall) -> Completion:
        return await self._http.fetch(call, self._unary, _decode)

    def _unary(self, call: ProviderCall) -> tuple[str, dict[str, Any]]:
        payload = encode_request(call.request, call.model, logprobs=call.logprobs)
        return self.url(call.model.upstream_model, stream=False), payload

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState()
        with self._http.edge(call, interrupted=lambda: state.yielded):
            payload = encode_request(call.request, call.model, logprobs=call.logprobs)
            url = self.url(call.model.upstream_model, stream=True)
            async with self._http.exchange(call, url, payload, accept="text/event-stream") as response:
                decoder = SSEDecoder()
                async for data in response.content.iter_any():
                    for chunk in state.fold(decoder.feed(data)):
                        state.yielded = True
                        yield chunk
                for chunk in state.fold(decoder.close()):
                    state.yielded = True
                    yield chunk
            final = state.final()
        # Outside the exchange: the connection is back in the pool before the caller sees the end.
        yield final


def _decode(body: dict[str, Any], call: ProviderCall) -> Completion:
    return decode_completion(body)


class _StreamState:
    """Folds stream events into content chunks and one final chunk (finish reason + usage).

    Every Gemini event may carry usageMetadata (running totals); the last one seen wins. The final
    chunk is held back until the stream ends, so it carries the usage that came with or after the
    finish reason. A stream that ends without a finish reason was cut short.
    """

    def __init__(self) -> None:
        self.yielded = False
        self._calls = 0
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._model = ""

    def fold(self, events: list[SSEEvent]) -> list[StreamChunk]:
        chunks = []
        for event in events:
            chunk = decode_chunk(parse_json(event.data), first_call=self._calls)
            self._calls += len(chunk.tool_calls)
            self._model = chunk.response_model or self._model
            self._finish = chunk.finish_reason or self._finish
            self._usage = chunk.usage or self._usage
            if chunk.text or chunk.tool_calls or chunk.logprobs:
                chunks.append(
                    StreamChunk(
                        text=chunk.text,
                        tool_calls=chunk.tool_calls,
                        response_model=chunk.response_model,
                        logprobs=chunk.logprobs,
                    )
                )
        return chunks

    def final(self) -> StreamChunk:
        if self._finish is None:
            raise ProviderError(FailureClass.STREAM_INTERRUPTED, "the stream ended without a finish reason")
        finish = self._finish
        if finish is FinishReason.STOP and self._calls:
            finish = FinishReason.TOOL_CALLS  # the calls came in earlier events than the STOP
        return StreamChunk(finish_reason=finish, usage=self._usage, response_model=self._model)
