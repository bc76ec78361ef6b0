"""Errors as gRPC statuses with google.rpc.Status details, from the one error table.

Which code each domain error gets is decided in sidecar/domain/status.py (the HTTP front door
reads the same table); here an ErrorStatus becomes a Status: ErrorInfo (reason and metadata)
always, BadRequest when there are field violations, RetryInfo when there is a retry delay.

Every status is bounded in size. Its message travels as `grpc-message` (percent-encoded: a
non-ASCII byte takes three) and again, with the details, in `grpc-status-details-bin` (base64);
clients refuse trailers over ~8 KB by default and then see RESOURCE_EXHAUSTED "Stream removed"
instead of the real error (a 10 KB model name echoed back made a 12.5 KB trailer). So every echoed
value is shortened with a count of what was cut, at most MAX_VIOLATIONS field violations and
MAX_METADATA metadata entries are listed (ErrorInfo.metadata says how many were left out), the
message is at most MAX_MESSAGE_BYTES of UTF-8, and the whole Status at most MAX_STATUS_BYTES.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from sidecar.domain.status import ErrorStatus, error_status
from sidecar.log_limit import LogLimiter as LogLimiter  # the gRPC server's tests' import

DOMAIN = "turnout.dev"
MAX_MESSAGE_BYTES = 1024  # UTF-8; as grpc-message at most 3 KB
MAX_VALUE = 200  # characters of one field path or metadata key or value
MAX_DESCRIPTION = 300  # characters of one violation's description
MAX_VIOLATIONS = 20
MAX_METADATA = 32
MAX_STATUS_BYTES = 4096  # the serialized google.rpc.Status: 5.5 KB as base64
log = logging.getLogger(__name__)


def shorten(text: str, limit: int = MAX_VALUE) -> str:
    """`text` if at most `limit` characters, else its first `limit` and '…(N more)'."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text) - limit:,} more)"


def _shorten_bytes(text: str, limit: int) -> str:
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    kept = encoded[: limit - 24].decode(errors="ignore")  # room for the count
    return f"{kept}…({len(text) - len(kept):,} more)"


def to_status(exc: BaseException) -> grpc.Status:
    error = error_status(exc)
    code, details = int(error.code), _details(error)
    message = _shorten_bytes(error.message, MAX_MESSAGE_BYTES)
    listed = MAX_VIOLATIONS, MAX_METADATA
    status = _pack(code, message, details, *listed)
    while status.ByteSize() > MAX_STATUS_BYTES and listed != (0, 0):
        listed = listed[0] // 2, listed[1] // 2
        status = _pack(code, message, details, *listed)
    if status.ByteSize() > MAX_STATUS_BYTES:  # only a message of non-ASCII text gets here
        status = _pack(code, _shorten_bytes(message, MAX_MESSAGE_BYTES // 4), details, 0, 0)
    result: grpc.Status = rpc_status.to_status(status)
    return result


def _pack(
    code: int, message: str, details: list[Message], violations: int, metadata: int
) -> status_pb2.Status:
    """The Status with at most `violations` field violations and `metadata` ErrorInfo entries,
    and in ErrorInfo.metadata how many of each were left out."""
    status = status_pb2.Status(code=code, message=message)
    bad = next((d for d in details if isinstance(d, error_details_pb2.BadRequest)), None)
    for detail in details:
        if isinstance(detail, error_details_pb2.ErrorInfo):
            detail = _trimmed_info(detail, metadata, len(bad.field_violations) - violations if bad else 0)
        elif isinstance(detail, error_details_pb2.BadRequest):
            detail = error_details_pb2.BadRequest(field_violations=detail.field_violations[:violations])
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def _trimmed_info(
    info: error_details_pb2.ErrorInfo, keep: int, omitted_violations: int
) -> error_details_pb2.ErrorInfo:
    trimmed = error_details_pb2.ErrorInfo(reason=info.reason, domain=info.domain)
    keys = sorted(info.metadata)
    for key in keys[:keep]:
        trimmed.metadata[shorten(key)] = shorten(info.metadata[key])
    if len(keys) > keep:
        trimmed.metadata["omitted_metadata"] = str(len(keys) - keep)
    if omitted_violations > 0:
        trimmed.metadata["omitted_violations"] = str(omitted_violations)
    return trimmed


def _details(status: ErrorStatus) -> list[Message]:
    """ErrorInfo always; BadRequest with the field violations, RetryInfo with a retry delay."""
    details: list[Message] = [
        error_details_pb2.ErrorInfo(reason=status.reason, domain=DOMAIN, metadata=status.metadata)
    ]
    if status.violations:
        details.append(_bad_request(status.violations))
    if status.retry_after_s is not None:
        details.append(_retry(status.retry_after_s))
    return details


def _retry(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=max(seconds, 0.0)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _bad_request(violations: tuple[tuple[str, str], ...]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(
                field=shorten(f), description=shorten(d, MAX_DESCRIPTION)
            )
            for f, d in violations
        ]
    )
