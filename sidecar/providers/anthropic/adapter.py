"""The Anthropic Messages API transport: POST the codec's body with aiohttp, translate what comes back.

All the format knowledge lives in `codec`; this module owns the HTTP exchange and is the edge where
aiohttp and asyncio errors become ProviderError. It follows the OpenAI adapter step for step (same
pooling, timeouts, close-on-error and secret scrubbing); what differs is the path, the headers
(`x-api-key`, `anthropic-version`) and the stream, which ends with `message_stop` instead of `[DONE]`.
Foreign exceptions are not chained (`from None`): aiohttp keeps the request headers, the key
included, on some of its exceptions.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.response import Completion, StreamChunk
from sidecar.providers.anthropic.codec import (
    StreamDecoder,
    decode_completion,
    encode_request,
    output_tool_name,
    parse_json,
)
from sidecar.providers.anthropic.errors import classify_error
from sidecar.providers.base import ProviderCall
from sidecar.providers.http import call_timeout
from sidecar.providers.sse import SSEDecoder, SSEError, SSEEvent

MESSAGES_PATH = "/messages"
DEFAULT_API_VERSION = "2023-06-01"
MAX_ERROR_BODY_BYTES = 64 * 1024
LARGE_BODY_BYTES = 1024 * 1024
_MAX_DETAIL_CHARS = 300
_SENSITIVE_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")
_REDACTED = "********"


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
        secrets = [v for k, v in spec.headers if any(w in k.lower() for w in _SENSITIVE_HEADER_WORDS)]
        if spec.api_key is not None:
            secrets.append(spec.api_key.reveal())
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        return f"AnthropicAdapter(provider={self._spec.name!r}, url={self._url!r})"

    async def complete(self, call: ProviderCall) -> Completion:
        with self._edge(call):
            payload = encode_request(call.request, call.model, stream=False)
            async with self._exchange(call, payload, accept="application/json") as response:
                raw = await response.read()
            return decode_completion(parse_json(raw), output_tool=output_tool_name(call.request))

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState(StreamDecoder(output_tool=output_tool_name(call.request)))
        with self._edge(call, interrupted=lambda: state.yielded):
            payload = encode_request(call.request, call.model, stream=True)
            async with self._exchange(call, payload, accept="text/event-stream") as response:
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

    @contextlib.asynccontextmanager
    async def _exchange(
        self, call: ProviderCall, payload: dict[str, Any], *, accept: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and hand over a 2xx response; close it on any error or cancellation, else release it."""
        try:
            data = json.dumps(payload, ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:  # e.g. a set inside a tool's parameter schema
            raise ProviderError(
                FailureClass.BAD_REQUEST, f"the request is not JSON-encodable ({exc})"
            ) from None
        response = await self._session.post(
            self._url,
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


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body: an error page has no business being large."""
    body = bytearray()
    while len(body) < limit:
        piece = await response.content.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)
