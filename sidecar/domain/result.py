"""What the executor hands back for an answered request: the answer, who gave it, and every attempt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar.domain.outcome import AttemptRecord
from sidecar.domain.plan import Candidate
from sidecar.domain.response import Completion


@dataclass(frozen=True, slots=True)
class Relaying:
    """In a stream: the chunks that follow come from this candidate. Sent when an attempt wins the
    race to a first token, and again when another model continues a broken stream, so an API
    that names the model in every chunk names the one that wrote it."""

    candidate: Candidate


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    completion: Completion
    candidate: Candidate
    attempts: tuple[AttemptRecord, ...]  # in start order
    parsed_json: Any | None = None  # the answer as JSON, when the request asked for JSON output
    winner: int = 0  # the number of the attempt that answered
    agreement: str = ""  # a consensus stage's tally when it accepted, e.g. "2 of 2 agreed on 'B'"

    @property
    def cost_usd_nanos(self) -> int:
        return next((a.cost_usd_nanos for a in self.attempts if a.number == self.winner), 0)

    @property
    def total_cost_usd_nanos(self) -> int:
        return sum(a.cost_usd_nanos for a in self.attempts)
