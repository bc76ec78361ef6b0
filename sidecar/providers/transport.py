"""The HTTP half every JSON provider adapter shares: one POST exchange, and foreign errors translated.

An adapter owns its codec and URLs; this owns how a call goes over the pooled aiohttp session:
the JSON body (streamed from a buffer when large), a non-2xx answer classified by the provider's
own error table, the response closed on any error or cancellation (so a broken body never goes
back to the pool), aiohttp / timeout / SSE failures mapped to the failure vocabulary, and every
credential scrubbed from every message.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import aiohttp
import orjson
from yarl import URL

from sidecar.domain.context import outbound_headers
from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.redact import is_credential_header, redact, remember
from sidecar.providers.base import ProviderCall
from sidecar.providers.session import call_timeout
from sidecar.providers.shape import parse_json
from sidecar.providers.sse import SSEError

MAX_ERROR_BODY_BYTES = 64 * 1024
LARGE_BODY_BYTES = 1024 * 1024
_MAX_DETAIL_CHARS = 300

Classify = Callable[[int, bytes, Mapping[str, str]], ProviderError]
# Signs one request just before it is sent: (url, body, headers) -> headers (e.g. AWS SigV4).
Signer = Callable[[str, bytes, dict[str, str]], dict[str, str]]
# What the edge translates into ProviderError; anything else (a bug, cancellation) passes through.
_FOREIGN = (ProviderError, TimeoutError, aiohttp.ClientError, OSError, SSEError)
T = TypeVar("T")


class JsonTransport:
    def __init__(
        self,
        spec: ProviderSpec,
        session: aiohttp.ClientSession,
        headers: Mapping[str, str],
        classify: Classify,
        *,
        sign: Signer | None = None,
        secrets: Iterable[str] = (),
        exact_urls: bool = False,
    ) -> None:
        self._spec = spec
        self._session = session
        self._headers = dict(headers)
        self._classify = classify
        self._sign = sign
        self._exact_urls = exact_urls  # send URLs byte for byte, already quoted by the adapter
        secrets = [*secrets]
        # A credential header's value without its scheme ("Bearer sk-..." -> "sk-...").
        secrets += [v.split()[-1] for k, v in self._headers.items() if is_credential_header(k) and v.split()]
        if spec.api_key is not None:
            secrets.append(spec.api_key.reveal())
        # Remembered process-wide, so that the last lines (statuses, spans, logs) know them too.
        remember(*(s for s in secrets if s))

    async def fetch(
        self,
        call: ProviderCall,
        prepare: Callable[[ProviderCall], tuple[str, dict[str, Any]]],
        decode: Callable[[dict[str, Any], ProviderCall], T],
    ) -> T:
        """One unary call: `prepare(call)` gives (url, payload), the 2xx answer's JSON body is
        `decode`d; every failure comes out as a scrubbed ProviderError, cancellation untouched.

        `exchange` and `edge` in one plain coroutine: this is every unary attempt's path, and two
        generator-based context managers cost more than the rest of it (decision 040).
        """
        try:
            url, payload = prepare(call)
            response = await self._post(call, url, payload, "application/json")
            try:
                if not 200 <= response.status < 300:
                    body = await read_capped(response, MAX_ERROR_BODY_BYTES)
                    raise self._classify(response.status, body, response.headers)
                raw = await response.read()
            except BaseException:
                response.close()  # drop the connection: an unread or broken body must not be reused
                raise
            response.release()
            return decode(parse_json(raw), call)
        except _FOREIGN as exc:
            raise self.translated(exc, call) from None

    @contextlib.asynccontextmanager
    async def exchange(
        self, call: ProviderCall, url: str, payload: dict[str, Any], *, accept: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and hand over a 2xx response; close it on any error or cancellation, else release it."""
        response = await self._post(call, url, payload, accept)
        try:
            if not 200 <= response.status < 300:
                body = await read_capped(response, MAX_ERROR_BODY_BYTES)
                raise self._classify(response.status, body, response.headers)
            yield response
        except BaseException:
            response.close()  # drop the connection: an unread or broken body must not be reused
            raise
        response.release()

    async def _post(
        self, call: ProviderCall, url: str, payload: dict[str, Any], accept: str
    ) -> aiohttp.ClientResponse:
        data = _encode(payload)
        # Trace context (traceparent, ...) when telemetry propagates it to providers; empty otherwise.
        headers = {**self._headers, **dict(outbound_headers.get()), "Accept": accept}
        headers["Content-Type"] = "application/json"
        if self._sign is not None:
            headers = self._sign(url, data, headers)
        return await self._session.post(
            # Exact: yarl would otherwise turn a quoted `%3A` back into `:` (a different resource
            # for some APIs, and a broken signature for a signed request).
            URL(url, encoded=True) if self._exact_urls else url,
            # aiohttp writes a large bytes body in one go; a file-like body goes out in chunks
            # (a signed body is sent as the exact bytes that were signed).
            data=io.BytesIO(data) if len(data) > LARGE_BODY_BYTES and self._sign is None else data,
            headers=headers,
            timeout=call_timeout(call.timeout_s, self._spec),
        )

    @contextlib.contextmanager
    def edge(self, call: ProviderCall, interrupted: Callable[[], bool] = lambda: False) -> Iterator[None]:
        """Translate everything foreign into ProviderError; let cancellation through untouched."""
        try:
            yield
        except _FOREIGN as exc:
            raise self.translated(exc, call, interrupted()) from None

    def translated(self, exc: BaseException, call: ProviderCall, interrupted: bool = False) -> ProviderError:
        """What a failure at the edge (one of _FOREIGN) is in the failure vocabulary, scrubbed."""
        if isinstance(exc, ProviderError):
            return self.scrubbed(exc)
        if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError family derives from it
            limit = min(call.timeout_s, self._spec.request_timeout_s)
            return self._failure(FailureClass.TIMEOUT, f"no complete answer within {limit:g}s", exc)
        if isinstance(exc, SSEError):
            return self._failure(FailureClass.MALFORMED_RESPONSE, "not an event stream", exc)
        if interrupted:
            return self._failure(FailureClass.STREAM_INTERRUPTED, "the stream broke off", exc)
        return self._failure(FailureClass.CONNECTION, "the connection failed", exc)

    def _failure(self, cls: FailureClass, what: str, exc: BaseException) -> ProviderError:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ProviderError(cls, self.redact(f"{what} ({detail[:_MAX_DETAIL_CHARS]})"))

    def scrubbed(self, err: ProviderError) -> ProviderError:
        message = self.redact(err.message)
        if message == err.message:
            return err
        return ProviderError(err.failure_class, message, status=err.status, retry_after_s=err.retry_after_s)

    def redact(self, text: str) -> str:
        """The one redaction at the provider edge (domain/redact.py): this endpoint's credentials,
        any prefix of them, and anything else shaped like a key."""
        return redact(text)


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body: an error page has no business being large."""
    body = bytearray()
    while len(body) < limit:
        piece = await response.content.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)


def _encode(payload: dict[str, Any]) -> bytes:
    """The request body: orjson (decision 005), the standard encoder for what
    orjson refuses and it accepts (integers beyond 64 bits), BAD_REQUEST for what neither encodes."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        pass
    try:
        return json.dumps(payload, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:  # e.g. a set inside a tool's parameter schema
        raise ProviderError(FailureClass.BAD_REQUEST, f"the request is not JSON-encodable ({exc})") from None
