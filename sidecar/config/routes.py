"""The `routes:` part of the config file: route settings, their strategies, and their conversion.

A route is a pool of models in preference order plus strategies applied in the order listed:

    routes:
      - name: support-chat
        models: [claude-3-5-haiku, gpt-4o-mini, gpt-4o]
        strategies:
          - rules: {strict: true, rules: [...]}
          - capability: {on_overflow: drop_oldest}
          - sla: {tiers: {free: {latency_budget_s: 2}}}
          - scoring: {cost: 1, latency: 0.5, quality: 1}
          - classifier: {name: learned, target: {quality: 0.95}}   # or threshold: 0.8
          - cascade                                  # a bare name takes the defaults

`predicted_success` (choose among N models by the learned router's per-model predictions) takes
`models: {registry name: trained name}`; see sidecar/policy/strategies/success.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sidecar.domain.model import usd_to_nanos
from sidecar.domain.plan import ExecutionPolicy
from sidecar.policy.classifier import BUILTIN, Calibrated, Classifier, SuccessModel
from sidecar.policy.learned import ArtifactError
from sidecar.policy.regex import RegexError, compile_linear
from sidecar.policy.specs import (
    CapabilitySpec,
    CascadeSpec,
    ClassifierSpec,
    ConsensusSpec,
    RouteSpec,
    Rule,
    RulesSpec,
    ScoringSpec,
    SlaSpec,
    StrategySpec,
    SuccessSpec,
    Target,
    TierSpec,
)

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$"
ESCALATIONS = Literal["invalid_output", "length", "refusal", "low_confidence"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # as config.Strict


def _linear(pattern: str) -> str:
    try:
        compile_linear(pattern)
    except RegexError as exc:
        raise ValueError(str(exc)) from None
    return pattern


# A pattern that RE2, the linear-time engine the sidecar runs them on, compiles; an error names its index.
Pattern = Annotated[str, AfterValidator(_linear)]


class MatchSettings(Strict):
    task_types: list[str] = []
    tiers: list[str] = []
    tags: list[str] = []
    labels: dict[str, str] = {}
    # Content heuristics: only with `content_heuristics: true` on the rules strategy.
    regex: list[Pattern] = []
    keywords: list[str] = []
    min_input_tokens: int | None = Field(None, ge=0)
    max_input_tokens: int | None = Field(None, ge=0)
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


class RuleSettings(Strict):
    name: str
    match: MatchSettings = MatchSettings()
    models: list[str] = Field(min_length=1)


class RulesSettings(Strict):
    kind: Literal["rules"]
    strict: bool = False
    content_heuristics: bool = False
    rules: list[RuleSettings] = []

    @model_validator(mode="after")
    def _content_opt_in(self) -> RulesSettings:
        users = [r.name for r in self.rules if r.match.uses_content]
        if users and not self.content_heuristics:
            raise ValueError(
                f"rules {users} inspect the prompt (regex, keywords, length or code); "
                "set content_heuristics: true on this rules strategy to allow it"
            )
        return self


class CapabilitySettings(Strict):
    kind: Literal["capability"]
    on_overflow: Literal["reject", "drop_oldest", "trim_middle"] = "reject"
    output_reserve_tokens: int = Field(256, gt=0)


class TierSettings(Strict):
    models: list[str] | None = None
    latency_budget_s: float | None = Field(None, gt=0)
    max_cost_usd: float | None = Field(None, ge=0, le=1_000_000)  # usd_nanos in an int64


class SlaSettings(Strict):
    kind: Literal["sla"]
    tiers: dict[str, TierSettings] = {}
    default_tier: str = "default"
    quality_floor: float | None = Field(None, ge=0, le=1)


class ScoringSettings(Strict):
    kind: Literal["scoring"]
    cost: float = Field(1.0, ge=0)
    latency: float = Field(0.5, ge=0)
    quality: float = Field(1.0, ge=0)
    errors: float = Field(2.0, ge=0)


class TargetSettings(Strict):
    """`{quality: 0.95}`: keep 95% of the strong model's quality; `{cost: 0.3}`: spend <= 30% of its cost."""

    quality: float | None = Field(None, gt=0, le=1)
    cost: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _one(self) -> TargetSettings:
        if (self.quality is None) == (self.cost is None):
            raise ValueError("state exactly one of quality or cost")
        return self

    def to_target(self) -> Target:
        if self.quality is not None:
            return Target("quality", self.quality)
        assert self.cost is not None
        return Target("cost", self.cost)


def _builtin(name: str) -> Classifier:
    """The named classifier (built to check what it can do; `learned` loads its artifact once)."""
    if name not in BUILTIN:
        raise ValueError(f"unknown classifier {name!r}; known: {', '.join(BUILTIN)}")
    try:
        return BUILTIN[name]()
    except ArtifactError as exc:
        raise ValueError(str(exc)) from None


