"""One provider attempt as telemetry records it: a CLIENT span (GenAI conventions), GenAI client
metrics, and the trace context its HTTP request carries to the provider.

`started` runs as the attempt starts, in the attempt's own task (the outbound headers it sets
reach only this attempt's call); what it ends with is recorded later, at a drain (pending.py).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanContext, Status, StatusCode

from sidecar.domain.context import outbound_headers
from sidecar.domain.model import ModelSpec
from sidecar.domain.outcome import AttemptCause, AttemptOutcome, AttemptRecord, AttemptStart
from sidecar.domain.redact import redact
from sidecar.domain.response import Completion
from sidecar.telemetry import names as n
from sidecar.telemetry.finished_spans import UNSET, AttemptSpan
from sidecar.telemetry.privacy import input_messages, output_messages
from sidecar.telemetry.shared import NANOS_PER_USD, Shared

# Where an attempt's span goes: under a recorded span (its context); False: not made (the trace
# is not recorded); None: a trace of its own.
Parent = SpanContext | Literal[False] | None


class Open:
    """An attempt started and not yet recorded: its span, if made, and its endpoint's names."""

    __slots__ = ("address", "model", "provider", "span")

    def __init__(self, span: AttemptSpan | None, provider: str, address: str, model: ModelSpec) -> None:
        self.span = span
        self.provider = provider
        self.address = address
        self.model = model


def started(s: Shared, start: AttemptStart, parent: Parent) -> Open:
    model = start.model
    provider, address, port = s.endpoint(start.endpoint, model)
    if s.metering:
        _count_cause(s, start)
    span: AttemptSpan | None = None
    if s.tracing and parent is False:
        if s.propagate:  # the provider still learns the trace, marked not sampled
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            outbound_headers.set(tuple(carrier.items()))
    elif s.tracing:
        name = f"{n.OPERATION_CHAT} {model.upstream_model}"
        span = AttemptSpan(
            s.finished, s.tracer, name, parent or None, _start_attributes(s, start, provider, address, port)
        )
        if s.propagate:
            carrier = {}
            propagate.inject(carrier, context=trace.set_span_in_context(span.for_context()))
            # This runs in the attempt's own task, or in the request's when it is the race's only
            # attempt (race.py). Every attempt of a request sets them (the settings are the
            # process's), so one attempt's headers never reach another's call.
            outbound_headers.set(tuple(carrier.items()))
    return Open(span, provider, address, model)


def ended(s: Shared, opened: Open, record: AttemptRecord, completion: Completion | None) -> None:
    """Note the attempt's end now; record its metrics and span at the next drain."""
    s.later(_record, s, opened, record, completion, time.time_ns())


def _count_cause(s: Shared, start: AttemptStart) -> None:
    m, model = s.instruments, start.model.name
    if start.cause is AttemptCause.FALLBACK:
        m.fallbacks.add(1, {n.MODEL: model, n.FALLBACK_REASON: start.after})
    elif start.cause is AttemptCause.HEDGE:
        m.hedges.add(1, {n.MODEL: model})
    elif start.cause is AttemptCause.RETRY:
        m.retries.add(1, {n.MODEL: model, n.FALLBACK_REASON: start.after})


