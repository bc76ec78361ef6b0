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

import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.providers.base import ProviderCall
from sidecar.providers.gemini.codec import decode_chunk, decode_completion, encode_request, parse_json
from sidecar.providers.gemini.errors import classify_error
from sidecar.providers.http import call_timeout
from sidecar.providers.sse import SSEDecoder, SSEError, SSEEvent

API_KEY_HEADER = "x-goog-api-key"
MAX_ERROR_BODY_BYTES = 64 * 1024
LARGE_BODY_BYTES = 1024 * 1024
_MAX_DETAIL_CHARS = 300
_SENSITIVE_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")
_REDACTED = "********"


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
        secrets = [v for k, v in spec.headers if any(w in k.lower() for w in _SENSITIVE_HEADER_WORDS)]
        if spec.api_key is not None:
            secrets.append(spec.api_key.reveal())
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"GeminiAdapter(provider={self._spec.name!r}, url={self._base!r})"

    def url(self, upstream_model: str, *, stream: bool) -> str:
        """`{base}/models/{model}:generateContent`, or the SSE stream endpoint."""
        name = quote(upstream_model.removeprefix("models/"), safe="")
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"{self._base}/models/{name}:{method}"

    async def complete(self, call: ProviderCall) -> Completion:
        with self._edge(call):
            payload = encode_request(call.request, call.model, logprobs=call.want_logprobs)
            url = self.url(call.model.upstream_model, stream=False)
            async with self._exchange(call, url, payload, accept="application/json") as response:
                raw = await response.read()
            return decode_completion(parse_json(raw))

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState()
        with self._edge(call, interrupted=lambda: state.yielded):
            payload = encode_request(call.request, call.model, logprobs=call.want_logprobs)
            url = self.url(call.model.upstream_model, stream=True)
            async with self._exchange(call, url, payload, accept="text/event-stream") as response:
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

    @contextlib.asynccontextmanager
    async def _exchange(
        self, call: ProviderCall, url: str, payload: dict[str, Any], *, accept: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and hand over a 2xx response; close it on any error or cancellation, else release it."""
        try:
            data = json.dumps(payload, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:  # e.g. a set inside a tool's parameter schema
            raise ProviderError(
                FailureClass.BAD_REQUEST, f"the request is not JSON-encodable ({exc})"
            ) from None
        response = await self._session.post(
            url,
            data=io.BytesIO(data) if len(data) > LARGE_BODY_BYTES else data,
            headers={**self._headers, "Accept": accept, "Content-Type": "application/json"},
            timeout=call_timeout(call.timeout_s, self._spec),
        )
        try:
            if not 200 <= response.status < 300:
                body = await _read_capped(response, MAX_ERROR_BODY_BYTES)
                raise classify_error(response.status, body, response.headers)
            yield response
        except BaseException:
            response.close()  # drop the connection: an unread or broken body must not be reused
            raise
        response.release()

    @contextlib.contextmanager
    def _edge(self, call: ProviderCall, interrupted: Callable[[], bool] = lambda: False) -> Iterator[None]:
        """Translate everything foreign into ProviderError; let cancellation through untouched."""
        try:
            yield
        except ProviderError as err:
            raise self._scrubbed(err) from None
        except TimeoutError as exc:  # aiohttp's ServerTimeoutError family derives from it
            limit = min(call.timeout_s, self._spec.request_timeout_s)
            raise self._failure(FailureClass.TIMEOUT, f"no complete answer within {limit:g}s", exc) from None
        except (aiohttp.ClientError, OSError) as exc:
            if interrupted():
                raise self._failure(FailureClass.STREAM_INTERRUPTED, "the stream broke off", exc) from None
            raise self._failure(FailureClass.CONNECTION, "the connection failed", exc) from None
        except SSEError as exc:
            raise self._failure(FailureClass.MALFORMED_RESPONSE, "not an event stream", exc) from None

    def _failure(self, cls: FailureClass, what: str, exc: BaseException) -> ProviderError:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ProviderError(cls, self._redact(f"{what} ({detail[:_MAX_DETAIL_CHARS]})"))

    def _scrubbed(self, err: ProviderError) -> ProviderError:
        message = self._redact(err.message)
        if message == err.message:
            return err
        return ProviderError(err.failure_class, message, status=err.status, retry_after_s=err.retry_after_s)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _REDACTED)
        return text


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


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body: an error page has no business being large."""
    body = bytearray()
    while len(body) < limit:
        piece = await response.content.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)
