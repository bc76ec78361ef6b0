"""The OpenAI Chat Completions transport: POST the codec's body with aiohttp, translate what comes back.

All the format knowledge lives in `codec`; this module owns the HTTP exchange and is the edge where
aiohttp and asyncio errors become ProviderError. Messages are scrubbed of the credentials before
they leave, and foreign exceptions are not chained (`from None`): aiohttp keeps the request
headers, Authorization included, on some of its exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.providers.base import ProviderCall
from sidecar.providers.openai.codec import decode_chunk, decode_completion, encode_request
from sidecar.providers.openai.dialects import dialect_for
from sidecar.providers.openai.errors import classify_error
from sidecar.providers.shape import parse_json
from sidecar.providers.sse import SSEDecoder, SSEEvent
from sidecar.providers.transport import JsonTransport


class OpenAIAdapter:
    """A ProviderAdapter for any endpoint that speaks OpenAI Chat Completions under `spec.base_url`."""

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession) -> None:
        self._spec = spec
        self._session = session
        self._dialect = dialect_for(spec)
        self._url = spec.base_url.rstrip("/")  # for display; each call's URL comes from the dialect
        headers = dict(spec.headers)
        if spec.api_key is not None:
            headers[self._dialect.auth_header] = f"{self._dialect.auth_prefix}{spec.api_key.reveal()}"
        self._headers = headers
        self._http = JsonTransport(spec, session, headers, classify_error)

    def __repr__(self) -> str:
        return (
            f"OpenAIAdapter(provider={self._spec.name!r}, dialect={self._dialect.name!r}, url={self._url!r})"
        )

    async def complete(self, call: ProviderCall) -> Completion:
        return await self._http.fetch(call, self._unary, _decode)

    def _unary(self, call: ProviderCall) -> tuple[str, dict[str, Any]]:
        payload = encode_request(
            call.request, call.model, stream=False, logprobs=call.logprobs, dialect=self._dialect
        )
        return self._dialect.url(self._spec, call.model), payload

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState()
        with self._http.edge(call, interrupted=lambda: state.yielded):
            payload = encode_request(
                call.request, call.model, stream=True, logprobs=call.logprobs, dialect=self._dialect
            )
            async with self._http.exchange(
                call, self._dialect.url(self._spec, call.model), payload, accept="text/event-stream"
            ) as response:
                decoder = SSEDecoder()
                async for data in response.content.iter_any():
                    for chunk in state.fold(decoder.feed(data)):
                        state.yielded = True
                        yield chunk
                    if state.done:
                        break
                else:
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

    A content chunk is one with text, tool-call fragments, refusal fragments or token logprobs.

    OpenAI sends the finish reason, then (with include_usage) a usage-only chunk, then `[DONE]`; the
    final chunk is held back until the end so that it carries both.
    """

    def __init__(self) -> None:
        self.done = False
        self.yielded = False
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None
        self._model = ""

    def fold(self, events: list[SSEEvent]) -> list[StreamChunk]:
        """The content chunks these events carry; finish reason and usage are kept for `final`."""
        chunks = []
        for event in events:
            chunk = None if self.done else self._on_event(event)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _on_event(self, event: SSEEvent) -> StreamChunk | None:
        if event.data.strip() == "[DONE]":
            self.done = True
            return None
        body = parse_json(event.data)
        chunk = decode_chunk({"error": body} if event.event == "error" and "error" not in body else body)
        self._model = chunk.response_model or self._model
        self._finish = chunk.finish_reason or self._finish
        self._usage = chunk.usage or self._usage
        if not (chunk.text or chunk.tool_calls or chunk.refusal or chunk.logprobs):
            return None
        return StreamChunk(
            text=chunk.text,
            tool_calls=chunk.tool_calls,
            response_model=chunk.response_model,
            refusal=chunk.refusal,
            logprobs=chunk.logprobs,
        )

    def final(self) -> StreamChunk:
        if self._finish is None and not self.done:
            raise ProviderError(
                FailureClass.STREAM_INTERRUPTED, "the stream ended without a finish reason or [DONE]"
            )
        return StreamChunk(
            finish_reason=self._finish or FinishReason.UNKNOWN, usage=self._usage, response_model=self._model
        )
