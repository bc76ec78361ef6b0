"""The clients: one connection to the sidecar, four calls, errors as TurnoutError.

`Client` is blocking (grpc's own channel); `AsyncClient` is for asyncio (grpc.aio). Neither retries:
the sidecar already retries within a budget, honours Retry-After and falls back across models
behind circuit breakers, so a retry here would multiply the load on a failing provider and could
bill an answer twice. When an error carries `retry_delay`, the sidecar said when trying again may
help; retry then from your own code if the request is worth it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import grpc

from turnout_client._errors import TurnoutError
from turnout_client._proto.turnout.v1 import router_pb2 as pb
from turnout_client._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from turnout_client._requests import AnyRequest, as_request

DEFAULT_TARGET = "127.0.0.1:50051"


class _Settings:
    """What both clients share: the target, the channel's credentials and the call metadata."""

    def __init__(
        self,
        target: str,
        token: str | None,
        timeout: float | None,
        credentials: grpc.ChannelCredentials | None,
        options: Sequence[tuple[str, Any]],
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.target = target
        self.timeout = timeout
        self.credentials = credentials
        self.options = list(options)
        # The token travels as call metadata; grpc refuses call credentials on an insecure channel,
        # and the sidecar's token guards loopback and unix-socket listeners without TLS too.
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()

    def channel(self, api: Any) -> Any:
        """A channel from `api`: `grpc` for the blocking client, `grpc.aio` for the asyncio one."""
        if self.credentials is not None:
            return api.secure_channel(self.target, self.credentials, options=self.options)
        return api.insecure_channel(self.target, options=self.options)

    def call_timeout(self, timeout: float | None) -> float | None:
        return timeout if timeout is not None else self.timeout

    def __repr__(self) -> str:  # never the token
        return f"target={self.target!r}, timeout={self.timeout!r}, token={'set' if self.metadata else 'none'}"


class _Connection:
    """The channel and stub both clients hold; `_api` is `grpc` or `grpc.aio`."""

    _api: Any = grpc

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        token: str | None = None,
        timeout: float | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._settings = _Settings(target, token, timeout, credentials, options)
        self._channel = self._settings.channel(self._api)
        self._stub = pb_grpc.RouterServiceStub(self._channel)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._settings!r})"


class Client(_Connection):
    """A blocking client. `Client("127.0.0.1:50051")` or `Client("unix:///run/turnout/turnout.sock")`.

    `timeout` (seconds) is the default deadline of every call; each call may set its own. Without
    either, the sidecar's own default (`server.default_timeout_s`) bounds the call. Use it as a
    context manager, or call `close()`.
    """

    def route(self, request: AnyRequest, *, timeout: float | None = None) -> pb.RouteResponse:
        """The routing decision for `request`, with its explanation; no provider is called."""
        return self._unary(self._stub.Route, as_request(request, pb.RouteRequest), timeout)

    def generate(self, request: AnyRequest, *, timeout: float | None = None) -> pb.GenerateResponse:
        """Route, call the chosen model (falling back as the route says) and return the answer."""
        return self._unary(self._stub.Generate, as_request(request, pb.GenerateRequest), timeout)

    def generate_stream(
        self, request: AnyRequest, *, timeout: float | None = None
    ) -> Iterator[pb.GenerateStreamResponse]:
        """The answer as events: `delta`s, then exactly one `end`. Breaking out of the loop cancels
        the call. A stream that fails raises TurnoutError from the iterator."""
        call = self._stub.GenerateStream(
            as_request(request, pb.GenerateStreamRequest),
            timeout=self._settings.call_timeout(timeout),
            metadata=self._settings.metadata,
        )
        try:
            yield from call
        except grpc.RpcError as error:
            raise TurnoutError.from_rpc_error(error) from None
        finally:
            call.cancel()  # a no-op once the stream has ended; stops it when the caller stops early

    def list_models(self, *, timeout: float | None = None) -> list[pb.ModelInfo]:
        """The sidecar's model registry, with each model's live health."""
        return list(self._unary(self._stub.ListModels, pb.ListModelsRequest(), timeout).models)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        try:
            return method(
                request, timeout=self._settings.call_timeout(timeout), metadata=self._settings.metadata
            )
        except grpc.RpcError as error:
            raise TurnoutError.from_rpc_error(error) from None


class AsyncClient(_Connection):
    """The asyncio client (grpc.aio), with the same calls as `Client`, awaited; `generate_stream`
    is an async iterator. Use it as an async context manager, or `await close()`."""

    _api = grpc.aio

    async def route(self, request: AnyRequest, *, timeout: float | None = None) -> pb.RouteResponse:
        return await self._unary(self._stub.Route, as_request(request, pb.RouteRequest), timeout)  # type: ignore[no-any-return]

    async def generate(self, request: AnyRequest, *, timeout: float | None = None) -> pb.GenerateResponse:
        return await self._unary(self._stub.Generate, as_request(request, pb.GenerateRequest), timeout)  # type: ignore[no-any-return]

    async def generate_stream(
        self, request: AnyRequest, *, timeout: float | None = None
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        call = self._stub.GenerateStream(
            as_request(request, pb.GenerateStreamRequest),
            timeout=self._settings.call_timeout(timeout),
            metadata=self._settings.metadata,
        )
        try:
            async for event in call:
                yield event
        except grpc.RpcError as error:
            raise TurnoutError.from_rpc_error(error) from None
        finally:
            call.cancel()

    async def list_models(self, *, timeout: float | None = None) -> list[pb.ModelInfo]:
        response = await self._unary(self._stub.ListModels, pb.ListModelsRequest(), timeout)
        return list(response.models)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _unary(self, method: Any, request: Any, timeout: float | None) -> Any:
        call = method(request, timeout=self._settings.call_timeout(timeout), metadata=self._settings.metadata)
        try:
            return await call
        except grpc.RpcError as error:
            raise TurnoutError.from_rpc_error(error) from None
