"""The HTTP front door's listener: routes, limits, auth, and the unary and streamed call flow.

    POST /v1/chat/completions   OpenAI Chat Completions (openai.py)
    POST /v1/messages           Anthropic Messages (anthropic.py)
    POST /v1/messages/count_tokens  its input tokens, as the model it would be routed to counts them
    GET  /v1/models             the registry's models and the route names, in OpenAI's list shape
    GET  /v1/models/{id}        one of them (404 in OpenAI's error shape when it is neither)
    GET  /healthz               200 while the event loop answers
    GET  /readyz                200 while the sidecar serves; 503 while it starts or drains

Every call goes through the one pipeline the gRPC API uses (policy -> executor): this module
converts, bounds and reports, and holds no routing logic. A body over server.max_request_mb is
refused (413) as it arrives, before it is parsed; request lines and headers are capped by aiohttp
(MAX_*), and a request it cannot parse gets a constant JSON 400 (sidecar/listener.py).

A stream's first bytes go out only with its first chunk: a failure before it (every candidate
failed, a deadline) is an ordinary error response with its status, which the SDKs raise as
typed errors. A failure after it ends the stream with the API's error event, never a silent stop.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection
from contextlib import suppress
from dataclasses import replace
from typing import Any, Protocol, cast

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong

from sidecar.domain.errors import FieldViolation, InvalidRequest, NoCandidate, NotFound, Unauthenticated
from sidecar.domain.model import ModelSpec, Secret
from sidecar.domain.observe import Observer
from sidecar.domain.plan import Plan
from sidecar.domain.response import StreamChunk
from sidecar.domain.result import ExecutionResult, Relaying
from sidecar.domain.status import ErrorStatus, error_status
from sidecar.http_api import errors, hints
from sidecar.http_api.anthropic import AnthropicCount, AnthropicMessages
from sidecar.http_api.errors import TOO_LARGE
from sidecar.http_api.observe import Observed
from sidecar.http_api.openai import OpenAIChat
from sidecar.http_api.reading import MAX_NAME, Reader
from sidecar.http_api.wire import Inbound, Wire
from sidecar.listener import bound_port, listen, url
from sidecar.log_limit import LogLimiter, log_failure
from sidecar.pipeline import Pipeline
from sidecar.policy.tokens import count_request, counter_for, estimate_input_tokens
from sidecar.registry.registry import Registry

log = logging.getLogger(__name__)
# Unexpected failures are logged with their traceback, but a burst of them must not flood the log.
_log_limit = LogLimiter(per_second=1.0, burst=10)

MAX_LINE_BYTES = 8190  # aiohttp's default request line and header field limits, made explicit
MAX_FIELD_BYTES = 8190
MAX_HEADERS = 100
MAX_MESSAGE = 1024  # characters of an error message
KEEPALIVE_S = 75.0  # SDKs keep a pool of connections; closing idle ones sooner makes them reconnect
# A client's timeout, which the Stainless-built SDKs (openai, anthropic) send in seconds: work
# past it is wasted, so it bounds the call's deadline like a gRPC deadline does.
CLIENT_TIMEOUT = "x-stainless-timeout"
OPENAI, ANTHROPIC, ANTHROPIC_COUNT = OpenAIChat(), AnthropicMessages(), AnthropicCount()
_JSON = "application/json"
MODEL_PATH = "/v1/models/"


class Serving(Protocol):
    """What the front door needs of the runtime in effect (server.servicer.Runtime has it)."""

    @property
    def pipeline(self) -> Pipeline: ...

    @property
    def registry(self) -> Registry: ...

    @property
    def observer(self) -> Observer: ...


class HttpApi:
    """`await start()` binds host:port (0: a free one, see `port`); `await close(grace_s)` drains."""

    def __init__(
        self,
        runtime: Callable[[], Serving],
        routes: Callable[[], Collection[str]],
        ready: Callable[[], bool],
        *,
        host: str,
        port: int,
        token: Secret | None,
        max_request_bytes: int,
        default_timeout_s: float,
    ) -> None:
        self.host = host
        self.port = port
        self._runtime = runtime
        self._routes = routes
        self._ready = ready
        self._token = token.reveal().encode() if token is not None else None
        self._max_request_bytes = max_request_bytes
        self._default_timeout_s = default_timeout_s
        self._runner: web.ServerRunner | None = None
        self._handlers: dict[tuple[str, str], Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]] = {
            ("POST", "/v1/chat/completions"): lambda request: self._generate(request, OPENAI),
            ("POST", "/v1/messages"): lambda request: self._generate(request, ANTHROPIC),
            ("POST", "/v1/messages/count_tokens"): self._count_tokens,
            ("GET", "/v1/models"): self._models,
            ("GET", "/healthz"): self._healthz,
            ("GET", "/readyz"): self._readyz,
        }

    @property
    def url(self) -> str:
        return url(self.host, self.port)

    async def start(self) -> None:
        self._runner = await listen(
            self._dispatch,
            _refusal,
            self.host,
            self.port,
            "HTTP",
            "server.http_host / server.http_port, or --http-host / --http-port",
            handler_cancellation=True,  # a client that hangs up cancels its provider calls
            max_line_size=MAX_LINE_BYTES,
            max_field_size=MAX_FIELD_BYTES,
            max_headers=MAX_HEADERS,
            keepalive_timeout=KEEPALIVE_S,
            access_log=None,  # telemetry's request log has one line per call already
        )
        self.port = bound_port(self._runner)

    async def close(self, grace_s: float = 0.0) -> None:
        """Stop listening; calls in flight get `grace_s` to finish, then are cancelled."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        for site in list(runner.sites):
            await site.stop()
        server = runner.server
        if server is not None:
            server.pre_shutdown()  # idle keep-alive connections close now
            await server.shutdown(grace_s)
        await runner.cleanup()

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        method, path = request.method, request.path
        handler = self._handlers.get((method, path))
        if handler is not None:
            return await handler(request)
        if method == "GET" and path.startswith(MODEL_PATH):
            return self._model(request, path[len(MODEL_PATH) :])
        wire = ANTHROPIC if path.startswith("/v1/messages") else OPENAI
        known = any(path == known_path for _, known_path in self._handlers) or path.startswith(MODEL_PATH)
        word = "method not allowed" if known else "not found"
        return _error(
            wire,
            InvalidRequest([FieldViolation("", f"{method} {path[:200]}: {word}")]),
            405 if known else 404,
        )

    async def _healthz(self, request: web.BaseRequest) -> web.StreamResponse:
        return _plain(200, "ok")

    async def _readyz(self, request: web.BaseRequest) -> web.StreamResponse:
        ready = self._ready()
        return _plain(200 if ready else 503, "ok" if ready else "not serving")

    async def _models(self, request: web.BaseRequest) -> web.StreamResponse:
        if (refused := self._refused(request, OPENAI)) is not None:
            return refused
        return _json({"object": "list", "data": self._model_entries()})

    def _model(self, request: web.BaseRequest, name: str) -> web.StreamResponse:
        if (refused := self._refused(request, OPENAI)) is not None:
            return refused
        entry = next((e for e in self._model_entries() if e["id"] == name), None)
        if entry is not None:
            return _json(entry)
        why = f"model {name[:MAX_NAME]!r} is neither a route nor a registry model (GET /v1/models lists both)"
        return _error(OPENAI, NotFound("MODEL_NOT_FOUND", "model", why))

    def _model_entries(self) -> list[dict[str, Any]]:
        """The registry's models, then the route names, as OpenAI's model objects."""
        entries = [
            {
                "id": m.name,
                "object": "model",
                "created": 0,
                "owned_by": m.provider,
                "turnout": {"kind": "model"},
            }
            for m in self._runtime().registry.models
        ]
        entries += [
            {"id": name, "object": "model", "created": 0, "owned_by": "turnout", "turnout": {"kind": "route"}}
            for name in sorted(self._routes())
        ]
        return entries

    async def _generate(self, request: web.BaseRequest, wire: Wire) -> web.StreamResponse:
        if (refused := self._refused(request, wire)) is not None:
            return refused
        runtime = self._runtime()
        with Observed(runtime.observer, wire.operation, request.headers) as call:
            try:
                inbound = await self._read(request, wire, runtime.registry)
                deadline = self._deadline(request)
                if inbound.stream:
                    return await self._stream(request, wire, inbound, runtime.pipeline, deadline, call)
                generated = await runtime.pipeline.generate(inbound.chat, deadline, call.call)
                return _json(
                    wire.answer(inbound.chat, generated.plan, generated.result),
                    hints.answered(generated.plan, generated.result, inbound.chat.request_id),
                )
            except Exception as exc:  # noqa: BLE001 - every failure becomes an error response, never a crash
                return _error(wire, exc, call=call)

    async def _count_tokens(self, request: web.BaseRequest) -> web.StreamResponse:
        """The request's input tokens, counted (offline) by the tokenizer of the model the routing
        picks for it. When no model would take it (it fits no context window, say), which is just
        what an agent asks to learn, by the pinned model's tokenizer, or with none pinned the most
        conservative estimate. Coding agents (Claude Code) ask before every turn, to know when to
        compact their context."""
        if (refused := self._refused(request, ANTHROPIC_COUNT)) is not None:
            return refused
        runtime = self._runtime()
        try:
            chat = (await self._read(request, ANTHROPIC_COUNT, runtime.registry)).chat
            model: ModelSpec | None
            try:
                model = runtime.pipeline.route(chat).choice.model
            except NoCandidate:
                model = runtime.registry.get(chat.hints.pinned_model)
            if model is None:
                return _json({"input_tokens": estimate_input_tokens(chat)})
            tokens = count_request(chat, counter_for(model))
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error response, never a crash
            return _error(ANTHROPIC_COUNT, exc)
        return _json({"input_tokens": tokens}, {"x-turnout-model": model.name})

    async def _stream(
        self,
        request: web.BaseRequest,
        wire: Wire,
        inbound: Inbound,
        pipeline: Pipeline,
        deadline: float,
        call: Observed,
    ) -> web.StreamResponse:
        events = cast(
            AsyncGenerator[Plan | Relaying | StreamChunk | ExecutionResult, None],
            pipeline.generate_stream(inbound.chat, deadline, call.call),
        )
        try:
            plan = await anext(events)
            assert isinstance(plan, Plan), "the pipeline yields the plan first"
            first = await anext(events)  # raises before any byte is sent: an ordinary error response
            response = web.StreamResponse(
                headers={
                    "content-type": "text/event-stream; charset=utf-8",
                    "cache-control": "no-cache",
                    "server": "turnout",
                    **hints.streaming(plan, inbound.chat.request_id),
                }
            )
            await response.prepare(request)
            writer = wire.stream(inbound.chat, plan, inbound)
            try:
                async for event in _starting_with(first, events):
                    if isinstance(event, StreamChunk):
                        await response.write(writer.chunk(event))
                    elif isinstance(event, Relaying):
                        writer.relaying(event.candidate.model.name)
                    elif isinstance(event, ExecutionResult):
                        await response.write(writer.end(event))
            except Exception as exc:  # noqa: BLE001 - the stream ends with the API's error event
                status = _record(exc, call)
                with suppress(ConnectionError):  # the client may be gone: that is how it broke
                    await response.write(writer.failed(status))
            with suppress(ConnectionError):
                await response.write_eof()
            return response
        finally:
            await events.aclose()  # an abandoned stream's attempts are cancelled now, not at GC

    async def _read(self, request: web.BaseRequest, wire: Wire, registry: Registry) -> Inbound:
        body = await self._body(request)
        r = Reader()
        inbound = wire.read(r, body)
        chat = hints.annotate(r, inbound.chat, request.headers, inbound.model, self._routes(), registry)
        return Inbound(chat, inbound.model, inbound.stream, inbound.stream_usage)

    async def _body(self, request: web.BaseRequest) -> dict[str, Any]:
        limit = self._max_request_bytes
        declared = request.content_length
        if declared is not None and declared > limit:
            raise _too_large(declared, limit)
        content = request.content
        data: bytes | bytearray
        if content.is_eof() and declared is not None:
            # The common case: a body that came with its headers, all buffered and under the
            # declared limit already; taken as is, without the chunk iterator's await per piece.
            data = content.read_nowait()
        else:
            data = bytearray()
            async for piece in content.iter_chunked(64 * 1024):
                data += piece
                if len(data) > limit:
                    raise _too_large(len(data), limit)
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            why = f"the body is not valid JSON ({exc.msg} at byte {exc.pos})" if data else "the body is empty"
            raise InvalidRequest([FieldViolation("", why)], reason="MALFORMED_JSON") from None
        if not isinstance(body, dict):
            raise InvalidRequest(
                [FieldViolation("", "the body must be a JSON object")], reason="MALFORMED_JSON"
            )
        return body

    def _deadline(self, request: web.BaseRequest) -> float:
        budget = self._default_timeout_s
        if (given := request.headers.get(CLIENT_TIMEOUT)) is not None:
            try:
                asked = float(given)
            except ValueError:
                asked = 0.0  # not a number: the server's own bound
            if asked > 0:
                budget = min(budget, asked)
        return time.monotonic() + budget

    def _refused(self, request: web.BaseRequest, wire: Wire) -> web.StreamResponse | None:
        """401 unless the call carries the token (when one is configured), as the SDKs send it:
        `Authorization: Bearer <api_key>` (OpenAI) or `x-api-key: <api_key>` (Anthropic)."""
        if self._token is None:
            return None
        scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            given = request.headers.get("x-api-key", "")
        # compare_digest: the time taken says nothing about how much of the token matched
        if hmac.compare_digest(given.strip().encode(), self._token):
            return None
        why = "missing or wrong token: send it as the SDK's api_key (Authorization: Bearer or x-api-key)"
        return _error(wire, Unauthenticated(why))


