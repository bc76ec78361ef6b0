"""The simulator's settings: typed, validated, loaded from YAML with errors that name file and field.

A fault has one shape wherever it comes from (standing in a model profile, or posted to the admin API),
so FaultSpec lives here beside the profiles that embed it. `replay:` turns on replay mode (replay.py):
known prompts are answered with each model's recorded outcome from a scored dataset.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class SimulatorConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid; the message says where and why."""


class FaultKind(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After and retry-after-ms
    SERVER_ERROR = "server_error"  # 500
    OVERLOADED = "overloaded"  # 503
    HANG = "hang"  # accept and never answer until the client goes away
    MALFORMED_JSON = "malformed_json"  # 200 with a body (or an SSE data line) that is not JSON
    STREAM_CUT = "stream_cut"  # close the connection part-way, no [DONE], no finish_reason
    SLOW = "slow"  # multiply the latency by `factor`; combines with any other fault
    # Faults in the answer itself: a 200 whose content is what a cascade escalates on.
    REFUSAL = "refusal"  # message.content null, message.refusal set, finish_reason stop
    BAD_OUTPUT = "bad_output"  # JSON that breaks the requested schema (or json_object); else not JSON
    LOW_CONFIDENCE = "low_confidence"  # logprobs, when asked, average `mean_logprob`


class FaultSpec(BaseModel):
    """One fault: which model it hits, what it does, and how often (the next `count`, or with `rate`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="*", min_length=1, description='a model name, or "*" for every model')
    kind: FaultKind
    count: int | None = Field(default=None, ge=1, description="fire on the next N matching requests")
    rate: float | None = Field(default=None, ge=0.0, le=1.0, description="probability per request")
    retry_after_s: float = Field(default=1.0, ge=0.0, description="rate_limit: the advertised wait")
    after_chunks: int = Field(default=2, ge=0, description="stream_cut: SSE chunks sent before the cut")
    factor: float = Field(default=5.0, gt=0.0, description="slow: latency multiplier")
    mean_logprob: float = Field(
        default=-2.5, le=0.0, description="low_confidence: the answer's mean token logprob"
    )

    @model_validator(mode="after")
    def _count_or_rate(self) -> Self:
        if (self.count is None) == (self.rate is None):
            raise ValueError("give exactly one of 'count' (the next N requests) or 'rate' (a probability)")
        return self


class ModelProfile(BaseModel):
    """How one model behaves: its latency distribution, its limits and its standing faults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_ms: float = Field(default=300.0, gt=0.0, description="median time to first token")
    tokens_per_second: float = Field(default=100.0, gt=0.0)
    jitter: float = Field(default=0.25, ge=0.0, description="sigma of the lognormal noise")
    tail_probability: float = Field(default=0.02, ge=0.0, le=1.0)
    tail_multiplier: float = Field(default=4.0, ge=1.0)
    context_window: int = Field(default=128_000, gt=0)
    max_output_tokens: int = Field(default=16_384, gt=0)
    default_output_tokens: int = Field(default=64, gt=0, description="answer length without max_tokens")
    confidence: float = Field(
        default=-0.2, le=0.0, description="mean token logprob, e.g. -0.05 strong, -0.6 weak"
    )
    faults: tuple[FaultSpec, ...] = ()


class ReplaySettings(BaseModel):
    """Replay mode: answer a dataset's prompts with each model's recorded outcome (see replay.py).

    Relative paths in a YAML file are read relative to that file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Path = Field(description="CSV: sample_id, question (or prompt), [split], score:<model>...")
    split: str | None = Field(default=None, min_length=1, description="only the rows of this split")
    responses: tuple[Path, ...] = Field(
        default=(), description="CSVs with sample_id and <model>|model_response (RouterBench original/)"
    )
    unknown_prompt: Literal["error", "simulate"] = Field(
        default="error", description="a prompt (or model) without a recorded outcome: 404, or a normal answer"
    )

    @model_validator(mode="after")
    def _files_exist(self) -> Self:
        for path in (self.dataset, *self.responses):
            if not path.is_file():
                raise ValueError(f"no such file: {path}")
        return self


class SimulatorConfig(BaseModel):
    """The whole simulator: a seed, a time scale, optional auth, a profile per model name, and replay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 7
    time_scale: float = Field(default=1.0, ge=0.0, description="multiplies every delay; 0 = instant")
    api_key: str | None = Field(default=None, min_length=1)
    default_profile: ModelProfile = ModelProfile()
    models: dict[str, ModelProfile] = Field(default_factory=dict)
    replay: ReplaySettings | None = None

    def profile_for(self, model: str) -> ModelProfile:
        """The named model's profile; any other name is served with the default profile."""
        return self.models.get(model, self.default_profile)


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem, each starting with its field path, e.g. `models.gpt-4o.ttft_ms: ...`."""
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{path}: {item['msg']}")
    return "; ".join(lines)


def load_simulator_config(path: str | Path) -> SimulatorConfig:
    """Read and validate a simulator YAML file; raise SimulatorConfigError naming the file and field."""
    source = Path(path)
    try:
        raw: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SimulatorConfigError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SimulatorConfigError(f"{source}: not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SimulatorConfigError(f"{source}: the top level must be a mapping, not {type(raw).__name__}")
    _resolve_replay_paths(raw, source.parent)
    try:
        return SimulatorConfig.model_validate(raw)
    except ValidationError as exc:
        raise SimulatorConfigError(f"{source}: {describe_validation_error(exc)}") from exc


def _resolve_replay_paths(raw: dict[str, Any], base: Path) -> None:
    """Make `replay:`'s relative paths relative to the config file, not to the working directory."""
    replay = raw.get("replay")
    if not isinstance(replay, dict):
        return
    if isinstance(replay.get("dataset"), str):
        replay["dataset"] = str(base / replay["dataset"])
    responses = replay.get("responses")
    if isinstance(responses, list):
        replay["responses"] = [str(base / r) if isinstance(r, str) else r for r in responses]
