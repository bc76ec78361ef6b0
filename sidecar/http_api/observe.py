"""The one place the HTTP front door speaks to observers: a call's events, as the gRPC server's.

The same `ObservedRpc` as the gRPC servicer's, with the HTTP route as the operation and the error
table's code name as the status, so a request is recorded alike (server span, metrics, log line,
health, shadows) on either port. The pipeline reports the decision, the attempts and the answer
to `call`; this adds only how the call ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from sidecar.domain.observe import CallObserver, ObservedRpc, Observer, RpcEnded
from sidecar.domain.status import ErrorStatus


class Observed:
    __slots__ = ("_rpc",)

    def __init__(self, observer: Observer, operation: str, headers: Mapping[str, str]) -> None:
        self._rpc = ObservedRpc(observer, operation, headers.items())

    @property
    def call(self) -> CallObserver:
        return self._rpc.call

    @property
    def trace_id(self) -> str:
        return self._rpc.call.trace_id

    def __enter__(self) -> Observed:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._rpc.__exit__(exc_type, exc, tb)

    def failed(self, exc: BaseException, status: ErrorStatus) -> None:
        attempts = getattr(exc, "attempts", ())
        self._rpc.ended = RpcEnded(status.code.name, int(status.code), type(exc).__name__, attempts)
