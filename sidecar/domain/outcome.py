"""The failure vocabulary, provider errors, and the record of every attempt.

Foreign errors (HTTP statuses, aiohttp exceptions, provider error bodies) are translated into
FailureClass at the provider edge; nothing above the providers sees a status code or an exception
type from a library. The executor decides what to do next from the class alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sidecar.domain.model import ModelSpec, ProviderSpec
from sidecar.domain.redact import redact
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import FinishReason, Usage


class FailureClass(enum.StrEnum):
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONTEXT_TOO_LONG = "context_too_long"
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    MALFORMED_RESPONSE = "malformed_response"
    CONNECTION = "connection"
    STREAM_INTERRUPTED = "stream_interrupted"
    CONTENT_FILTERED = "content_filtered"
    INVALID_OUTPUT = "invalid_output"
    CIRCUIT_OPEN = "circuit_open"
    NOT_ADMITTED = "not_admitted"  # Turnout's own limits: no slot or rate in time; never sent

    @property
    def tries_next_candidate(self) -> bool:
        """Whether another candidate may succeed where this one failed.

        Bad requests and content filtering would fail the same way anywhere: trying further
        candidates would only spend money and time.
        """
        return self not in _FINAL


_FINAL = frozenset({FailureClass.BAD_REQUEST, FailureClass.CONTENT_FILTERED})


class ProviderError(Exception):
    """A failed provider call, already classified. Messages never hold prompts or credentials."""

    def __init__(
        self,
        failure_class: FailureClass,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        message = redact(message)  # the last line for provider text: see domain/redact.py
        super().__init__(message)
        self.failure_class = failure_class
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def detail(self) -> str:
        """The message with the HTTP status, without the class (reported beside it)."""
        return self.message if self.status is None else f"HTTP {self.status}: {self.message}"

    def __str__(self) -> str:
        return f"{self.failure_class.value}: {self.detail}"


class AttemptOutcome(enum.StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One provider call, whatever became of it. Observers (health, telemetry) read these."""

    number: int  # 1-based, in start order
    model: str
    provider: str
    outcome: AttemptOutcome
    latency_s: float
    failure_class: FailureClass | None = None
    error_message: str = ""
    time_to_first_token_s: float | None = None
    hedged: bool = False
    usage: Usage = Usage()  # noqa: RUF009 - Usage is frozen, sharing the default is safe
    cost_usd_nanos: int = 0
    finish_reason: FinishReason | None = None
    retry_after_s: float | None = None
    escalated: str = ""  # a cascade moved on from this (successful) attempt, and why
    retry_of: int = 0  # the number of the attempt this one retries, if it is a retry
    cause: str = ""  # why it started: primary, fallback, hedge, retry or escalation (see AttemptStart)
    response_model: str = ""  # the model the provider says answered
    queue_wait_s: float = 0.0  # time spent waiting for admission (a slot or rate capacity)


class AttemptCause(enum.StrEnum):
    """Why an attempt started."""

    PRIMARY = "primary"  # the first candidate of the first stage
    FALLBACK = "fallback"  # an earlier attempt failed
    HEDGE = "hedge"  # an earlier attempt was slow
    RETRY = "retry"  # the same candidate again, after a retryable failure
    ESCALATION = "escalation"  # a cascade's later stage


@dataclass(frozen=True, slots=True)
class AttemptStart:
    """One provider call about to start: what the call's observer sees (domain/observe.py).

    `request` is the request as it will be sent; observers must not record its content unless the
    operator opted in.
    """

    number: int
    model: ModelSpec
    endpoint: ProviderSpec | None
    request: ChatRequest
    cause: AttemptCause
    hedged: bool = False
    retry_of: int = 0
    stage: int = 0  # 0-based cascade stage
    after: str = ""  # for a fallback or retry: the failure class that caused it
    breaker_state: str = "closed"
