"""Who may call the routing API: a bearer token, TLS (mutual, with a client CA), the unix socket's mode.

On loopback (the default) the pod's own containers are the only callers, and none of this is
needed. Off loopback the config insists on a token or TLS (config.exposure_problems). The token
is checked by an interceptor, installed only when a token is configured, so the default path pays
nothing: `authorization: Bearer <token>` metadata, compared in constant time. The standard health
and reflection services stay open: they tell a caller only whether the server serves and what its
API looks like, which the .proto file says anyway, and probes and tools need them without a token.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from sidecar.domain.errors import Unauthenticated
from sidecar.domain.model import Secret
from sidecar.server.errors import to_status

# Methods under these prefixes answer without a token.
OPEN_METHODS = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


# Built once: a refusal costs no more than the comparison that led to it.
_REFUSED = to_status(Unauthenticated("missing or wrong token: send metadata 'authorization: Bearer <token>'"))


@dataclass(frozen=True, slots=True)
class TlsFiles:
    cert_file: str  # PEM certificate chain
    key_file: str  # PEM private key
    client_ca_file: str = ""  # set: clients must present a certificate this CA signed (mTLS)

    def credentials(self) -> grpc.ServerCredentials:
        """grpc's own SSL credentials from the files, read now (a restart picks up new ones)."""
        ca = Path(self.client_ca_file).read_bytes() if self.client_ca_file else None
        return grpc.ssl_server_credentials(
            [(Path(self.key_file).read_bytes(), Path(self.cert_file).read_bytes())],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


@dataclass(frozen=True, slots=True)
class Access:
    """The access settings of one server: none of them by default (loopback only)."""

    token: Secret | None = None
    tls: TlsFiles | None = None
    unix_socket_mode: int = 0o600

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        return [BearerToken(self.token)] if self.token is not None else []

    def tcp_credentials(self) -> grpc.ServerCredentials | None:
        return self.tls.credentials() if self.tls is not None else None

    @contextlib.contextmanager
    def socket_mode(self) -> Iterator[None]:
        """Around binding the unix socket: it is born with its mode (no moment open to others).

        The umask is the process's, but nothing else creates files while the server is built.
        """
        previous = os.umask(0o777 & ~self.unix_socket_mode)
        try:
            yield
        finally:
            os.umask(previous)


class BearerToken(grpc.aio.ServerInterceptor):
    """UNAUTHENTICATED for a call without `authorization: Bearer <token>`, except OPEN_METHODS.

    A refused call's request is never parsed: its handler takes the raw bytes and aborts.
    """

    def __init__(self, token: Secret) -> None:
        self._expected = token.reveal().encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_METHODS) or self._allowed(details):
            return handler
        return _refusing(handler)

    def _allowed(self, details: grpc.HandlerCallDetails) -> bool:
        for key, value in details.invocation_metadata or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, token = value.strip().partition(" ")
                # compare_digest: the time taken says nothing about how much of the token matched
                return scheme.casefold() == "bearer" and hmac.compare_digest(
                    token.strip().encode(), self._expected
                )
        return False


async def _refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort_with_status(_REFUSED)


async def _refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort_with_status(_REFUSED)
    yield  # pragma: no cover - an async generator, for the streaming kinds


def _refusing(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as `handler` that refuses without reading the request."""
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_refuse, response_serializer=serialize)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_refuse_stream, response_serializer=serialize)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_refuse, response_serializer=serialize)
    return grpc.stream_stream_rpc_method_handler(_refuse_stream, response_serializer=serialize)
