"""Turns what the sidecar does into spans, metrics and one log line per request. Never steers.

    server   Telemetry.rpc(method, metadata) -> RpcScope   SERVER span (continues the caller's
                                                            W3C trace), request metrics, log line
    pipeline Telemetry.routed(request, plan)                routing span + decision metrics
    executor Telemetry.attempt_started(start) -> ended      CLIENT span per provider call (GenAI
                                                            conventions) + GenAI client metrics

Every hook only reads what it is given and records it; none raises into the request flow (a
failure to record is logged once and the request goes on).

What ends on the request path (an RPC, with its decision; a provider attempt) is noted there and
recorded a few milliseconds later, in a batch with whatever else ended meanwhile (pending.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from sidecar.domain.context import outbound_headers
from sidecar.domain.model import ModelSpec, ProviderSpec
from sidecar.domain.outcome import (
    AttemptCause,
    AttemptEnd,
    AttemptOutcome,
    AttemptRecord,
    AttemptStart,
)
from sidecar.domain.plan import Plan
from sidecar.domain.redact import redact
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Completion
from sidecar.telemetry import names as n
from sidecar.telemetry.finished_spans import UNSET, AttemptSpan
from sidecar.telemetry.metric_keys import MetricKeys
from sidecar.telemetry.metrics import (
    AgreementSource,
    DepthSource,
    Instruments,
    ShareSource,
    SpendSource,
    StateSource,
    StoreSource,
)
from sidecar.telemetry.pending import Pending
from sidecar.telemetry.plan_facts import facts
from sidecar.telemetry.privacy import IdHasher, input_messages, output_messages
from sidecar.telemetry.rpc_scope import (
    NANOS_PER_USD,
    UNOBSERVED,
    RpcScope,
    Unobserved,
    child_parent,
    current_rpc,
)
from sidecar.telemetry.setup import SdkParts, TelemetryOptions

log = logging.getLogger(__name__)


class Telemetry:
    def __init__(
        self,
        sdk: SdkParts,
        options: TelemetryOptions | None = None,
        *,
        capture_content: bool = False,
        id_secret: str = "",
        reference: ModelSpec | None = None,
    ) -> None:
        options = options or TelemetryOptions()
        self.sdk = sdk
        self.options = options
        self.tracing = sdk.tracing
        self.metering = sdk.metrics
        self.capture_content = capture_content and sdk.tracing
        self.propagate = options.propagate_to_providers and sdk.tracing
        self.trace_fields = frozenset(f.lower() for f in propagate.get_global_textmap().fields)
        self.request_log = options.request_log
        self._tracer = sdk.tracer
        self._finished = sdk.finished_spans
        self._m = Instruments(sdk.meter, sdk.tally)
        self._keys = MetricKeys()
        self._ids = IdHasher(id_secret)
        self.reference = reference
        self._endpoints: dict[str, tuple[str, str, int | None]] = {}
        self._failed_once = False
        pending = Pending(self._recording_failed)
        # later(record, *args): record what ended at the next drain; drain(): record it all now
        self.later = pending.later
        self.drain = pending.drain
        sdk.tally.drains.append(self.drain)

    @property
    def active(self) -> bool:
        return self.tracing or self.metering or self.request_log

    def watch(self, breakers: StateSource, queues: DepthSource) -> None:
        if self.metering:
            self._m.watch(breakers, queues)

    def watch_shadow(self, agreements: AgreementSource) -> None:
        if self.metering:
            self._m.watch_shadow(agreements)

    def watch_limits(self, store: StoreSource, spend: SpendSource, shares: ShareSource) -> None:
        if self.metering:
            self._m.watch_limits(store, spend, shares)

    # --- shadow evaluation -----------------------------------------------------------------------

    def shadow_compared(self, route: str, agreed: bool, cost_usd_nanos: int) -> None:
        if self.metering:
            self._m.shadow_comparisons.add(1, {n.ROUTE: route, n.SHADOW_AGREED: agreed})
            if cost_usd_nanos:
                self._m.shadow_cost.add(cost_usd_nanos / NANOS_PER_USD, {n.ROUTE: route})

    def shadow_skipped(self, route: str, reason: str) -> None:
        if self.metering:
            self._m.shadow_skipped.add(1, {n.ROUTE: route, n.SHADOW_REASON: reason})

    def shutdown(self) -> None:
        self.sdk.shutdown()  # drains first

    # --- server ----------------------------------------------------------------------------------

    def rpc(self, method: str, metadata: Iterable[tuple[str, Any]] | None) -> RpcScope | Unobserved:
        return RpcScope(self, method, metadata) if self.active else UNOBSERVED

    # --- pipeline --------------------------------------------------------------------------------

    def routed(self, request: ChatRequest, plan: Plan) -> None:
        scope = current_rpc.get()
        if scope is not None:  # recorded with the RPC (RpcScope.record)
            scope.plan = plan
            scope.chat = request
            if scope.children_parent is not False:  # the routing span's end
                scope.routed_ns = time.time_ns()
            return
        try:
            self.record_decision(plan, child_parent() if self.tracing else False, time.time_ns())
        except Exception:  # noqa: BLE001 - telemetry never fails a request
            self._recording_failed()

    def record_decision(self, plan: Plan, parent: SpanContext | Literal[False] | None, end: int) -> None:
        """The decision metric, and the routing span under `parent` (a recorded span's context;
        None: a trace of its own; False: none) ending at `end` (ns since the epoch)."""
        plan_facts = facts(plan)
        if self.metering:
            self._m.decision_duration.record(
                plan.decision_time_micros / 1e6, plan_facts.decision_attrs[plan.cache_hit]
            )
        if not self.tracing or parent is False:
            return
        start = end - plan.decision_time_micros * 1000
        attrs = {
            **plan_facts.span_attrs(plan),
            n.DECISION_TIME_US: plan.decision_time_micros,
            n.DECISION_CACHE_HIT: plan.cache_hit,
        }
        if plan.classifier_score is not None:
            attrs[n.CLASSIFIER_SCORE] = plan.classifier_score
        name = plan_facts.span_name(plan)
        if isinstance(parent, SpanContext) and self._finished is not None:
            self._finished.record(name, SpanKind.INTERNAL, parent, self._finished.new_id(), start, end, attrs)
            return
        span = self._tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, start_time=start)
        span.end(end_time=end)

    # --- executor --------------------------------------------------------------------------------

    def attempt_started(self, start: AttemptStart) -> AttemptEnd | None:
        try:
            return self._attempt_started(start)
        except Exception:  # noqa: BLE001 - telemetry never fails a request
            self._recording_failed()
            return None

    def _attempt_started(self, start: AttemptStart) -> AttemptEnd:
        model = start.model
        provider, address, port = self._endpoint(start.endpoint, model)
        if self.metering:
            if start.cause is AttemptCause.FALLBACK:
                self._m.fallbacks.add(1, {n.MODEL: model.name, n.FALLBACK_REASON: start.after})
            elif start.cause is AttemptCause.HEDGE:
                self._m.hedges.add(1, {n.MODEL: model.name})
            elif start.cause is AttemptCause.RETRY:
                self._m.retries.add(1, {n.MODEL: model.name, n.FALLBACK_REASON: start.after})
        span: AttemptSpan | None = None
        parent = child_parent() if self.tracing else False
        if self.tracing and parent is False:
            if self.propagate:  # the provider still learns the trace, marked not sampled
                carrier: dict[str, str] = {}
                propagate.inject(carrier)
                outbound_headers.set(tuple(carrier.items()))
        elif self.tracing:
            params = start.request.params
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
            # Each attribute costs an encoding on every exported span (and a validation on the
            # SDK's live spans): these are there only when they say something.
            if start.hedged:
                attrs[n.ATTEMPT_HEDGED] = True
            if start.stage:
                attrs[n.ATTEMPT_STAGE] = start.stage
            if port is not None:
                attrs[n.SERVER_PORT] = port
            if start.retry_of:
                attrs[n.ATTEMPT_RETRY_OF] = start.retry_of
            if start.after:
                attrs[n.FALLBACK_REASON] = start.after
            if params.max_output_tokens is not None:
                attrs[n.GEN_AI_REQUEST_MAX_TOKENS] = params.max_output_tokens
            if params.temperature is not None:
                attrs[n.GEN_AI_REQUEST_TEMPERATURE] = params.temperature
            if params.top_p is not None:
                attrs[n.GEN_AI_REQUEST_TOP_P] = params.top_p
            if params.seed is not None:
                attrs[n.GEN_AI_REQUEST_SEED] = params.seed
            if self.capture_content:
                attrs[n.GEN_AI_INPUT_MESSAGES] = input_messages(start.request)
            name = f"{n.OPERATION_CHAT} {model.upstream_model}"
            span = AttemptSpan(self._finished, self._tracer, name, parent or None, attrs)
            if self.propagate:
                carrier = {}
                propagate.inject(carrier, context=trace.set_span_in_context(span.for_context()))
                # This runs in the attempt's own task: the headers reach only this attempt's call.
                outbound_headers.set(tuple(carrier.items()))

        def ended(record: AttemptRecord, completion: Completion | None) -> None:
            end = time.time_ns()
            self.later(self._attempt_ended, record, completion, span, provider, address, model, end)

        return ended

    def _attempt_ended(
        self,
        record: AttemptRecord,
        completion: Completion | None,
        span: AttemptSpan | None,
        provider: str,
        address: str,
        model: ModelSpec,
        end_ns: int,
    ) -> None:
        error_type = record.failure_class.value if record.failure_class is not None else ""
        if self.metering:
            keys = self._keys.attempt(model, provider, address, record, error_type)
            m = self._m
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
        if span is None:
            return
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
        if self.capture_content and completion is not None:
            attrs[n.GEN_AI_OUTPUT_MESSAGES] = output_messages(completion)
        span.end(attrs, status, end_ns)

    def breaker_changed(self, model: str, state: str) -> None:
        if self.metering:
            self._m.breaker_transitions.add(1, {n.MODEL: model, n.BREAKER_STATE: state})

    # --- helpers ---------------------------------------------------------------------------------

    def _endpoint(self, endpoint: ProviderSpec | None, model: ModelSpec) -> tuple[str, str, int | None]:
        """(gen_ai.provider.name, server.address, server.port) of a provider entry, cached."""
        if endpoint is None:
            return model.provider, "", None
        known = self._endpoints.get(endpoint.base_url + "\0" + endpoint.name)
        if known is None:
            if endpoint.kind == "openai_compatible":
                name = n.PROVIDER_BY_FLAVOR.get(endpoint.option("flavor"), endpoint.name)
            else:
                name = n.PROVIDER_BY_KIND.get(endpoint.kind, endpoint.name)
            url = urlsplit(endpoint.base_url)
            port = url.port or (443 if url.scheme == "https" else 80)
            known = self._endpoints[endpoint.base_url + "\0" + endpoint.name] = (
                name,
                url.hostname or "",
                port,
            )
        return known

    def hashed(self, value: str) -> str:
        return self._ids.hash(value)

    def _recording_failed(self) -> None:
        if not self._failed_once:
            self._failed_once = True
            log.exception("telemetry: recording failed (reported once; requests are unaffected)")
