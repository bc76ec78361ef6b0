"""The policy's output: a frozen, explained plan that the executor runs and the server reports.

A plan is a sequence of stages. The executor tries a stage's candidates in order (fallback), and
moves to the next stage when the stage fails or its output is rejected (a cascade). A plan
without a cascade has one stage.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sidecar.domain.model import ModelSpec
from sidecar.domain.request import Message

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate:
    model: ModelSpec
    estimated_cost_usd_nanos: int = 0
    estimated_latency_s: float = 0.0
    score: float | None = None  # lower is better, when a scoring strategy ranked the candidates


@dataclass(frozen=True, slots=True)
class Rejection:
    model: str
    provider: str
    reason: str


class Why:
    """A reason whose text is rendered only when read: decisions record, responses render.

    Rendering dozens of numbers into strings on every decision would cost more than the decision;
    the facts are fixed when the Why is made, so rendering later changes nothing.
    """

    __slots__ = ("args", "fmt")

    def __init__(self, fmt: str, *args: object) -> None:
        self.fmt = fmt
        self.args = args

    def __str__(self) -> str:
        return self.fmt.format(*self.args)

    def __repr__(self) -> str:
        return f"Why({str(self)!r})"


Note = str | Why


@dataclass(frozen=True, slots=True)
class Consideration:
    """One model the policy looked at: kept or dropped, and why (in the order strategies ran)."""

    model: str
    provider: str
    kept: bool
    notes: tuple[str, ...]  # rendered


@dataclass(frozen=True, slots=True)
class Consensus:
    """A stage whose candidates all answer at once and are accepted only when enough agree."""

    need: int  # how many answers must agree (at least 2)
    agree: str  # how answers are compared: "choice", "number", "text" or "json"


@dataclass(frozen=True, slots=True)
class Stage:
    candidates: tuple[Candidate, ...]
    # What moves the request on to the next stage besides every candidate failing, e.g.
    # "invalid_output", "length", "refusal", "low_confidence". Empty for the last stage.
    escalate_on: frozenset[str] = frozenset()
    # Set on a consensus stage: every candidate is a voter (no fallback among them).
    consensus: Consensus | None = None


@dataclass(frozen=True, slots=True)
class Truncation:
    """The conversation was cut to fit; the executor sends `messages` instead of the request's."""

    strategy: str  # "drop_oldest" or "trim_middle"
    dropped_messages: int
    removed_tokens: int
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class ExecutionPolicy:
    """How the executor runs a route's plans (the route's `execution:` settings)."""

    attempt_timeout_s: float | None = None  # per attempt, besides the provider's request timeout
    first_token_timeout_s: float | None = None  # streams: no first token by then -> next candidate
    hedging: bool = False
    hedge_delay_s: float | None = None  # None: the candidate's live p95 (else 1.5x its prior)
    max_retries: int = 1  # retries of the same candidate on a retryable failure, budget allowing
    backoff_base_s: float = 0.2
    backoff_max_s: float = 5.0
    invalid_output: str = "escalate"  # or "retry": once more on the same model, with the violations
    stream_failover: str = "error"  # or "continue": after tokens, another model continues the answer
    low_confidence_logprob: float | None = None  # cascade: escalate below this mean token logprob
    # Cascades, on the answer's first 400 characters, case-insensitive, run on RE2: an answer that
    # matches a refusal pattern, or none of the expected patterns (if any), counts as a refusal.
    refusal_patterns: tuple[str, ...] = ()
    expected_patterns: tuple[str, ...] = ()


class Decision:
    """The identity of one decision, shared by a plan and its cached copies (see PerDecision)."""

    __slots__ = ("__weakref__",)


class PerDecision(Generic[T]):
    """What a module renders from plans, one entry per decision, kept while a plan of the decision
    lives (the decision cache keeps one): `get(plan)`, else `put(plan, rendering)`.

    Keyed by the decision's id, with a weak reference that drops the entry when the decision
    goes (before its id can be reused): a lookup is one dict lookup on an int, cheaper than a
    WeakKeyDictionary's (which makes a weak reference per lookup), on every request."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[T, weakref.ref[Decision]]] = {}

    def get(self, plan: Plan) -> T | None:
        found = self._entries.get(id(plan.decision))
        return None if found is None else found[0]

    def __len__(self) -> int:
        """How many decisions it holds a rendering of."""
        return len(self._entries)

    def put(self, plan: Plan, rendering: T) -> T:
        key, entries = id(plan.decision), self._entries
        entries[key] = (rendering, weakref.ref(plan.decision, lambda _: entries.pop(key, None)))
        return rendering


_SCORE = "score %.3f (cost %.2f, latency %.2f, quality gap %.2f, errors %.2f)"  # %: cheaper than str.format


@dataclass(frozen=True, slots=True)
class Plan:
    route: str
    strategy: str  # the route's strategies, e.g. "rules>capability>sla>scoring>cascade"
    stages: tuple[Stage, ...]
    reasons: tuple[Note, ...] = ()  # in the order strategies ran; str() renders a Why
    # Every model looked at, in order, and what each strategy noted: rendered by `considered`.
    looked_at: tuple[ModelSpec, ...] = ()
    dropped: frozenset[str] = frozenset()
    notes: Mapping[str, Sequence[Note]] = field(default_factory=dict)
    listed_by: str = ""  # a note that every model looked at shares (the rule that listed them)
    # Per model: (score, cost, latency, quality gap, errors) when a scoring strategy ranked it.
    score_terms: Mapping[str, tuple[float, float, float, float, float]] = field(default_factory=dict)
    estimated_input_tokens: int = 0
    decision_time_micros: int = 0
    cache_hit: bool = False
    truncation: Truncation | None = None
    classifier_score: float | None = None  # P(a cheap model suffices), when a classifier ran
    execution: ExecutionPolicy = ExecutionPolicy()
    # Which decision this is: kept by the copies a decision cache hands out (dataclasses.replace
    # passes it on), so what renders a plan (a response message, telemetry's attributes) renders
    # each decision once, in a PerDecision of its own.
    decision: Decision = field(default_factory=Decision, compare=False, repr=False)

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every candidate in the order they would be tried, stage after stage."""
        stages = self.stages
        if len(stages) == 1:
            return stages[0].candidates  # the common plan, read on every request: no copy
        return tuple([c for stage in stages for c in stage.candidates])

    @property
    def choice(self) -> Candidate:
        return self.stages[0].candidates[0]

    @property
    def considered(self) -> tuple[Consideration, ...]:
        """Rendered on every read: the response renders it once per decision (Decision)."""
        return tuple(
            Consideration(m.name, m.provider, m.name not in self.dropped, self._notes_of(m.name))
            for m in self.looked_at
        )

    def _notes_of(self, model: str) -> tuple[str, ...]:
        rendered = [self.listed_by] if self.listed_by else []
        rendered += [str(n) for n in self.notes.get(model, ())]
        terms = self.score_terms.get(model)
        if terms is not None:
            rendered.append(_SCORE % terms)
        return tuple(rendered)

    @property
    def rejections(self) -> tuple[Rejection, ...]:
        return tuple(
            Rejection(m.name, m.provider, "; ".join(str(n) for n in self.notes.get(m.name, ())))
            for m in self.looked_at
            if m.name in self.dropped
        )
