"""The one place where errors become gRPC statuses, with google.rpc.Status details.

InvalidRequest       INVALID_ARGUMENT    ErrorInfo + BadRequest (every field violation)
NotFound             NOT_FOUND           ErrorInfo + BadRequest (the field that named it)
NoCandidate          FAILED_PRECONDITION ErrorInfo (each rejection in metadata)
DeadlineExceeded     DEADLINE_EXCEEDED   ErrorInfo (attempts in metadata)
ResourceExhausted    RESOURCE_EXHAUSTED  ErrorInfo + RetryInfo
AllCandidatesFailed  UNAVAILABLE         ErrorInfo (+ RetryInfo when every failure was transient);
                     INVALID_ARGUMENT when the provider rejected the request as malformed
StreamInterrupted    UNAVAILABLE         ErrorInfo (what was delivered)
Unavailable          UNAVAILABLE         ErrorInfo + RetryInfo
anything else        INTERNAL            ErrorInfo (no internals in the message)
"""

from __future__ import annotations

import logging
from datetime import timedelta

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sidecar.domain.errors import (
    AllCandidatesFailed,
    DeadlineExceeded,
    InvalidRequest,
    NoCandidate,
    NotFound,
    ResourceExhausted,
    StreamInterrupted,
    TurnoutError,
    Unavailable,
)
from sidecar.domain.outcome import FailureClass

DOMAIN = "turnout.dev"
MAX_MESSAGE = 2000
log = logging.getLogger(__name__)


def to_status(exc: BaseException) -> grpc.Status:
    code, details = _code_and_details(exc)
    message = str(exc)[:MAX_MESSAGE] if isinstance(exc, TurnoutError) else "internal error"
    status = status_pb2.Status(code=code, message=message)
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    result: grpc.Status = rpc_status.to_status(status)
    return result


def _info(exc: TurnoutError) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata)


def _retry(seconds: float) -> error_details_pb2.RetryInfo:
    delay = duration_pb2.Duration()
    delay.FromTimedelta(timedelta(seconds=max(seconds, 0.0)))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def _bad_request(violations: list[tuple[str, str]]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
        ]
    )


def _code_and_details(exc: BaseException) -> tuple[int, list[Message]]:
    match exc:
        case InvalidRequest():
            fields = [(v.field, v.description) for v in exc.violations]
            return code_pb2.INVALID_ARGUMENT, [_info(exc), _bad_request(fields)]
        case NotFound():
            return code_pb2.NOT_FOUND, [_info(exc), _bad_request([(exc.field, exc.message)])]
        case NoCandidate():
            return code_pb2.FAILED_PRECONDITION, [_info(exc)]
        case DeadlineExceeded():
            return code_pb2.DEADLINE_EXCEEDED, [_info(exc)]
        case ResourceExhausted():
            return code_pb2.RESOURCE_EXHAUSTED, [_info(exc), _retry(exc.retry_after_s)]
        case AllCandidatesFailed():
            if exc.final_failure is FailureClass.BAD_REQUEST:
                return code_pb2.INVALID_ARGUMENT, [_info(exc)]
            retry = exc.retry_after_s
            return code_pb2.UNAVAILABLE, [_info(exc)] + ([_retry(retry)] if retry is not None else [])
        case StreamInterrupted():
            return code_pb2.UNAVAILABLE, [_info(exc)]
        case Unavailable():
            return code_pb2.UNAVAILABLE, [_info(exc), _retry(1.0)]
        case TurnoutError():
            return code_pb2.INTERNAL, [_info(exc)]
    log.exception("unexpected error while serving a request", exc_info=exc)
    return code_pb2.INTERNAL, [error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN)]