def _start_attributes(
    s: Shared, start: AttemptStart, provider: str, address: str, port: int | None
) -> dict[str, Any]:
    model, params = start.model, start.request.params
    attrs: dict[str, Any] = {
        n.GEN_AI_OPERATION_NAME: n.OPERATION_CHAT,
        n.GEN_AI_PROVIDER_NAME: provider,
        n.GEN_AI_REQUEST_MODEL: model.upstream_model,
        n.GEN_AI_OUTPUT_TYPE: "json" if start.request.response_format.wants_json else "text",
        n.SERVER_ADDRESS: address,
        n.MODEL: model.name,
        n.PROVIDER: model.provider,
        n.ATTEMPT_NUMBER: start.number,
        n.ATTEMPT_CAUSE: start.cause.value,
        n.BREAKER_STATE: start.breaker_state,
    }
    # Each attribute costs an encoding on every exported span (and a validation on the SDK's live
    # spans): these are there only when they say something.
    optional = (
        (n.ATTEMPT_HEDGED, start.hedged or None),
        (n.ATTEMPT_STAGE, start.stage or None),
        (n.SERVER_PORT, port),
        (n.ATTEMPT_RETRY_OF, start.retry_of or None),
        (n.FALLBACK_REASON, start.after or None),
        (n.GEN_AI_REQUEST_MAX_TOKENS, params.max_output_tokens),
        (n.GEN_AI_REQUEST_TEMPERATURE, params.temperature),
        (n.GEN_AI_REQUEST_TOP_P, params.top_p),
        (n.GEN_AI_REQUEST_SEED, params.seed),
    )
    for key, value in optional:
        if value is not None:
            attrs[key] = value
    if s.capture_content:
        attrs[n.GEN_AI_INPUT_MESSAGES] = input_messages(start.request)
    return attrs


def _record(
    s: Shared, opened: Open, record: AttemptRecord, completion: Completion | None, end_ns: int
) -> None:
    error_type = record.failure_class.value if record.failure_class is not None else ""
    if s.metering:
        _record_metrics(s, opened, record, error_type)
    if opened.span is not None:
        attrs, status = _end_attributes(s, record, completion, error_type)
        opened.span.end(attrs, status, end_ns)


def _record_metrics(s: Shared, opened: Open, record: AttemptRecord, error_type: str) -> None:
    keys = s.keys.attempt(opened.model, opened.provider, opened.address, record, error_type)
    m = s.instruments
    m.attempts.add(1, keys.attempts)
    if record.outcome is not AttemptOutcome.CANCELLED:  # a lost hedge is not an operation's duration
        m.operation_duration.record(record.latency_s, keys.timed)
    if record.time_to_first_token_s is not None:
        m.time_to_first_chunk.record(record.time_to_first_token_s, keys.genai)
    if record.usage.input_tokens:
        m.token_usage.record(record.usage.input_tokens, keys.input_tokens)
    if record.usage.output_tokens:
        m.token_usage.record(record.usage.output_tokens, keys.output_tokens)
    m.queue_wait.record(record.queue_wait_s, keys.queue)


def _end_attributes(
    s: Shared, record: AttemptRecord, completion: Completion | None, error_type: str
) -> tuple[dict[str, Any], Status]:
    attrs: dict[str, Any] = {
        n.ATTEMPT_OUTCOME: record.outcome.value,
        n.COST_USD: record.cost_usd_nanos / NANOS_PER_USD,
    }
    if record.queue_wait_s:
        attrs[n.QUEUE_WAIT_S] = record.queue_wait_s
    if record.response_model:
        attrs[n.GEN_AI_RESPONSE_MODEL] = record.response_model
    if record.usage.input_tokens or record.usage.output_tokens:
        attrs[n.GEN_AI_USAGE_INPUT_TOKENS] = record.usage.input_tokens
        attrs[n.GEN_AI_USAGE_OUTPUT_TOKENS] = record.usage.output_tokens
    if record.finish_reason is not None:
        attrs[n.GEN_AI_RESPONSE_FINISH_REASONS] = (record.finish_reason.value,)
    if record.time_to_first_token_s is not None:
        attrs[n.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = record.time_to_first_token_s
    status = UNSET
    if error_type:
        attrs[n.ERROR_TYPE] = error_type
        # The provider's words, already redacted at its edge; redacted again as a span's last line.
        status = Status(StatusCode.ERROR, redact(record.error_message))
    elif record.outcome is AttemptOutcome.CANCELLED:
        attrs[n.ERROR_TYPE] = "cancelled"
    if s.capture_content and completion is not None:
        attrs[n.GEN_AI_OUTPUT_MESSAGES] = output_messages(completion)
    return attrs, status
