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

import importlib
import os
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp

from sidecar.domain.model import ProviderSpec
from sidecar.domain.response import Completion, StreamChunk
from sidecar.providers.anthropic.codec import output_tool_name
from sidecar.providers.base import ProviderCall
from sidecar.providers.bedrock.codec import StreamDecoder, decode_completion, encode_request
from sidecar.providers.bedrock.errors import classify_error, exception_error, stream_exception
from sidecar.providers.bedrock.eventstream import EventMessage, EventStreamDecoder
from sidecar.providers.shape import parse_json
from sidecar.providers.transport import JsonTransport, Signer

SIGNING_NAME = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class BedrockAdapter:
    """A ProviderAdapter for Bedrock Converse under `spec.base_url`
    (e.g. `https://bedrock-runtime.us-east-1.amazonaws.com`)."""

    def __init__(self, spec: ProviderSpec, session: aiohttp.ClientSession) -> None:
        self._spec = spec
        self._session = session
        self._base = spec.base_url.rstrip("/")
        headers = dict(spec.headers)
        self._sign: Signer | None = None
        aws_secrets: list[str] = []
        if spec.api_key is not None:
            headers["Authorization"] = f"Bearer {spec.api_key.reveal()}"
        else:
            self._sign, aws_secrets = _sigv4_signer(spec)
        self._http = JsonTransport(
            spec, session, headers, classify_error, sign=self._sign, secrets=aws_secrets, exact_urls=True
        )

    def __repr__(self) -> str:
        auth = "sigv4" if self._sign is not None else "api_key"
        return f"BedrockAdapter(provider={self._spec.name!r}, url={self._base!r}, auth={auth})"

    def url(self, upstream_model: str, *, stream: bool) -> str:
        """`{base}/model/{modelId}/converse`, or `/converse-stream`; the id (maybe an ARN) is quoted."""
        return f"{self._base}/model/{quote(upstream_model, safe='')}/converse{'-stream' if stream else ''}"

    async def complete(self, call: ProviderCall) -> Completion:
        return await self._http.fetch(call, self._unary, _decode)

    def _unary(self, call: ProviderCall) -> tuple[str, dict[str, Any]]:
        return self.url(call.model.upstream_model, stream=False), encode_request(call.request)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamChunk]:
        state = _StreamState(StreamDecoder(output_tool=_output_tool(call)))
        with self._http.edge(call, interrupted=lambda: state.yielded):
            url = self.url(call.model.upstream_model, stream=True)
            payload = encode_request(call.request)
            async with self._http.exchange(call, url, payload, accept=EVENT_STREAM) as response:
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


def _decode(body: dict[str, Any], call: ProviderCall) -> Completion:
    return decode_completion(body, output_tool=_output_tool(call))


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
