"""The grpc.aio server: listeners, health and reflection, and graceful shutdown.

Shutdown order (`stop`): health turns NOT_SERVING (so a load balancer or kubelet stops sending),
the servicer answers new RPCs UNAVAILABLE while in-flight ones get the grace period to finish
(`RouterServicer.drain`: gRPC's own stop would answer calls that just arrived CANCELLED), then
the transport stops and whatever is left is cancelled.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.access import Access
from sidecar.server.reflection import enable_reflection
from sidecar.server.servicer import RouterServicer

log = logging.getLogger(__name__)
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["RouterService"].full_name
TRANSPORT_HEADROOM_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int  # 0 picks a free port
    unix_socket: str = ""
    max_request_bytes: int = 32 * 1024 * 1024
    access: Access = field(default_factory=Access)  # token, TLS, unix socket mode (access.py)


class GrpcServer:
    def __init__(self, servicer: RouterServicer, listen: Listen) -> None:
        # The transport limit sits above Turnout's own, so an oversized request reaches the
        # servicer's check and gets an error naming the field instead of a bare transport error.
        # Past it gRPC refuses the message itself (RESOURCE_EXHAUSTED "Received message larger
        # than max", no details: no handler runs) before buffering it: a 300 MB request added
        # 5 MB to the server's RSS. A headroom of the request's size would lift that guard.
        limit = listen.max_request_bytes + TRANSPORT_HEADROOM_BYTES
        self._server = grpc.aio.server(
            interceptors=listen.access.interceptors(),
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ],
        )
        servicer.add_to_server(self._server)  # with deserializers that never raise
        self._servicer = servicer
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        enable_reflection(
            self._server, (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
        )
        self.port = _bind(self._server, f"{listen.host}:{listen.port}", listen.access.tcp_credentials())
        self.address = f"{listen.host}:{self.port}"
        self.unix_socket = listen.unix_socket
        if listen.unix_socket:
            with listen.access.socket_mode():  # who may connect is who may open the file
                _bind(self._server, f"unix:{listen.unix_socket}")
            os.chmod(listen.unix_socket, listen.access.unix_socket_mode)

    async def start(self) -> None:
        await self._server.start()
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace_s: float) -> None:
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        started = time.monotonic()
        await self._servicer.drain(grace_s)
        await self._server.stop(max(grace_s - (time.monotonic() - started), 0.0))


def _bind(server: grpc.aio.Server, address: str, tls: grpc.ServerCredentials | None = None) -> int:
    try:
        return server.add_insecure_port(address) if tls is None else server.add_secure_port(address, tls)
    except RuntimeError:  # grpc says only "Failed to bind"; say what to check
        raise OSError(f"cannot listen on {address}: the address is in use or not permitted") from None
