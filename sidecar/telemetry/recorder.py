"""Turns what the sidecar does into spans, metrics and one log line per request. Never steers.

    server   Telemetry.rpc(method, metadata) -> RpcScope   SERVER span (continues the caller's
                                                            W3C trace), request metrics, log line
    pipeline Telemetry.routed(request, plan)                routing span + decision metrics
    executor Telemetry.attempt_started(start) -> ended      CLIENT span per provider call (GenAI
                                                            conventions) + GenAI client metrics

Every hook only reads what it is given and records it; none raises into the request flow (a
failure to record is logged once and the request goes on).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

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
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Completion, Usage
from sidecar.telemetry import names as n
from sidecar.telemetry.access_log import write as write_line
from sidecar.telemetry.finished_spans import UNSET
from sidecar.telemetry.metric_keys import MetricKeys
from sidecar.telemetry.metrics import AgreementSource, DepthSource, Instruments, StateSource
from sidecar.telemetry.privacy import IdHasher, input_messages, output_messages
from sidecar.telemetry.setup import SdkParts, TelemetryOptions
from sidecar.telemetry.tally import series_key

log = logging.getLogger(__name__)
access_log = logging.getLogger("turnout.access")

NANOS_PER_USD = 1_000_000_000
_scope: ContextVar[RpcScope | None] = ContextVar("turnout_rpc_scope", default=None)


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

    @property
    def active(self) -> bool:
        return self.tracing or self.metering or self.request_log

    def watch(self, breakers: StateSource, queues: DepthSource) -> None:
        if self.metering:
            self._m.watch(breakers, queues)

    def watch_shadow(self, agreements: AgreementSource) -> None:
        if self.metering:
            self._m.watch_shadow(agreements)

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
        self.sdk.shutdown()

    # --- server ----------------------------------------------------------------------------------

    def rpc(self, method: str, metadata: Iterable[tuple[str, Any]] | None) -> RpcScope:
        return RpcScope(self, method, metadata)

    # --- pipeline --------------------------------------------------------------------------------

    def routed(self, request: ChatRequest, plan: Plan) -> None:
        scope = _scope.get()
        if scope is not None:
            scope.plan = plan
            scope.chat = request
        try:
            self._routed(request, plan)
        except Exception:  # noqa: BLE001 - telemetry never fails a request
            self._recording_failed()

    def _routed(self, request: ChatRequest, plan: Plan) -> None:
        facts = _facts(plan)
        if self.metering:
            self._m.decision_duration.record(
                plan.decision_time_micros / 1e6, facts.decision_attrs[plan.cache_hit]
            )
        if not self.tracing:
            return
        parent = _parent()
        if parent is False:
            return
        end = time.time_ns()
        start = end - plan.decision_time_micros * 1000
        attrs = {
            **facts.span_attrs,
            n.DECISION_TIME_US: plan.decision_time_micros,
            n.DECISION_CACHE_HIT: plan.cache_hit,
        }
        if plan.classifier_score is not None:
            attrs[n.CLASSIFIER_SCORE] = plan.classifier_score
        if parent is not None and self._finished is not None:
            self._finished.record(
                facts.span_name, SpanKind.INTERNAL, parent, self._finished.new_id(), start, end, attrs
            )
            return
        span = self._tracer.start_span(
            facts.span_name, kind=SpanKind.INTERNAL, attributes=attrs, start_time=start
        )
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
        span: _AttemptSpan | None = None
        parent = _parent() if self.tracing else False
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
            # Each attribute costs the SDK a validation and the exporter an encoding, on every
            # span: these are there only when they say something (hedged, a later cascade stage).
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
            span = _AttemptSpan(self, f"{n.OPERATION_CHAT} {model.upstream_model}", parent or None, attrs)
            if self.propagate:
                carrier = {}
                propagate.inject(carrier, context=trace.set_span_in_context(span.for_context()))
                # This runs in the attempt's own task: the headers reach only this attempt's call.
                outbound_headers.set(tuple(carrier.items()))

        def ended(record: AttemptRecord, completion: Completion | None) -> None:
            try:
                self._attempt_ended(record, completion, span, provider, address, model)
            except Exception:  # noqa: BLE001 - telemetry never fails a request
                self._recording_failed()

        return ended

    def _attempt_ended(
        self,
        record: AttemptRecord,
        completion: Completion | None,
        span: _AttemptSpan | None,
        provider: str,
        address: str,
        model: ModelSpec,
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
            status = Status(StatusCode.ERROR, record.error_message)
        elif record.outcome is AttemptOutcome.CANCELLED:
            attrs[n.ERROR_TYPE] = "cancelled"
        if self.capture_content and completion is not None:
            attrs[n.GEN_AI_OUTPUT_MESSAGES] = output_messages(completion)
        span.end(attrs, status)

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


class RpcScope:
    """One RPC as telemetry sees it: its SERVER span, then its metrics and log line as it ends.

    The handler tells it what happened (`answered` / `failed`); the routing hook fills in the
    request and plan, so a request that fails after routing still logs its decision.
    """

    __slots__ = (
        "_code",
        "_error",
        "_scope_token",
        "_started",
        "_t",
        "_token",
        "attempts",
        "chat",
        "children_parent",
        "method",
        "plan",
        "span",
        "status",
        "trace_id",
        "winner",
    )

    def __init__(self, telemetry: Telemetry, method: str, metadata: Iterable[tuple[str, Any]] | None) -> None:
        self._t = telemetry
        self.method = method
        self.chat: ChatRequest | None = None
        self.plan: Plan | None = None
        self.attempts: tuple[AttemptRecord, ...] = ()
        self.winner = 0
        self.status = "OK"
        self._code = 0
        self._error = ""
        self.trace_id = ""
        self.span: trace.Span | None = None
        self.children_parent: SpanContext | Literal[False] = False  # see _parent()
        self._token: object | None = None
        self._started = 0.0
        if telemetry.tracing:
            # Only the propagators' own headers (traceparent, tracestate, baggage by default):
            # a call without any, the common case, skips extraction altogether.
            fields = telemetry.trace_fields
            carrier = {
                k.lower(): v for k, v in (metadata or ()) if isinstance(v, str) and k.lower() in fields
            }
            parent = propagate.extract(carrier) if carrier else None
            self.span = telemetry._tracer.start_span(
                f"{n.RPC_SERVICE_NAME}/{method}",
                context=parent,
                kind=SpanKind.SERVER,
                attributes={n.RPC_SYSTEM: "grpc", n.RPC_SERVICE: n.RPC_SERVICE_NAME, n.RPC_METHOD: method},
            )
            ctx = self.span.get_span_context()
            if ctx.is_valid:
                self.trace_id = format(ctx.trace_id, "032x")
            self.children_parent = ctx if self.span.is_recording() else False

    def __enter__(self) -> RpcScope:
        self._started = time.perf_counter()
        if self.span is not None:
            self._token = otel_context.attach(trace.set_span_in_context(self.span))
        self._scope_token = _scope.set(self)
        return self

    def answered(self, attempts: tuple[AttemptRecord, ...] = (), winner: int = 0) -> None:
        self.attempts = attempts
        self.winner = winner

    def failed(
        self, status: str, code: int, error_type: str, attempts: tuple[AttemptRecord, ...] = ()
    ) -> None:
        self.status = status
        self._code = code
        self._error = error_type
        self.attempts = attempts

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _scope.reset(self._scope_token)
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None and self.status == "OK":  # not a status the handler chose: it was cut short
            if isinstance(exc, asyncio.CancelledError):
                self.status, self._code, self._error = "CANCELLED", 1, "cancelled"
            else:
                self.status, self._code, self._error = "INTERNAL", 13, type(exc).__name__
        try:
            self._finish(time.perf_counter() - self._started)
        except Exception:  # noqa: BLE001 - telemetry never fails a request
            self._t._recording_failed()

    def _finish(self, duration_s: float) -> None:
        t = self._t
        plan, chat = self.plan, self.chat
        route = plan.route if plan is not None else ""
        usage, cost, reference = self._money()
        winner = next((a for a in self.attempts if a.number == self.winner), None) if self.winner else None
        tenant = t.hashed(chat.tenant_id) if chat is not None and chat.tenant_id else ""
        if t.metering:
            m, keys = t._m, t._keys
            m.request_duration.record(duration_s, keys.request(self.method, route, self.status))
            tenant_label = tenant if t.options.tenant_label else None
            for a in self.attempts:
                if a.cost_usd_nanos:
                    m.cost.add(
                        a.cost_usd_nanos / NANOS_PER_USD, keys.cost(route, tenant_label, a.model, a.provider)
                    )
            if reference is not None and t.reference is not None:
                ref = keys.reference(route, tenant_label, t.reference.name)
                m.reference_cost.add(reference / NANOS_PER_USD, ref)
                m.savings.add((reference - cost) / NANOS_PER_USD, ref)
            if winner is not None and winner.hedged:
                m.hedges_won.add(1, {n.MODEL: winner.model})
        span = self.span
        if span is not None:
            if span.is_recording():
                attrs: dict[str, Any] = {n.RPC_GRPC_STATUS_CODE: self._code, n.ATTEMPTS: len(self.attempts)}
                if route:
                    attrs[n.ROUTE] = route
                if chat is not None and chat.request_id:
                    attrs[n.REQUEST_ID] = chat.request_id
                if tenant:
                    attrs[n.TENANT] = tenant
                if winner is not None:
                    attrs[n.WINNER] = winner.model
                if self.attempts:
                    attrs[n.COST_USD] = cost / NANOS_PER_USD
                if self._error:
                    attrs[n.ERROR_TYPE] = self._error
                    span.set_status(Status(StatusCode.ERROR, self.status))
                span.set_attributes(attrs)
            span.end()
        if t.request_log and (access_log.handlers or access_log.isEnabledFor(logging.INFO)):
            write_line(access_log, self._line(duration_s, route, tenant, winner, usage, cost, reference))

    def _money(self) -> tuple[Usage, int, int | None]:
        """The answer's usage, the cost of every attempt, and the answer's cost on the reference model."""
        answer = next((a for a in self.attempts if a.number == self.winner), None)
        usage = answer.usage if answer is not None else Usage()
        cost = sum(a.cost_usd_nanos for a in self.attempts)
        reference = self._t.reference
        ref_cost = (
            reference.price.cost_usd_nanos(usage) if reference is not None and answer is not None else None
        )
        return usage, cost, ref_cost

    def _line(
        self,
        duration_s: float,
        route: str,
        tenant: str,
        winner: AttemptRecord | None,
        usage: Usage,
        cost: int,
        reference: int | None,
    ) -> str:
        """One JSON line: what was decided, what was tried, what it cost. Never any content."""
        plan, chat = self.plan, self.chat
        line: dict[str, Any] = {
            "ts": _timestamp(),
            "event": "turnout.request",
            "rpc": self.method,
            "status": self.status,
            "request_id": chat.request_id if chat is not None else "",
            "trace_id": self.trace_id,
            "tenant": tenant,
            "route": route,
            "latency_ms": round(duration_s * 1000, 3),
        }
        if self.attempts:
            line["model"] = winner.model if winner is not None else ""
            line["attempts"] = [_attempt_entry(a) for a in self.attempts]
            line["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            line["cost_usd"] = cost / NANOS_PER_USD
            if reference is not None:
                line["reference_cost_usd"] = reference / NANOS_PER_USD
                line["savings_usd"] = (reference - cost) / NANOS_PER_USD
        if self._error:
            line["error"] = self._error
        text = orjson.dumps(line).decode()
        if plan is None:
            return text
        # The decision's fixed part was serialised once per plan; only its per-request facts here.
        decision = f'{_facts(plan).log_decision},"cache_hit":{"true" if plan.cache_hit else "false"}'
        decision += f',"decision_us":{plan.decision_time_micros}'
        if plan.classifier_score is not None:
            decision += f',"classifier_score":{round(plan.classifier_score, 4)}'
        return f'{text[:-1]},"decision":{decision}}}}}'


_SECOND: list[Any] = [-1, ""]


def _timestamp() -> str:
    """UTC, milliseconds, ISO 8601 with a Z; the seconds part is formatted once per second."""
    now = time.time()
    whole = int(now)
    if whole != _SECOND[0]:
        _SECOND[0], _SECOND[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_SECOND[1]}.{int((now - whole) * 1000):03d}Z"


def _parent() -> SpanContext | Literal[False] | None:
    """Where a child span of this request goes: under the current span when it is recorded (its
    context); False when the request's trace is not recorded (head sampling said no); None when
    there is no current span (outside an RPC: the SDK starts a trace of its own).

    An unrecorded trace's children would not be recorded either under the parent-based samplers
    (the SDK's default, and OTEL_TRACES_SAMPLER=parentbased_*), so they are not even made: an
    unsampled request costs only its server span's sampling decision.
    """
    scope = _scope.get()
    if scope is not None and scope.span is not None:  # inside an RPC: its server span decided
        return scope.children_parent
    current = trace.get_current_span()
    context = current.get_span_context()
    if current.is_recording():
        return context
    return False if context.is_valid else None


class _AttemptSpan:
    """A provider attempt's CLIENT span from its start to its end: written finished when its
    parent is recorded (FinishedSpans), else a live SDK span (no parent: a trace of its own)."""

    __slots__ = ("_attrs", "_finished", "_live", "_name", "_parent", "_span_id", "_start_ns")

    def __init__(
        self, telemetry: Telemetry, name: str, parent: SpanContext | None, attrs: dict[str, Any]
    ) -> None:
        self._finished = telemetry._finished if parent is not None else None
        self._name, self._parent, self._attrs = name, parent, attrs
        self._live: trace.Span | None = None
        self._span_id = 0
        self._start_ns = time.time_ns()
        if self._finished is not None:
            self._span_id = self._finished.new_id()
        else:
            self._live = telemetry._tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attrs)

    def for_context(self) -> trace.Span:
        """A span to put in a context for propagation (its id is this attempt's)."""
        if self._live is not None:
            return self._live
        assert self._parent is not None
        p = self._parent
        return NonRecordingSpan(SpanContext(p.trace_id, self._span_id, False, p.trace_flags, p.trace_state))

    def end(self, attrs: dict[str, Any], status: Status) -> None:
        if self._live is not None:
            if self._live.is_recording():
                self._live.set_attributes(attrs)
                if status.status_code is not StatusCode.UNSET:
                    self._live.set_status(status)
            self._live.end()
            return
        assert self._finished is not None
        assert self._parent is not None
        self._finished.record(
            self._name,
            SpanKind.CLIENT,
            self._parent,
            self._span_id,
            self._start_ns,
            time.time_ns(),
            {**self._attrs, **attrs},
            status,
        )


MAX_LISTED = 10  # candidates named on a span or log line; the response's Decision lists them all


class _PlanFacts:
    """What telemetry records of a plan that never changes: each part made once per plan, when
    first needed (an unsampled request never renders the span's reasons).

    Cached decisions hand out copies that share the plan's memo, so a cached route pays for
    this (reasons rendered, attribute sets built) once, not on every request.
    """

    __slots__ = ("_log_decision", "_plan", "_span_attrs", "choice", "decision_attrs")

    def __init__(self, plan: Plan) -> None:
        self._plan = plan
        self.choice = plan.choice.model.name if plan.stages and plan.stages[0].candidates else ""
        self.decision_attrs = {
            hit: series_key(
                {
                    n.ROUTE: plan.route,
                    n.STRATEGY: plan.strategy,
                    n.DECISION_MODEL: self.choice,
                    n.DECISION_CACHE_HIT: hit,
                }
            )
            for hit in (False, True)
        }
        self._span_attrs: dict[str, Any] | None = None
        self._log_decision = ""

    @property
    def span_name(self) -> str:
        return f"route {self._plan.route}"

    @property
    def span_attrs(self) -> dict[str, Any]:
        if self._span_attrs is None:
            plan = self._plan
            names = [c.model.name for c in plan.candidates]
            self._span_attrs = {
                n.ROUTE: plan.route,
                n.STRATEGY: plan.strategy,
                n.DECISION_MODEL: self.choice,
                # Strings, not arrays: the SDK validates every element of an array attribute, on
                # every span; one joined string costs one check (and exports smaller).
                n.DECISION_CANDIDATES: ", ".join(names[:MAX_LISTED]),
                n.DECISION_CANDIDATE_COUNT: len(names),
                n.DECISION_DROPPED: len(plan.dropped),
                n.DECISION_REASONS: "; ".join(str(r) for r in plan.reasons),
                n.DECISION_TRUNCATED: plan.truncation is not None,
            }
        return self._span_attrs

    @property
    def log_decision(self) -> str:
        """A JSON object without its closing brace: the log line appends the per-request facts."""
        if not self._log_decision:
            plan = self._plan
            names = [c.model.name for c in plan.candidates[:MAX_LISTED]]
            fixed = {"strategy": plan.strategy, "model": self.choice, "candidates": names}
            self._log_decision = json.dumps(fixed, separators=(",", ":"))[:-1]
        return self._log_decision


def _facts(plan: Plan) -> _PlanFacts:
    facts: _PlanFacts | None = plan.memo.get("telemetry")
    if facts is None:
        facts = plan.memo["telemetry"] = _PlanFacts(plan)
    return facts


def _attempt_entry(a: AttemptRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "n": a.number,
        "model": a.model,
        "cause": a.cause,
        "outcome": a.outcome.value,
        "latency_ms": round(a.latency_s * 1000, 3),
    }
    if a.failure_class is not None:
        entry["failure"] = a.failure_class.value
    if a.time_to_first_token_s is not None:
        entry["ttft_ms"] = round(a.time_to_first_token_s * 1000, 3)
    if a.retry_of:
        entry["retry_of"] = a.retry_of
    if a.escalated:
        entry["escalated"] = a.escalated
    if a.usage.input_tokens or a.usage.output_tokens:
        entry["tokens"] = [a.usage.input_tokens, a.usage.output_tokens]
    if a.cost_usd_nanos:
        entry["cost_usd"] = a.cost_usd_nanos / NANOS_PER_USD
    return entry