class ClassifierSettings(Strict):
    kind: Literal["classifier"]
    name: str = "length"
    # P(a cheap model suffices) at or above which cheap models go first (0.5 when neither is given)
    threshold: float | None = Field(None, ge=0, le=1)
    target: TargetSettings | None = None  # instead of threshold: resolved from the calibration table
    # a prompt unlike the classifier's training data (classifiers that can tell: `learned`)
    unfamiliar: Literal["length", "strong", "ignore"] = "length"

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        _builtin(name)
        return name

    @field_validator("target")
    @classmethod
    def _calibrated(cls, target: TargetSettings | None, info: ValidationInfo) -> TargetSettings | None:
        name = info.data.get("name")
        if target is None or name is None:
            return target
        if info.data.get("threshold") is not None:
            raise ValueError("give either threshold or target, not both")
        if not isinstance(_builtin(name), Calibrated):
            raise ValueError(f"classifier {name!r} has no calibration table; give a threshold instead")
        return target


class SuccessSettings(Strict):
    """Order candidates by predicted success and price (see policy/strategies/success.py)."""

    kind: Literal["predicted_success"]
    classifier: str = "learned"
    models: dict[str, str] = Field(min_length=1)  # registry model -> the classifier's trained model
    quality: float = Field(0.95, gt=0, le=1)  # cheapest with >= quality x the best predicted success

    @field_validator("classifier")
    @classmethod
    def _predicts_success(cls, name: str) -> str:
        if not isinstance(_builtin(name), SuccessModel):
            raise ValueError(f"classifier {name!r} does not predict per-model success")
        return name

    @field_validator("models")
    @classmethod
    def _trained(cls, models: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        name = info.data.get("classifier")
        if name is None:
            return models
        classifier = _builtin(name)
        assert isinstance(classifier, SuccessModel)
        unknown = {k: v for k, v in models.items() if v not in classifier.models}
        if unknown:
            k, v = next(iter(unknown.items()))
            raise ValueError(
                f"{k}: {v!r} is not a model classifier {name!r} was trained on; "
                f"known: {', '.join(classifier.models)}"
            )
        return models


class CascadeSettings(Strict):
    kind: Literal["cascade"]
    max_stages: int = Field(2, ge=2, le=5)
    escalate_on: list[ESCALATIONS] = ["invalid_output", "length", "refusal"]
    min_quality_gain: float = Field(0.05, ge=0, le=1)


class ConsensusSettings(Strict):
    kind: Literal["consensus"]
    voters: int = Field(2, ge=2, le=5)
    need: int | None = Field(None, ge=2)  # default: every voter
    agree: Literal["choice", "number", "text", "json"] = "choice"
    escalate_on: list[Literal["length", "refusal", "low_confidence"]] = ["length", "refusal"]

    @model_validator(mode="after")
    def _need_within_voters(self) -> ConsensusSettings:
        if self.need is not None and self.need > self.voters:
            raise ValueError(f"need ({self.need}) is more than voters ({self.voters})")
        return self


class ExecutionSettings(Strict):
    """How plans of this route are executed (see README, Execution)."""

    attempt_timeout_s: float | None = Field(None, gt=0)
    first_token_timeout_s: float | None = Field(None, gt=0)
    hedging: bool = False
    hedge_delay_s: float | None = Field(None, gt=0)
    max_retries: int = Field(1, ge=0, le=5)
    backoff_base_s: float = Field(0.2, gt=0)
    backoff_max_s: float = Field(5.0, gt=0)
    invalid_output: Literal["escalate", "retry"] = "escalate"
    stream_failover: Literal["error", "continue"] = "error"
    low_confidence_logprob: float | None = Field(None, lt=0)
    # Cascades, on an answer's first 400 characters, case-insensitive. Without lookahead, "anything
    # but this format" is said by listing the format under `expected_patterns`.
    refusal_patterns: list[Pattern] = []
    expected_patterns: list[Pattern] = []

    def to_policy(self) -> ExecutionPolicy:
        return ExecutionPolicy(
            attempt_timeout_s=self.attempt_timeout_s,
            first_token_timeout_s=self.first_token_timeout_s,
            hedging=self.hedging,
            hedge_delay_s=self.hedge_delay_s,
            max_retries=self.max_retries,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            invalid_output=self.invalid_output,
            stream_failover=self.stream_failover,
            low_confidence_logprob=self.low_confidence_logprob,
            refusal_patterns=tuple(self.refusal_patterns),
            expected_patterns=tuple(self.expected_patterns),
        )


StrategySettings = Annotated[
    RulesSettings
    | CapabilitySettings
    | SlaSettings
    | ScoringSettings
    | ClassifierSettings
    | SuccessSettings
    | CascadeSettings
    | ConsensusSettings,
    Field(discriminator="kind"),
]


class RouteSettings(Strict):
    name: Annotated[str, Field(pattern=NAME)]
    models: list[str] = Field(min_length=1)
    strategies: list[StrategySettings] = []
    # How many models a plan keeps: the first choice and its fallbacks (cascade stages included).
    max_candidates: int = Field(5, ge=1, le=50)
    execution: ExecutionSettings = ExecutionSettings()

    @field_validator("strategies", mode="before")
    @classmethod
    def _shorthand(cls, items: Any) -> Any:
        """`- cascade` and `- sla: {...}` become `{kind: cascade}` and `{kind: sla, ...}`."""
        if not isinstance(items, list):
            return items
        out: list[Any] = []
        for item in items:
            if isinstance(item, str):
                out.append({"kind": item})
            elif isinstance(item, Mapping) and len(item) == 1 and "kind" not in item:
                ((kind, settings),) = item.items()
                out.append(
                    {"kind": kind, **(settings or {})} if isinstance(settings, Mapping | None) else item
                )
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _once_each(self) -> RouteSettings:
        kinds = [s.kind for s in self.strategies]
        twice = sorted({k for k in kinds if kinds.count(k) > 1})
        if twice:
            raise ValueError(f"strategies {twice} are listed more than once")
        if "cascade" in kinds and "consensus" in kinds:
            raise ValueError("cascade and consensus both set the stages: use one of them")
        for s in self.strategies:
            if isinstance(s, ConsensusSettings) and self.max_candidates < s.voters + 1:
                raise ValueError(
                    f"max_candidates ({self.max_candidates}) leaves no room for {s.voters} consensus "
                    "voters and a model to escalate to"
                )
        return self

    def model_references(self) -> list[tuple[str, list[str]]]:
        """(where, model names) pairs, for checking that every named model is registered."""
        refs = [("models", self.models)]
        for i, s in enumerate(self.strategies):
            if isinstance(s, RulesSettings):
                refs += [
                    (f"strategies[{i}].rules[{j}] ({r.name}).models", r.models) for j, r in enumerate(s.rules)
                ]
            elif isinstance(s, SuccessSettings):
                refs.append((f"strategies[{i}].models", list(s.models)))
            elif isinstance(s, SlaSettings):
                refs += [
                    (f"strategies[{i}].tiers.{t}.models", v.models) for t, v in s.tiers.items() if v.models
                ]
        return refs


def to_route_spec(r: RouteSettings) -> RouteSpec:
    return RouteSpec(
        name=r.name,
        models=tuple(r.models),
        strategies=tuple(_spec(s) for s in r.strategies),
        max_candidates=r.max_candidates,
        execution=r.execution.to_policy(),
    )


def _spec(s: StrategySettings) -> StrategySpec:
    match s:
        case RulesSettings():
            return RulesSpec(tuple(_rule(r) for r in s.rules), s.strict, s.content_heuristics)
        case CapabilitySettings():
            return CapabilitySpec(s.on_overflow, s.output_reserve_tokens)
        case SlaSettings():
            tiers = {
                name: TierSpec(
                    frozenset(t.models) if t.models is not None else None,
                    t.latency_budget_s,
                    usd_to_nanos(t.max_cost_usd) if t.max_cost_usd is not None else None,
                )
                for name, t in s.tiers.items()
            }
            return SlaSpec(tiers, s.default_tier, s.quality_floor)
        case ScoringSettings():
            return ScoringSpec(s.cost, s.latency, s.quality, s.errors)
        case ClassifierSettings():
            target = s.target.to_target() if s.target else None
            return ClassifierSpec(s.name, 0.5 if s.threshold is None else s.threshold, target, s.unfamiliar)
        case SuccessSettings():
            return SuccessSpec(s.classifier, tuple(sorted(s.models.items())), s.quality)
        case CascadeSettings():
            return CascadeSpec(s.max_stages, frozenset(s.escalate_on), s.min_quality_gain)
        case ConsensusSettings():
            return ConsensusSpec(s.voters, s.need or s.voters, s.agree, frozenset(s.escalate_on))


def _rule(r: RuleSettings) -> Rule:
    m = r.match
    return Rule(
        name=r.name,
        models=tuple(r.models),
        task_types=frozenset(m.task_types),
        tiers=frozenset(m.tiers),
        tags=frozenset(m.tags),
        labels=tuple(sorted(m.labels.items())),
        regex=tuple(m.regex),
        keywords=tuple(m.keywords),
        min_input_tokens=m.min_input_tokens,
        max_input_tokens=m.max_input_tokens,
        has_code=m.has_code,
    )