async def _starting_with(
    first: Plan | Relaying | StreamChunk | ExecutionResult,
    rest: AsyncIterator[Plan | Relaying | StreamChunk | ExecutionResult],
) -> AsyncIterator[Plan | Relaying | StreamChunk | ExecutionResult]:
    yield first
    async for event in rest:
        yield event


def _too_large(size: int, limit: int) -> InvalidRequest:
    why = f"the request is {size:,} bytes or more, over the limit of {limit:,} (server.max_request_mb)"
    return InvalidRequest([FieldViolation("", why)], reason=TOO_LARGE)


def _record(exc: Exception, call: Observed | None) -> ErrorStatus:
    """The failure's status, logged if it is ours (a client's mistake is in its answer) and recorded."""
    status = error_status(exc)
    if call is not None:
        call.failed(exc, status)
    log_failure(log, _log_limit, exc, "HTTP request")
    return status


def _error(
    wire: Wire, exc: Exception, code: int | None = None, *, call: Observed | None = None
) -> web.Response:
    status = _record(exc, call)
    if len(status.message) > MAX_MESSAGE:
        status = _shortened(status)
    http = code or errors.http_status(status)
    return _json(wire.error(status, http), errors.headers(status), status=http)


def _shortened(status: ErrorStatus) -> ErrorStatus:
    cut = len(status.message) - MAX_MESSAGE
    return replace(status, message=f"{status.message[:MAX_MESSAGE]}…({cut:,} more)")


def _json(body: dict[str, Any], headers: dict[str, str] | None = None, *, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type=_JSON,
        headers={"server": "turnout", **(headers or {})},
    )


def _plain(status: int, word: str) -> web.Response:
    return web.Response(
        status=status, text=word + "\n", headers={"server": "turnout", "cache-control": "no-store"}
    )


def _refusal(status: int, exc: BaseException | None) -> web.Response:
    """The answer to a request aiohttp cannot parse: what was wrong and the limit it broke, in words
    of our own, since aiohttp's messages quote the request."""
    if isinstance(exc, LineTooLong):
        why = (
            f"a header field (at most {MAX_FIELD_BYTES} bytes) or the request line "
            f"(at most {MAX_LINE_BYTES} bytes) is too long"
        )
    elif isinstance(exc, BadHttpMessage):
        why = (
            "not a valid HTTP/1.1 request: a malformed request line, header or body framing, "
            f"or more than {MAX_HEADERS} header fields"
        )
    else:
        why = "the request could not be read"
    body = {"error": {"message": why, "type": "invalid_request_error", "code": "malformed_request"}}
    return _json(body, status=status)
