"""The one error table: what status each domain error ends a call with, for every front door.

The gRPC server renders an ErrorStatus as a google.rpc.Status (server/errors.py), the HTTP front
door as each API's own error body with the HTTP status google.rpc.Code maps the code to
(http_api/errors.py). Both read this table, so a failure means the same on either port.

InvalidRequest       INVALID_ARGUMENT    400  every field violation
NotFound             NOT_FOUND           404  the field that named it
NoCandidate          FAILED_PRECONDITION 400  each rejection in metadata
DeadlineExceeded     DEADLINE_EXCEEDED   504  attempts in metadata
ResourceExhausted    RESOURCE_EXHAUSTED  429  retry after (BudgetExceeded: until the budget resets)
AllCandidatesFailed  UNAVAILABLE         503  (+ retry after when every failure was transient);
                     INVALID_ARGUMENT    400  when the provider rejected the request as malformed
StreamInterrupted    UNAVAILABLE         503  what was delivered
Unavailable          UNAVAILABLE         503  retry after 1 s
Unauthenticated      UNAUTHENTICATED     401
anything else        INTERNAL            500  no internals in the message
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from sidecar.domain.errors import (
    AllCandidatesFailed,
    DeadlineExceeded,
    InvalidRequest,
    NoCandidate,
    NotFound,
    ResourceExhausted,
    StreamInterrupted,
    TurnoutError,
    Unauthenticated,
    Unavailable,
)
from sidecar.domain.outcome import FailureClass


class Code(enum.IntEnum):
    """The google.rpc.Code values Turnout answers with (the same numbers as grpc.StatusCode)."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16

    @property
    def http_status(self) -> int:
        """The HTTP status google.rpc.Code documents for this code."""
        return _HTTP[self]


_HTTP = {
    Code.INVALID_ARGUMENT: 400,
    Code.FAILED_PRECONDITION: 400,
    Code.UNAUTHENTICATED: 401,
    Code.NOT_FOUND: 404,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    code: Code
    message: str  # the client may read it: a TurnoutError's own words, else "internal error"
    reason: str  # a stable machine-readable reason, e.g. INVALID_REQUEST
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[tuple[str, str], ...] = ()  # (field path, what is wrong with it)
    retry_after_s: float | None = None


def error_status(exc: BaseException) -> ErrorStatus:
    """How `exc` ends the call. Never raises; unknown exceptions become INTERNAL, saying nothing."""
    if not isinstance(exc, TurnoutError):
        return ErrorStatus(Code.INTERNAL, "internal error", "INTERNAL")
    code, violations, retry = _classify(exc)
    return ErrorStatus(code, str(exc), exc.reason, exc.metadata, violations, retry)


def _classify(exc: TurnoutError) -> tuple[Code, tuple[tuple[str, str], ...], float | None]:
    match exc:
        case InvalidRequest():
            return Code.INVALID_ARGUMENT, tuple((v.field, v.description) for v in exc.violations), None
        case NotFound():
            return Code.NOT_FOUND, ((exc.field, exc.message),), None
        case NoCandidate():
            return Code.FAILED_PRECONDITION, (), None
        case DeadlineExceeded():
            return Code.DEADLINE_EXCEEDED, (), None
        case ResourceExhausted():
            return Code.RESOURCE_EXHAUSTED, (), max(exc.retry_after_s, 0.0)
        case AllCandidatesFailed():
            if exc.final_failure is FailureClass.BAD_REQUEST:
                return Code.INVALID_ARGUMENT, (), None
            return Code.UNAVAILABLE, (), exc.retry_after_s
        case StreamInterrupted():
            return Code.UNAVAILABLE, (), None
        case Unavailable():
            return Code.UNAVAILABLE, (), 1.0
        case Unauthenticated():
            return Code.UNAUTHENTICATED, (), None
    return Code.INTERNAL, (), None
