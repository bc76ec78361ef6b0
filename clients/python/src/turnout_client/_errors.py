"""One typed error for every failed call, decoded from the `google.rpc.Status` in the trailers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of the request: its path (e.g. `hints.pinned_model`) and what is wrong."""

    field: str
    description: str


@dataclass(eq=False)  # not frozen: raising sets __traceback__ and friends on it
class TurnoutError(Exception):
    """A call that failed: the gRPC status and what the sidecar said about it.

    `reason`, `domain` and `metadata` come from `google.rpc.ErrorInfo` (domain `turnout.dev`,
    reasons such as `INVALID_REQUEST`, `MODEL_NOT_FOUND`, `NO_CANDIDATE`); `field_violations` from
    `google.rpc.BadRequest`; `retry_delay` (seconds) from `google.rpc.RetryInfo`, set only when the
    sidecar says that trying again later may succeed. A deadline that expired on the client side
    has code DEADLINE_EXCEEDED and none of these.
    """

    code: grpc.StatusCode
    message: str
    reason: str = ""
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: Sequence[FieldViolation] = ()
    retry_delay: float | None = None

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"

    @classmethod
    def from_status(cls, code: grpc.StatusCode, message: str, details: bytes | None) -> TurnoutError:
        """The error for a status code, message and the serialized `google.rpc.Status`, if any."""
        found: dict[str, object] = {}
        if details:
            status = status_pb2.Status.FromString(details)
            for detail in status.details:
                for kind in (
                    error_details_pb2.ErrorInfo,
                    error_details_pb2.BadRequest,
                    error_details_pb2.RetryInfo,
                ):
                    if detail.Is(kind.DESCRIPTOR):
                        message_ = kind()
                        detail.Unpack(message_)
                        found[kind.DESCRIPTOR.name] = message_
        info = found.get("ErrorInfo")
        bad = found.get("BadRequest")
        retry = found.get("RetryInfo")
        return cls(
            code=code,
            message=message,
            reason=info.reason if isinstance(info, error_details_pb2.ErrorInfo) else "",
            domain=info.domain if isinstance(info, error_details_pb2.ErrorInfo) else "",
            metadata=dict(info.metadata) if isinstance(info, error_details_pb2.ErrorInfo) else {},
            field_violations=tuple(FieldViolation(v.field, v.description) for v in bad.field_violations)
            if isinstance(bad, error_details_pb2.BadRequest)
            else (),
            retry_delay=retry.retry_delay.ToTimedelta().total_seconds()
            if isinstance(retry, error_details_pb2.RetryInfo) and retry.HasField("retry_delay")
            else None,
        )

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> TurnoutError:
        """Translate a grpc error (blocking or asyncio) into a TurnoutError."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = (error.details() if hasattr(error, "details") else "") or ""
        trailers = (error.trailing_metadata() if hasattr(error, "trailing_metadata") else None) or ()
        details = next((v for k, v in trailers if k == STATUS_DETAILS_KEY), None)
        return cls.from_status(code, message, details if isinstance(details, bytes) else None)
