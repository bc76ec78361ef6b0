"""The AWS Bedrock Converse transport: POST the codec's body with aiohttp, sign it, translate the answer.

All the format knowledge lives in `codec` (JSON shapes) and `eventstream` (binary framing); this module
owns the HTTP exchange, authentication, and is the edge where aiohttp and asyncio errors become
ProviderError. It follows the Anthropic adapter step for step (pooling, timeouts, close-on-error,
secret scrubbing, no exception chaining); what differs is auth and the stream.

Auth, decided once at construction:
- `spec.api_key` set: a Bedrock API key, sent as `Authorization: Bearer <key>`.
- otherwise SigV4 (service `bedrock`, region `spec.option("region")`), with credentials from the
  standard AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN variables, read once here.
  botocore does the signing; it is imported only on this path (the `bedrock` extra), so a deployment
  that uses API keys does not need it. Each request is signed just before it is sent (the signature
  covers the time, the body's hash and the headers aiohttp sends as given).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from urllib.parse import quote

import aiohttp
from yarl import URL

from sidecar.domain.model import ProviderSpec
from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.response import Completion, StreamChunk
from sidecar.providers.anthropic.codec import output_tool_name
from sidecar.providers.base import ProviderCall
from sidecar.providers.bedrock.codec import StreamDecoder, decode_completion, encode_request, parse_json
from sidecar.providers.bedrock.errors import classify_error, exception_error, stream_exception
from sidecar.providers.bedrock.eventstream import EventMessage, EventStreamDecoder
from sidecar.providers.http import call_timeout

SIGNING_NAME = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"
MAX_ERROR_BODY_BYTES = 64 * 1024
_MAX_DETAIL_CHARS = 300
_SENSITIVE_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie")
_REDACTED = "********"
_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

Signer = Callable[[str, bytes, dict[str, str]], dict[str, str]]


class BedrockAdapter:
    """A ProviderAdapter for Bedrock Converse under `spec.base_url`
    (e.g. `https://bedrock-runtime.us-east-1.amazonaws.com`)."""

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession) -> None:
        self._spec = spec
        self._session = session
        self._base = spec.base_url.rstrip("/")
        headers = dict(spec.headers)
        secrets = [v for k, v in spec.headers if any(w in k.lower() for w in _SENSITIVE_HEADER_WORDS)]
        self._sign: Signer | None = None
        if spec.api_key is not None:
            headers["Authorization"] = f"Bearer {spec.api_key.reveal()}"
            secrets.append(spec.api_key.reveal())
        else:
            self._sign, aws_secrets = _sigv4_signer(spec)
            secrets.extend(aws_secrets)
        self._headers = headers
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:
        auth = "sigv4" if self._sign is not None else "api_key"
        return f"BedrockAdapter(provider={self._spec.name!r}, url={self._base!r}, auth={auth})"

    def url(self, upstream_model: str, *, stream: bool) -> str:
        """`{base}/model/{modelId}/converse`, or `/converse-stream`; the id (maybe an ARN) is quoted."""
        return f"{self._base}/model/{quote(upstream_model, safe='')}/converse{'-stream' if stream else ''}"

    async def complete(self, call: ProviderCall) -> Completion:
        with self._edge(call):
            url = self.url(call.model.upstream_model, stream=False)
            async with self._exchange(call, url, accept="application/json") as response:
                raw = await response.read()
            return decode_completion(parse_json(raw), output_tool=_output_tool(call))

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState(StreamDecoder(output_tool=_output_tool(call)))
        with self._edge(call, interrupted=lambda: state.yielded):
            url = self.url(call.model.upstream_model, stream=True)
            async with self._exchange(call, url, accept=EVENT_STREAM) as response:
                frames = EventStreamDecoder()
                async for data in response.content.iter_any():
                    for chunk in state.fold(frames.feed(data)):
                        state.yielded = True
                        yield chunk
                    if state.decoder.done:
                        break
            final = state.decoder.final()
        # Outside the exchange: the connection is back in the pool before the caller sees the end.
        yield final

    @contextlib.asynccontextmanager
    async def _exchange(
        self, call: ProviderCall, url: str, *, accept: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and hand over a 2xx response; close it on any error or cancellation, else release it."""
        try:
            data = json.dumps(encode_request(call.request), ensure_ascii=False).encode()
        except (TypeError, ValueError) as exc:  # e.g. a set inside a tool's parameter schema
            raise ProviderError(
                FailureClass.BAD_REQUEST, f"the request is not JSON-encodable ({exc})"
            ) from None
        headers = {**self._headers, "Accept": accept, "Content-Type": "application/json"}
        if self._sign is not None:
            headers = self._sign(url, data, headers)
        # encoded=True: send the path byte for byte as quoted (and signed); yarl would otherwise turn
        # the model id's `%3A` back into `:`, and the SigV4 signature would no longer match.
        response = await self._session.post(
            URL(url, encoded=True),
            data=data,
            headers=headers,
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


def _output_tool(call: ProviderCall) -> str:
    return output_tool_name(call.request)  # the same forced-tool naming as the Anthropic codec


def _sigv4_signer(spec: ProviderSpec) -> tuple[Signer, list[str]]:
    """A function that signs one request with SigV4, and the secrets it holds (for scrubbing).

    Raises ValueError (a configuration error, raised at startup) when botocore, the region or the
    credentials are missing; the message names what is missing, never a value.
    """
    # importlib rather than `import`: botocore is optional and ships no type information.
    try:
        auth = importlib.import_module("botocore.auth")
        awsrequest = importlib.import_module("botocore.awsrequest")
        credentials_module = importlib.import_module("botocore.credentials")
    except ImportError:
        raise ValueError(
            f"provider {spec.name!r}: Bedrock SigV4 signing needs the 'botocore' package "
            "(pip install 'turnout[bedrock]'), or set an api_key to use a Bedrock API key"
        ) from None
    region = spec.option("region")
    if not region:
        raise ValueError(f"provider {spec.name!r}: SigV4 signing needs options.region (e.g. us-east-1)")
    access_key, secret_key, token = (os.environ.get(name, "") for name in _ENV_KEYS)
    if not access_key or not secret_key:
        raise ValueError(
            f"provider {spec.name!r}: SigV4 signing needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "in the environment, or an api_key for a Bedrock API key"
        )
    credentials = credentials_module.Credentials(access_key, secret_key, token or None)
    signer = auth.SigV4Auth(credentials, SIGNING_NAME, region)

    def sign(url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = awsrequest.AWSRequest(method="POST", url=url, data=body, headers=headers)
        signer.add_auth(request)
        return dict(request.headers.items())

    return sign, [secret_key, token]


class _StreamState:
    """Feeds event-stream messages to the codec's StreamDecoder; nothing after `metadata` is read."""

    def __init__(self, decoder: StreamDecoder) -> None:
        self.decoder = decoder
        self.yielded = False

    def fold(self, messages: Iterable[EventMessage]) -> Iterator[StreamChunk]:
        """The content chunks of `messages`, one at a time: those before a failure reach the caller."""
        for message in messages:
            if message.message_type == "exception":
                raise stream_exception(message.exception_type, message.payload)
            if message.message_type == "error":  # the framing's own error: `:error-code` names it
                raise exception_error(message.header(":error-code"), message.header(":error-message"))
            what = f"the {message.event_type or 'unnamed'} event"
            chunk = self.decoder.feed(message.event_type, parse_json(message.payload, what))
            if chunk is not None:
                yield chunk
            if self.decoder.done:
                return


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the body: an error page has no business being large."""
    body = bytearray()
    while len(body) < limit:
        piece = await response.content.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)
