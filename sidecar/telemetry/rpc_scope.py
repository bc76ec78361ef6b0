"""One RPC as telemetry sees it (its CallObserver): the SERVER span, the decision, each attempt,
then the RPC's metrics and its request log line.

`Telemetry.rpc_started` makes an RpcCall per RPC. It starts the server span (continuing the
caller's W3C trace) and is where the RPC's children go: the routing span and each attempt's
CLIENT span, under the server span when it is recorded, not made when it is not. Its end notes
the status and times and hands it to `Shared.later`: when drained, it records the decision
(metric, routing span), the request's metrics, the server span, and one JSON log line.

`Detached` observes work outside any RPC (tools, tests): its children go under the current
OpenTelemetry span, or start traces of their own.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from sidecar.domain.observe import Answered, AttemptEnded, Planned, RpcEnded, RpcStarted
from sidecar.domain.outcome import AttemptRecord, AttemptStart
from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Usage
from sidecar.telemetry import attempts
from sidecar.telemetry import names as n
from sidecar.telemetry.access_log import write as write_line
from sidecar.telemetry.finished_spans import UNSET, Started
from sidecar.telemetry.plan_facts import PlanFacts, facts, record_decision
from sidecar.telemetry.request_line import THOUSANDTHS, attempt_entry, json_string, timestamp
from sidecar.telemetry.shared import NANOS_PER_USD, Shared

access_log = logging.getLogger("turnout.access")

_NO_USAGE = Usage()
_SPAN_NAMES = {m: f"{n.RPC_SERVICE_NAME}/{m}" for m in ("Route", "Generate", "GenerateStream")}


def _is_http(method: str) -> bool:
    """An HTTP front door operation ("POST /v1/chat/completions"), not an RPC's method name."""
    return " /" in method


def _span_name(method: str) -> str:
    # HTTP server spans are named "{method} {route}" by the HTTP conventions, which is the operation
    return _SPAN_NAMES.get(method) or (method if _is_http(method) else f"{n.RPC_SERVICE_NAME}/{method}")


def _server_attributes(method: str) -> dict[str, Any]:
    if _is_http(method):
        verb, route = method.split(" ", 1)
        return {n.HTTP_REQUEST_METHOD: verb, n.HTTP_ROUTE: route}
    return {n.RPC_SYSTEM: "grpc", n.RPC_SERVICE: n.RPC_SERVICE_NAME, n.RPC_METHOD: method}


# A server span's attributes at its start, per method: only read (a recorded span copies them)
_SERVER_ATTRIBUTES = {m: _server_attributes(m) for m in _SPAN_NAMES}


class _Attempts:
    """The attempt half of a call observer: each attempt's span and metrics, under `_parent()`."""

    __slots__ = ("_open", "_t")

    def __init__(self, shared: Shared) -> None:
        self._t = shared
        # Keyed by the start event itself: a call may run more than one ledger (a shadow's runs
        # after the answer), so attempt numbers may repeat.
        self._open: dict[int, attempts.Open] = {}

    def _parent(self) -> SpanContext | Literal[False] | None:
        raise NotImplementedError

    def attempt_started(self, event: AttemptStart) -> None:
        t = self._t
        if not (t.tracing or t.metering):
            return
        try:
            self._open[id(event)] = attempts.started(t, event, self._parent() if t.tracing else False)
        except Exception:  # noqa: BLE001 - telemetry never fails a request
            t.recording_failed()

    def attempt_ended(self, event: AttemptEnded) -> None:
        opened = self._open.pop(id(event.start), None)
        if opened is not None:
            attempts.ended(self._t, opened, event.record, event.completion)


