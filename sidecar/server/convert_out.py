"""Domain results -> protobuf responses: decisions, attempts, usage, outputs, the registry."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from google.protobuf import duration_pb2, struct_pb2, timestamp_pb2

from sidecar.domain.model import ModelSpec
from sidecar.domain.outcome import AttemptOutcome, AttemptRecord, FailureClass
from sidecar.domain.plan import Candidate, PerDecision, Plan
from sidecar.domain.request import Capability, ToolCall
from sidecar.domain.response import FinishReason, StreamChunk, TokenLogprob, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.limits.budgets import Usage as BudgetUsage
from sidecar.policy.health import HealthSnapshot, HealthState
from sidecar.server._proto.turnout.v1 import router_pb2 as pb

_FINISH = {
    FinishReason.STOP: pb.FINISH_REASON_STOP,
    FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.TOOL_CALLS: pb.FINISH_REASON_TOOL_CALLS,
    FinishReason.CONTENT_FILTER: pb.FINISH_REASON_CONTENT_FILTER,
}
_OUTCOME = {
    AttemptOutcome.SUCCESS: pb.ATTEMPT_OUTCOME_SUCCESS,
    AttemptOutcome.FAILURE: pb.ATTEMPT_OUTCOME_FAILURE,
    AttemptOutcome.CANCELLED: pb.ATTEMPT_OUTCOME_CANCELLED,
}
_FAILURE: dict[FailureClass, Any] = {
    fc: pb.FailureClass.Value(f"FAILURE_CLASS_{fc.name}") for fc in FailureClass
}
_CAPABILITY: dict[Capability, Any] = {c: pb.Capability.Value(f"CAPABILITY_{c.name}") for c in Capability}
_HEALTH: dict[HealthState, Any] = {s: pb.HealthState.Value(f"HEALTH_STATE_{s.name}") for s in HealthState}


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    """Seconds as a Duration, to the microsecond as `Duration.FromTimedelta(timedelta(seconds=...))`
    makes it (the same message: a test compares them), at a quarter of its cost: a decision
    carries one per candidate."""
    if seconds is None:
        return None
    if seconds < 0:  # never a latency; the slow path keeps protobuf's normalisation of the sign
        d = duration_pb2.Duration()
        d.FromTimedelta(timedelta(seconds=seconds))
        return d
    micros = round(seconds * 1_000_000)
    return duration_pb2.Duration(seconds=micros // 1_000_000, nanos=(micros % 1_000_000) * 1000)


def candidate(c: Candidate) -> pb.Candidate:
    return pb.Candidate(
        model=c.model.name,
        provider=c.model.provider,
        estimated_cost_usd_nanos=c.estimated_cost_usd_nanos,
        estimated_latency=duration(c.estimated_latency_s),
        score=c.score,
    )


# Each decision's message, kept while a plan of that decision lives (the decision cache holds it).
_decisions: PerDecision[pb.Decision] = PerDecision()


def decision(plan: Plan) -> pb.Decision:
    """The decision message. Built once per plan (a cached plan's copies share it); the fields a
    cache hit changes are set on a copy."""
    base = _decisions.get(plan)
    if base is None:
        base = _decisions.put(plan, _decision(plan))
    d = pb.Decision()
    d.CopyFrom(base)
    d.cache_hit = plan.cache_hit
    d.decision_time_micros = plan.decision_time_micros
    return d


def _decision(plan: Plan) -> pb.Decision:
    choice = plan.choice
    t = plan.truncation
    return pb.Decision(
        model=choice.model.name,
        provider=choice.model.provider,
        fallbacks=[candidate(c) for c in plan.candidates[1:]],
        route=plan.route,
        strategy=plan.strategy,
        reasons=[str(r) for r in plan.reasons],
        rejected=[pb.Rejection(model=r.model, provider=r.provider, reason=r.reason) for r in plan.rejections],
        estimated_input_tokens=plan.estimated_input_tokens,
        estimated_cost_usd_nanos=choice.estimated_cost_usd_nanos,
        estimated_latency=duration(choice.estimated_latency_s),
        stages=[
            pb.Stage(
                candidates=[candidate(c) for c in stage.candidates], escalate_on=sorted(stage.escalate_on)
            )
            for stage in plan.stages
        ],
        # As mappings: upb builds the repeated messages from them in one pass, much faster than a
        # Consideration message made per model (a 50-model route considers 50).
        considered=[
            {"model": c.model, "provider": c.provider, "kept": c.kept, "notes": c.notes}
            for c in plan.considered
        ],
        truncation=(
            pb.Truncation(
                strategy=t.strategy, dropped_messages=t.dropped_messages, removed_tokens=t.removed_tokens
            )
            if t
            else None
        ),
        cheap_model_score=plan.classifier_score,
    )


def usage(u: Usage) -> pb.Usage:
    return pb.Usage(
        input_tokens=u.input_tokens, output_tokens=u.output_tokens, cached_input_tokens=u.cached_input_tokens
    )


def attempts(records: Iterable[AttemptRecord]) -> list[pb.Attempt]:
    return [
        pb.Attempt(
            number=a.number,
            model=a.model,
            provider=a.provider,
            outcome=_OUTCOME[a.outcome],
            failure_class=_FAILURE[a.failure_class] if a.failure_class else pb.FAILURE_CLASS_UNSPECIFIED,
            error_message=a.error_message,
            latency=duration(a.latency_s),
            time_to_first_token=duration(a.time_to_first_token_s),
            hedged=a.hedged,
            usage=usage(a.usage),
            cost_usd_nanos=a.cost_usd_nanos,
            escalated=a.escalated,
            retry_of=a.retry_of,
        )
        for a in records
    ]


def delta(chunk: StreamChunk, *, logprobs: bool = False) -> pb.OutputDelta:
    """A stream chunk; its tokens' log-probabilities only when the client asked (a cascade may ask
    for them itself, to judge confidence)."""
    return pb.OutputDelta(
        text=chunk.text,
        tool_calls=[
            pb.ToolCallDelta(index=d.index, id=d.id, name=d.name, arguments_json=d.arguments_json)
            for d in chunk.tool_calls
        ],
        logprobs=token_logprobs(chunk.logprobs) if logprobs else (),
    )


def token_logprobs(tokens: Iterable[TokenLogprob]) -> list[pb.TokenLogprob]:
    return [
        pb.TokenLogprob(
            token=t.token,
            logprob=t.logprob,
            utf8=t.token_bytes,
            top_logprobs=[pb.TopLogprob(token=a.token, logprob=a.logprob, utf8=a.token_bytes) for a in t.top],
        )
        for t in tokens
    ]


def tool_calls(calls: Iterable[ToolCall]) -> list[pb.ToolCall]:
    return [pb.ToolCall(id=c.id, name=c.name, arguments_json=c.arguments_json) for c in calls]


def json_value(value: Any | None) -> struct_pb2.Value | None:
    if value is None:
        return None
    v = struct_pb2.Value()
    if isinstance(value, dict):
        v.struct_value.update(value)
    elif isinstance(value, list):
        v.list_value.extend(value)
    elif isinstance(value, bool):
        v.bool_value = value
    elif isinstance(value, int | float):
        v.number_value = value
    elif isinstance(value, str):
        v.string_value = value
    else:
        v.null_value = struct_pb2.NULL_VALUE
    return v


def _summary(plan: Plan, result: ExecutionResult, request_id: str, trace_id: str) -> dict[str, Any]:
    """The fields a GenerateResponse and a StreamEnd share."""
    c = result.completion
    return {
        "finish_reason": _FINISH.get(c.finish_reason, pb.FINISH_REASON_UNSPECIFIED),
        "usage": usage(c.usage),
        "cost_usd_nanos": result.cost_usd_nanos,
        "total_cost_usd_nanos": result.total_cost_usd_nanos,
        "agreement": result.agreement,
        "model": result.candidate.model.name,
        "provider": result.candidate.model.provider,
        "decision": decision(plan),
        "attempts": attempts(result.attempts),
        "trace_id": trace_id,
        "request_id": request_id,
    }


def generate_response(
    plan: Plan, result: ExecutionResult, request_id: str, trace_id: str, *, logprobs: bool = False
) -> pb.GenerateResponse:
    c = result.completion
    output = pb.Output(
        text=c.text,
        tool_calls=tool_calls(c.tool_calls),
        parsed_json=json_value(result.parsed_json),
        refusal=c.refusal,
        logprobs=token_logprobs(c.logprobs) if logprobs else (),
    )
    return pb.GenerateResponse(output=output, **_summary(plan, result, request_id, trace_id))


def stream_end(plan: Plan, result: ExecutionResult, request_id: str, trace_id: str) -> pb.StreamEnd:
    return pb.StreamEnd(
        tool_calls=tool_calls(result.completion.tool_calls),
        parsed_json=json_value(result.parsed_json),
        **_summary(plan, result, request_id, trace_id),
    )


def model_info(model: ModelSpec, endpoint: str, health: HealthSnapshot) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=model.name,
        provider=model.provider,
        upstream_model=model.upstream_model,
        endpoint=endpoint,
        input_price_usd_nanos_per_mtok=model.price.input_per_mtok,
        output_price_usd_nanos_per_mtok=model.price.output_per_mtok,
        cached_input_price_usd_nanos_per_mtok=model.price.cached_input_per_mtok,
        context_window=model.context_window,
        max_output_tokens=model.max_output_tokens,
        capabilities=sorted(_CAPABILITY[c] for c in model.capabilities),
        tags=sorted(model.tags),
        quality=model.quality,
        health=pb.ModelHealth(
            state=_HEALTH[health.state],
            error_rate=health.error_rate,
            latency_ewma=duration(health.latency_ewma_s),
            attempts=health.attempts,
            last_failure=_FAILURE[health.last_failure]
            if health.last_failure
            else pb.FAILURE_CLASS_UNSPECIFIED,
        ),
    )


def budget_usage(u: BudgetUsage) -> pb.BudgetUsage:
    b = u.budget
    resets_at = timestamp_pb2.Timestamp()
    resets_at.FromNanoseconds(int(u.resets_at * 1e9))
    return pb.BudgetUsage(
        name=b.name,
        scope=u.scope,
        window=b.window.label,
        spent_usd_nanos=u.spent_usd_nanos,
        limit_usd_nanos=b.limit_usd_nanos,
        resets_at=resets_at,
        hard=b.hard,
        soft_reached=u.soft,
    )
