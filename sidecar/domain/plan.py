"""The policy's output: a frozen, explained plan that the executor runs and the server reports."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.domain.model import ModelSpec


@dataclass(frozen=True, slots=True)
class Candidate:
    model: ModelSpec
    estimated_cost_usd_nanos: int = 0
    estimated_latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Rejection:
    model: str
    provider: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """Candidates in the order they are to be tried; the first is the choice."""

    route: str
    strategy: str
    candidates: tuple[Candidate, ...]
    reasons: tuple[str, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    estimated_input_tokens: int = 0
    decision_time_micros: int = 0

    @property
    def choice(self) -> Candidate:
        return self.candidates[0]
