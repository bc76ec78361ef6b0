"""What a route is made of, as plain data: its model pool and its strategies' settings.

config.py builds these from YAML; build.py compiles them into strategy objects. Nothing here
runs; it only describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sidecar.domain.plan import ExecutionPolicy

OverflowPolicy = Literal["reject", "drop_oldest", "trim_middle"]


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches when every condition given holds; empty conditions match anything.

    Metadata conditions (task types, tiers, tags, labels) are the safe default. Content conditions
    (regex, keywords, input length, code) inspect the prompt in memory only, and only on routes
    whose rules strategy turns `content_heuristics` on.
    """

    name: str
    models: tuple[str, ...]
    task_types: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()  # any one of them
    labels: tuple[tuple[str, str], ...] = ()  # all of them
    regex: tuple[str, ...] = ()  # any one matches the last user message
    keywords: tuple[str, ...] = ()  # any one occurs in the last user message (case-insensitive)
    min_input_tokens: int | None = None
    max_input_tokens: int | None = None
    has_code: bool | None = None

    @property
    def uses_content(self) -> bool:
        return bool(
            self.regex
            or self.keywords
            or self.has_code is not None
            or self.min_input_tokens is not None
            or self.max_input_tokens is not None
        )


@dataclass(frozen=True, slots=True)
class RulesSpec:
    rules: tuple[Rule, ...] = ()
    strict: bool = False  # reject unknown task types / tiers instead of using the route's models
    content_heuristics: bool = False


@dataclass(frozen=True, slots=True)
class CapabilitySpec:
    on_overflow: OverflowPolicy = "reject"
    # Output room assumed when the request sets no max_output_tokens.
    output_reserve_tokens: int = 256


@dataclass(frozen=True, slots=True)
class TierSpec:
    models: frozenset[str] | None = None  # None: every model of the route
    latency_budget_s: float | None = None
    max_cost_usd_nanos: int | None = None


@dataclass(frozen=True, slots=True)
class SlaSpec:
    tiers: dict[str, TierSpec] = field(default_factory=dict)
    default_tier: str = "default"  # the tier entry used for requests without a known tier
    quality_floor: float | None = None


@dataclass(frozen=True, slots=True)
class ScoringSpec:
    cost: float = 1.0
    latency: float = 0.5
    quality: float = 1.0
    errors: float = 2.0


@dataclass(frozen=True, slots=True)
class Target:
    """What a route asks of a calibrated classifier instead of a raw threshold.

    quality: keep at least this fraction of the strong model's quality (e.g. 0.95);
    cost: spend at most this fraction of strong-only cost (e.g. 0.3).
    """

    kind: Literal["quality", "cost"]
    value: float

    def __str__(self) -> str:
        return f"{self.kind} {self.value:g}"


@dataclass(frozen=True, slots=True)
class ClassifierSpec:
    name: str = "length"
    threshold: float = 0.5  # P(a cheap model suffices) at or above which cheap models go first
    # Set when the route stated a target; `threshold` is then the one the classifier's
    # calibration table gives for it (resolved when the config is read).
    target: Target | None = None
    # A prompt unlike the classifier's training data: "length" (the length heuristic decides, read
    # on the classifier's scale), "strong" (best quality first) or "ignore" (trust the score).
    unfamiliar: str = "length"


@dataclass(frozen=True, slots=True)
class SuccessSpec:
    """Order a route's models by each one's predicted chance of success and by price."""

    classifier: str = "learned"
    # registry model -> the classifier's trained model it is read as; unmapped models go last.
    models: tuple[tuple[str, str], ...] = ()
    # the cheapest model whose predicted success is at least this fraction of the best one's goes first
    quality: float = 0.95


@dataclass(frozen=True, slots=True)
class CascadeSpec:
    max_stages: int = 2
    escalate_on: frozenset[str] = frozenset({"invalid_output", "length", "refusal"})
    min_quality_gain: float = 0.05  # a later stage must be at least this much better


@dataclass(frozen=True, slots=True)
class ConsensusSpec:
    """The `voters` cheapest survivors answer at once; `need` agreeing answers are accepted, else
    the rest of the survivors, best quality first, answer as the escalation stage."""

    voters: int = 2
    need: int = 2
    agree: str = "choice"  # see sidecar/execution/agreement.py
    escalate_on: frozenset[str] = frozenset({"length", "refusal"})  # a voter's answer that is no vote


StrategySpec = (
    RulesSpec
    | CapabilitySpec
    | SlaSpec
    | ScoringSpec
    | ClassifierSpec
    | SuccessSpec
    | CascadeSpec
    | ConsensusSpec
)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    name: str
    models: tuple[str, ...]  # the pool, in preference order; used when no rule picks a list
    strategies: tuple[StrategySpec, ...] = ()
    # How many models a plan keeps, first choice and fallbacks (and cascade stages) together.
    max_candidates: int = 5
    execution: ExecutionPolicy = ExecutionPolicy()  # noqa: RUF009 - frozen, sharing is safe