class RpcCall(_Attempts):
    """One RPC as telemetry sees it: its SERVER span, then its metrics and log line as it ends.

    The pipeline reports the request and plan (`planned`) and the answer (`answered`); the
    server its status (`rpc_ended`), so a request that fails after routing still logs its decision.
    """

    __slots__ = (
        "_code",
        "_duration_ns",
        "_end_ns",
        "_error",
        "_span",
        "_start_ns",
        "_started",
        "_token",
        "attempts",
        "chat",
        "children_parent",
        "method",
        "plan",
        "routed_ns",
        "status",
        "traced",
        "winner",
    )

    def __init__(self, shared: Shared, event: RpcStarted) -> None:
        super().__init__(shared)
        self.method = event.method
        self.chat: ChatRequest | None = None
        self.plan: Plan | None = None
        self.routed_ns = 0  # when the plan was made, ns since the epoch (a recorded routing span's end)
        self.attempts: tuple[AttemptRecord, ...] = ()
        self.winner = 0
        self.status = "OK"
        self._code = 0
        self._error = ""
        self.traced = shared.tracing
        self._span: Started | None = None  # the server span, written finished when the RPC ends
        # Where children go: the server span's context when it is recorded; else False (not made)
        self.children_parent: SpanContext | Literal[False] = False
        self._token: object | None = None
        self._start_ns = 0
        self._duration_ns = 0
        self._end_ns = 0
        if shared.tracing:
            self._start_span(shared, event)
        self._started = time.perf_counter_ns()
        # The request's span made current, for the propagators and any SDK span under it: when it
        # is recorded, or its context is sent to providers. An unsampled request's context is read
        # by nothing else here (its children are not made), so it is not attached.
        if self.children_parent is not False or (self.traced and shared.propagate):
            span = self.span
            assert span is not None
            self._token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span.context)))

    def _start_span(self, shared: Shared, event: RpcStarted) -> None:
        # Only the propagators' own headers (traceparent, tracestate, baggage by default): a call
        # without any, the common case, skips extraction altogether.
        fields = shared.trace_fields
        carrier: dict[str, str] | None = None
        for k, v in event.metadata or ():
            key = k.lower()
            if key in fields and isinstance(v, str):
                if carrier is None:
                    carrier = {}
                carrier[key] = v
        finished = shared.finished
        assert finished is not None  # made with every tracer provider (setup.build_sdk)
        method = event.method
        attributes = _SERVER_ATTRIBUTES.get(method) or _server_attributes(method)
        parent = propagate.extract(carrier) if carrier else None
        span = self._span = finished.start(_span_name(method), SpanKind.SERVER, parent, attributes)
        if span.attributes is not None:  # recorded
            self._start_ns = time.time_ns()
            self.children_parent = span.context

    @property
    def span(self) -> Started | None:
        """The server span's start (None without tracing)."""
        return self._span

    @property
    def trace_id(self) -> str:
        """The request's trace id in hex ("" without tracing): in its log line and its response."""
        span = self._span
        return span.context.trace_id.to_bytes(16, "big").hex() if span is not None else ""

    def _parent(self) -> SpanContext | Literal[False]:
        return self.children_parent

    def planned(self, event: Planned) -> None:
        self.plan = event.plan
        self.chat = event.request
        if self.children_parent is not False:  # the routing span's end
            self.routed_ns = time.time_ns()

    def answered(self, event: Answered) -> None:
        self.attempts = event.attempts
        self.winner = event.winner

    def rpc_ended(self, event: RpcEnded) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        if event.status != "OK":
            self.status, self._code, self._error = event.status, event.code, event.error_type
            if event.attempts is not None:
                self.attempts = event.attempts
        self._duration_ns = time.perf_counter_ns() - self._started
        self._end_ns = time.time_ns()
        self._t.later(self.record)

    def record(self) -> None:
        """The decision, the request's metrics, its server span and its log line (at a drain)."""
        t, plan = self._t, self.plan
        plan_facts: PlanFacts | None = None
        if plan is not None:
            plan_facts = facts(plan)
            record_decision(t, plan, self.children_parent if t.tracing else False, self.routed_ns, plan_facts)
        if self.attempts:
            winner = next((a for a in self.attempts if a.number == self.winner), None)
            usage, cost, reference = self._money(winner)
        else:  # a Route, or a request that failed before any attempt
            winner, usage, cost, reference = None, _NO_USAGE, 0, None
        chat = self.chat
        tenant = t.hashed(chat.tenant_id) if chat is not None and chat.tenant_id else ""
        if t.metering:
            self._record_metrics(tenant, winner, cost, reference)
        span = self._span
        if span is not None and span.attributes is not None:  # recorded: written now, finished
            self._write_span(span, tenant, winner, cost)
        if t.request_log and (access_log.handlers or access_log.isEnabledFor(logging.INFO)):
            write_line(access_log, self._line(plan_facts, tenant, winner, usage, cost, reference))

    def _money(self, answer: AttemptRecord | None) -> tuple[Usage, int, int | None]:
        """The answer's usage, the cost of every attempt, and the answer's cost on the reference model."""
        usage = answer.usage if answer is not None else Usage()
        cost = sum(a.cost_usd_nanos for a in self.attempts)
        reference = self._t.reference
        ref_cost = (
            reference.price.cost_usd_nanos(usage) if reference is not None and answer is not None else None
        )
        return usage, cost, ref_cost

    def _record_metrics(
        self, tenant: str, winner: AttemptRecord | None, cost: int, reference: int | None
    ) -> None:
        t = self._t
        m, keys = t.instruments, t.keys
        route = self.plan.route if self.plan is not None else ""
        m.request_duration.record(self._duration_ns / 1e9, keys.request(self.method, route, self.status))
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

    def _write_span(self, span: Started, tenant: str, winner: AttemptRecord | None, cost: int) -> None:
        assert span.attributes is not None
        attrs: dict[str, Any] = {**span.attributes, n.ATTEMPTS: len(self.attempts)}
        if not _is_http(self.method):  # an HTTP call's status is the error table's code name (error.type)
            attrs[n.RPC_GRPC_STATUS_CODE] = self._code
        plan, chat = self.plan, self.chat
        if plan is not None and plan.route:
            attrs[n.ROUTE] = plan.route
        if chat is not None and chat.request_id:
            attrs[n.REQUEST_ID] = chat.request_id
        if tenant:
            attrs[n.TENANT] = tenant
        if winner is not None:
            attrs[n.WINNER] = winner.model
        if self.attempts:
            attrs[n.COST_USD] = cost / NANOS_PER_USD
        status = UNSET
        if self._error:
            attrs[n.ERROR_TYPE] = self._error
            status = Status(StatusCode.ERROR, self.status)
        finished = self._t.finished
        assert finished is not None
        finished.write(
            _span_name(self.method),
            SpanKind.SERVER,
            span.context,
            span.parent,
            self._start_ns,
            self._end_ns,
            attrs,
            status,
        )

    def _line(
        self,
        plan_facts: PlanFacts | None,
        tenant: str,
        winner: AttemptRecord | None,
        usage: Usage,
        cost: int,
        reference: int | None,
    ) -> str:
        """One JSON line: what was decided, what was tried, what it cost. Never any content.

        Written as text from parts, not through a dict and a serialiser (each request's line is
        on the sidecar's busiest thread): what a caller or the config chose (request id, route)
        is escaped by orjson; the rest (times, hex ids, the method and status names) is plain
        ASCII by construction, and the decision's fixed part is serialised once per plan."""
        plan, chat = self.plan, self.chat
        # No plan: no route.
        route_json = '""' if plan is None or plan_facts is None else plan_facts.route_json(plan)
        micros = self._duration_ns // 1000
        request_id = json_string(chat.request_id if chat is not None else "")
        line = (
            f'{{"ts":"{timestamp(self._end_ns)}","event":"turnout.request","rpc":"{self.method}",'
            f'"status":"{self.status}","request_id":{request_id},'
            f'"trace_id":"{self.trace_id}","tenant":"{tenant}",'
            f'"route":{route_json},'
            f'"latency_ms":{micros // 1000}.{THOUSANDTHS[micros % 1000]}'
        )
        if self.attempts or self._error:
            line += "," + orjson.dumps(self._outcome(winner, usage, cost, reference)).decode()[1:-1]
        if plan is None or plan_facts is None:
            return line + "}"
        head = plan_facts.log_decision(plan)[plan.cache_hit]
        decision = f'{head},"decision_us":{plan.decision_time_micros}'
        if plan.classifier_score is not None:
            decision += f',"classifier_score":{round(plan.classifier_score, 4)!r}'
        return f'{line},"decision":{decision}}}}}'

    def _outcome(
        self, winner: AttemptRecord | None, usage: Usage, cost: int, reference: int | None
    ) -> dict[str, Any]:
        """The log line's attempts, usage, cost and error, when there are any."""
        more: dict[str, Any] = {}
        if self.attempts:
            more["model"] = winner.model if winner is not None else ""
            more["attempts"] = [attempt_entry(a) for a in self.attempts]
            more["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
            more["cost_usd"] = cost / NANOS_PER_USD
            if reference is not None:
                more["reference_cost_usd"] = reference / NANOS_PER_USD
                more["savings_usd"] = (reference - cost) / NANOS_PER_USD
        if self._error:
            more["error"] = self._error
        return more


class Detached(_Attempts):
    """Work observed outside any RPC: its decision is recorded at once, its attempts as they end,
    both under the current OpenTelemetry span when it is recorded (else a trace of their own)."""

    __slots__ = ()
    trace_id = ""

    def _parent(self) -> SpanContext | Literal[False] | None:
        """Under the current span when it is recorded; False when it is valid but not recorded
        (its children would not be recorded either under parent-based samplers, so they are not
        even made); None when there is none (the SDK starts a trace of its own)."""
        current = trace.get_current_span()
        context = current.get_span_context()
        if current.is_recording():
            return context
        return False if context.is_valid else None

    def planned(self, event: Planned) -> None:
        t = self._t
        try:
            parent = self._parent() if t.tracing else False
            record_decision(t, event.plan, parent, time.time_ns(), facts(event.plan))
        except Exception:  # noqa: BLE001 - telemetry never fails a request
            t.recording_failed()

    def answered(self, event: Answered) -> None:
        return None

    def rpc_ended(self, event: RpcEnded) -> None:
        return None
