"""The one place the HTTP front door speaks to telemetry: a call's server span, metrics and log line.

It uses the seam the gRPC servicer uses (`Telemetry.rpc` -> a scope told `answered` / `failed`),
with the HTTP route as the operation and the error table's code name as the status, so a request
is recorded alike on either port.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from sidecar.domain.status import ErrorStatus
from sidecar.execution.executor import ExecutionResult
from sidecar.telemetry import RpcScope, Telemetry, Unobserved


class Observed:
    __slots__ = ("_scope",)

    def __init__(self, telemetry: Telemetry, operation: str, headers: Mapping[str, str]) -> None:
        self._scope: RpcScope | Unobserved = telemetry.rpc(operation, headers.items())

    @property
    def trace_id(self) -> str:
        return self._scope.trace_id

    def __enter__(self) -> Observed:
        self._scope.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._scope.__exit__(exc_type, exc, tb)

    def answered(self, result: ExecutionResult) -> None:
        self._scope.answered(result.attempts, result.winner)

    def failed(self, exc: BaseException, status: ErrorStatus) -> None:
        self._scope.failed(
            status.code.name, int(status.code), type(exc).__name__, getattr(exc, "attempts", ())
        )
