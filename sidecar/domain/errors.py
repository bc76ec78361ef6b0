"""Errors that end a request, each with a stable reason; the server maps them to gRPC codes in one table.

TurnoutError
 +-- InvalidRequest        bad input; lists every field violation
 +-- NotFound              a named model or route does not exist
 +-- NoCandidate           nothing satisfies the constraints; lists every rejection
 +-- DeadlineExceeded      the request's deadline or latency budget ran out
 +-- ResourceExhausted     not admitted in time; says when to retry
 |    +-- BudgetExceeded    a spend budget's hard limit is reached; names it and when it resets
 +-- AllCandidatesFailed   every candidate was tried and failed; lists the attempts
 +-- Unavailable           the sidecar is shutting down or not ready
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass
from sidecar.domain.plan import Rejection
from sidecar.domain.redact import redact


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str  # a request field path, e.g. "messages[2].content[0].image.url"
    description: str


class TurnoutError(Exception):
    reason = "INTERNAL"

    def __init__(self, message: str) -> None:
        message = redact(message)  # a status's last line: no key-like text reaches a client
        super().__init__(message)
        self.message = message

    @property
    def metadata(self) -> dict[str, str]:
        """Extra machine-readable facts for ErrorInfo.metadata."""
        return {}


class InvalidRequest(TurnoutError):
    reason = "INVALID_REQUEST"

    def __init__(
        self, violations: list[FieldViolation] | tuple[FieldViolation, ...], reason: str = "INVALID_REQUEST"
    ) -> None:
        self.violations = tuple(violations)
        self.reason = reason
        first = self.violations[0]
        more = f" (and {len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
        where = f"{first.field}: " if first.field else ""  # no field: the request as a whole
        super().__init__(f"invalid request: {where}{first.description}{more}")


class NotFound(TurnoutError):
    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field


class NoCandidate(TurnoutError):
    reason = "NO_CANDIDATE"

    def __init__(self, route: str, rejections: tuple[Rejection, ...], detail: str = "") -> None:
        self.route = route
        self.rejections = rejections
        listed = "; ".join(f"{r.model}: {r.reason}" for r in rejections) or "no models configured"
        lead = f"no model on route {route!r} satisfies the request"
        super().__init__(f"{lead}{': ' + detail if detail else ''} ({listed})")

    @property
    def metadata(self) -> dict[str, str]:
        return {"route": self.route, **{f"rejected.{r.model}": r.reason for r in self.rejections}}


class DeadlineExceeded(TurnoutError):
    reason = "DEADLINE_EXCEEDED"

    def __init__(self, message: str, attempts: tuple[AttemptRecord, ...] = ()) -> None:
        super().__init__(message)
        self.attempts = attempts


class ResourceExhausted(TurnoutError):
    reason = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetExceeded(ResourceExhausted):
    reason = "BUDGET_EXCEEDED"

    def __init__(self, budget: str, scope: str, spent: str, resets_at: str, retry_after_s: float) -> None:
        where = f" for {scope}" if scope else ""
        super().__init__(
            f"budget {budget!r}{where} is spent ({spent}); it resets at {resets_at}", retry_after_s
        )
        self.budget = budget
        self.scope = scope
        self.resets_at = resets_at

    @property
    def metadata(self) -> dict[str, str]:
        return {"budget": self.budget, "scope": self.scope, "resets_at": self.resets_at}


class AllCandidatesFailed(TurnoutError):
    reason = "ALL_CANDIDATES_FAILED"

    def __init__(self, attempts: tuple[AttemptRecord, ...]) -> None:
        self.attempts = attempts
        tried = "; ".join(
            f"{a.model}: {_verdict(a)}{' - ' + a.error_message if a.error_message else ''}" for a in attempts
        )
        super().__init__(f"every candidate failed ({tried})")

    @property
    def retry_after_s(self) -> float | None:
        """When every failure was transient, the shortest retry-after any provider suggested."""
        transient = {FailureClass.RATE_LIMITED, FailureClass.OVERLOADED, FailureClass.CIRCUIT_OPEN}
        if not self.attempts or any(a.failure_class not in transient for a in self.attempts):
            return None
        hints = [a.retry_after_s for a in self.attempts if a.retry_after_s is not None]
        return min(hints) if hints else 1.0

    @property
    def final_failure(self) -> FailureClass | None:
        return self.attempts[-1].failure_class if self.attempts else None

    @property
    def metadata(self) -> dict[str, str]:
        return {f"attempt.{a.number}.{a.model}": _verdict(a) for a in self.attempts}


def _verdict(a: AttemptRecord) -> str:
    """What became of one attempt: its failure, a cascade's rejection of its answer, or its outcome."""
    if a.failure_class:
        return a.failure_class.value
    return f"rejected ({a.escalated})" if a.escalated else a.outcome.value


class Unavailable(TurnoutError):
    reason = "UNAVAILABLE"


class Unauthenticated(TurnoutError):
    """The call did not carry the token the server requires (server.auth_token_env)."""

    reason = "UNAUTHENTICATED"


class StreamInterrupted(TurnoutError):
    """A stream failed after part of the answer reached the caller; what was sent stays sent."""

    reason = "STREAM_INTERRUPTED"

    def __init__(self, attempts: tuple[AttemptRecord, ...], delivered_chars: int) -> None:
        self.attempts = attempts
        self.delivered_chars = delivered_chars
        # The stream that broke is the last failed attempt that had sent a token, not the last
        # one started: a hedge that lost the race to the first token comes after the winner
        # (and is only cancelled), and so do continuations that failed before their first token.
        failed = [a for a in attempts if a.outcome is AttemptOutcome.FAILURE]
        streamed = [a for a in failed if a.time_to_first_token_s is not None]
        last = (streamed or failed or list(attempts))[-1]
        after = [a for a in failed if a.number > last.number]
        tried = "; ".join(f"{a.model}: {_cause(a)}" for a in after)
        super().__init__(
            f"the stream from {last.model} failed after {delivered_chars} characters were sent "
            f"({_cause(last)}: {last.error_message}); the answer is incomplete"
            + (f" (no other model could continue it: {tried})" if tried else "")
        )


def _cause(a: AttemptRecord) -> str:
    return a.failure_class.value if a.failure_class else a.outcome.value
