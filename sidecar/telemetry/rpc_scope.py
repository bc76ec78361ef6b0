"""One RPC as telemetry sees it: its SERVER span, then its metrics and its request log line.

The servicer opens an RpcScope per call (`Telemetry.rpc`); the routing and attempt hooks find it
through a context variable (`current_rpc`), fill in the request and the plan, and ask it where their
child spans go (`child_parent`). At its end it notes the status and times, and hands itself to
`Telemetry.later`: when drained, it records the decision (metric, routing span), the request's
metrics, the server span, and one JSON log line with no content.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import orjson
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from sidecar.domain.outcome import AttemptRecord
from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Usage
from sidecar.telemetry import names as n
from sidecar.telemetry.access_log import write as write_line
from sidecar.telemetry.finished_spans import UNSET, FinishedSpans, Started
from sidecar.telemetry.plan_facts import facts

if TYPE_CHECKING:
    from sidecar.telemetry.recorder import Telemetry

access_log = logging.getLogger("turnout.access")

NANOS_PER_USD = 1_000_000_000
_NO_USAGE = Usage()
_SPAN_NAMES = {m: f"{n.RPC_SERVICE_NAME}/{m}" for m in ("Route", "Generate", "GenerateStream")}


def _span_name(method: str) -> str:
    return _SPAN_NAMES.get(method) or f"{n.RPC_SERVICE_NAME}/{method}"


def _server_attributes(method: str) -> dict[str, Any]:
    return {n.RPC_SYSTEM: "grpc", n.RPC_SERVICE: n.RPC_SERVICE_NAME, n.RPC_METHOD: method}


# A server span's attributes at its start, per method: only read (a recorded span copies them)
_SERVER_ATTRIBUTES = {m: _server_attributes(m) for m in _SPAN_NAMES}


current_rpc: ContextVar[RpcScope | None] = ContextVar("turnout_rpc_scope", default=None)


class Unobserved:
    """An RPC's scope when telemetry records nothing at all (no traces, metrics or request log)."""

    __slots__ = ()
    trace_id = ""

    def __enter__(self) -> Unobserved:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def answered(self, attempts: tuple[AttemptRecord, ...] = (), winner: int = 0) -> None:
        return None

    def failed(
        self, status: str, code: int, error_type: str, attempts: tuple[AttemptRecord, ...] = ()
    ) -> None:
        return None


UNOBSERVED = Unobserved()


class RpcScope:
    """One RPC as telemetry sees it: its SERVER span, then its metrics and log line as it ends.

    The handler tells it what happened (`answered` / `failed`); the routing hook fills in the
    request and plan, so a request that fails after routing still logs its decision.
    """

    __slots__ = (
        "_code",
        "_duration_ns",
        "_end_ns",
        "_error",
        "_root",
        "_scope_token",
        "_span",
        "_start_ns",
        "_started",
        "_t",
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

    def __init__(self, telemetry: Telemetry, method: str, metadata: Iterable[tuple[str, Any]] | None) -> None:
        self._t = telemetry
        self.method = method
        self.chat: ChatRequest | None = None
        self.plan: Plan | None = None
        self.routed_ns = 0  # when the plan was made, ns since the epoch (a recorded routing span's end)
        self.attempts: tuple[AttemptRecord, ...] = ()
        self.winner = 0
        self.status = "OK"
        self._code = 0
        self._error = ""
        self.traced = telemetry.tracing
        self._span: Started | None = None  # the server span, written finished when the RPC ends
        # An unsampled root span's (trace id, span id, False): its Started is made only if asked
        # for (`span`), the common case never
        self._root: tuple[int, int, bool] | None = None
        self.children_parent: SpanContext | Literal[False] = False  # see child_parent()
        self._token: object | None = None
        self._started = 0  # perf_counter_ns at the start
        self._start_ns = 0
        self._duration_ns = 0
        self._end_ns = 0
        if telemetry.tracing:
            # Only the propagators' own headers (traceparent, tracestate, baggage by default):
            # a call without any, the common case, skips extraction altogether.
            fields = telemetry.trace_fields
            carrier: dict[str, str] | None = None
            for k, v in metadata or ():
                key = k.lower()
                if key in fields and isinstance(v, str):
                    if carrier is None:
                        carrier = {}
                    carrier[key] = v
            finished = telemetry._finished
            assert finished is not None  # made with every tracer provider (setup.build_sdk)
            attributes = _SERVER_ATTRIBUTES.get(method) or _server_attributes(method)
            drawn = finished.draw_root() if carrier is None else None
            if drawn is None:
                parent = propagate.extract(carrier) if carrier else None
                span = self._span = finished.start(_span_name(method), SpanKind.SERVER, parent, attributes)
            elif drawn[2]:
                span = self._span = finished.root_started(*drawn, attributes)
            else:
                self._root = drawn
                return
            if span.attributes is not None:  # recorded
                self._start_ns = time.time_ns()
                self.children_parent = span.context

    @property
    def span(self) -> Started | None:
        """The server span's start (None without tracing)."""
        if self._span is None and self._root is not None:
            self._span = FinishedSpans.root_started(*self._root, {})
        return self._span

    @property
    def trace_id(self) -> str:
        """The request's trace id in hex ("" without tracing): in its log line and its response."""
        if self._root is not None:
            return self._root[0].to_bytes(16, "big").hex()
        span = self._span
        return span.context.trace_id.to_bytes(16, "big").hex() if span is not None else ""

    def __enter__(self) -> RpcScope:
        self._started = time.perf_counter_ns()
        # The request's span made current, for the propagators and any SDK span under it: when it
        # is recorded, or its context is sent to providers. An unsampled request's context is read
        # by nothing else here (its children are not made: child_parent), so it is not attached.
        if self.children_parent is not False or (self.traced and self._t.propagate):
            span = self.span
            assert span is not None
            self._token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span.context)))
        self._scope_token = current_rpc.set(self)
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
        current_rpc.reset(self._scope_token)
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
        if exc is not None and self.status == "OK":  # not a status the handler chose: it was cut short
            if isinstance(exc, asyncio.CancelledError):
                self.status, self._code, self._error = "CANCELLED", 1, "cancelled"
            else:
                self.status, self._code, self._error = "INTERNAL", 13, type(exc).__name__
        self._duration_ns = time.perf_counter_ns() - self._started
        self._end_ns = time.time_ns()
        self._t.later(self.record)

    def record(self) -> None:
        """The decision, the request's metrics, its server span and its log line (at a drain)."""
        t = self._t
        if self.plan is not None:
            t.record_decision(self.plan, self.children_parent if t.tracing else False, self.routed_ns)
        self._finish()

    def _finish(self) -> None:
        t = self._t
        plan, chat = self.plan, self.chat
        route = plan.route if plan is not None else ""
        if self.attempts:
            winner = next((a for a in self.attempts if a.number == self.winner), None)
            usage, cost, reference = self._money(winner)
        else:  # a Route, or a request that failed before any attempt
            winner, usage, cost, reference = None, _NO_USAGE, 0, None
        tenant = t.hashed(chat.tenant_id) if chat is not None and chat.tenant_id else ""
        if t.metering:
            m, keys = t._m, t._keys
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
        span = self._span
        if span is not None and span.attributes is not None:  # recorded: written now, finished
            attrs: dict[str, Any] = {
                **span.attributes,
                n.RPC_GRPC_STATUS_CODE: self._code,
                n.ATTEMPTS: len(self.attempts),
            }
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
            status = UNSET
            if self._error:
                attrs[n.ERROR_TYPE] = self._error
                status = Status(StatusCode.ERROR, self.status)
            assert t._finished is not None
            t._finished.write(
                _span_name(self.method),
                SpanKind.SERVER,
                span.context,
                span.parent,
                self._start_ns,
                self._end_ns,
                attrs,
                status,
            )
        if t.request_log and (access_log.handlers or access_log.isEnabledFor(logging.INFO)):
            write_line(access_log, self._line(tenant, winner, usage, cost, reference))

    def _money(self, answer: AttemptRecord | None) -> tuple[Usage, int, int | None]:
        """The answer's usage, the cost of every attempt, and the answer's cost on the reference model."""
        usage = answer.usage if answer is not None else Usage()
        cost = sum(a.cost_usd_nanos for a in self.attempts)
        reference = self._t.reference
        ref_cost = (
            reference.price.cost_usd_nanos(usage) if reference is not None and answer is not None else None
        )
        return usage, cost, ref_cost

    def _line(
        self,
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
        plan_facts = facts(plan) if plan is not None else None
        # No plan: no route.
        route_json = '""' if plan is None or plan_facts is None else plan_facts.route_json(plan)
        micros = self._duration_ns // 1000
        line = (
            f'{{"ts":"{_timestamp(self._end_ns)}","event":"turnout.request","rpc":"{self.method}",'
            f'"status":"{self.status}","request_id":{_json(chat.request_id if chat is not None else "")},'
            f'"trace_id":"{self.trace_id}","tenant":"{tenant}",'
            f'"route":{route_json},'
            f'"latency_ms":{micros // 1000}.{_THOUSANDTHS[micros % 1000]}'
        )
        if self.attempts or self._error:
            more: dict[str, Any] = {}
            if self.attempts:
                more["model"] = winner.model if winner is not None else ""
                more["attempts"] = [_attempt_entry(a) for a in self.attempts]
                more["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
                more["cost_usd"] = cost / NANOS_PER_USD
                if reference is not None:
                    more["reference_cost_usd"] = reference / NANOS_PER_USD
                    more["savings_usd"] = (reference - cost) / NANOS_PER_USD
            if self._error:
                more["error"] = self._error
            line += "," + orjson.dumps(more).decode()[1:-1]
        if plan is None or plan_facts is None:
            return line + "}"
        head = plan_facts.log_decision(plan)[plan.cache_hit]
        decision = f'{head},"decision_us":{plan.decision_time_micros}'
        if plan.classifier_score is not None:
            decision += f',"classifier_score":{round(plan.classifier_score, 4)!r}'
        return f'{line},"decision":{decision}}}}}'


def _json(text: str) -> str:
    """A JSON string literal of `text`."""
    return orjson.dumps(text).decode()


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second formatted; replaced whole (drains may race)
_MILLIS = [f".{i:03d}Z" for i in range(1000)]
_THOUSANDTHS = [f"{i:03d}" for i in range(1000)]


def _timestamp(ns: int) -> str:
    """`ns` since the epoch in UTC, to the millisecond, ISO 8601 with a Z; the seconds part is
    formatted once per second."""
    ms = ns // 1_000_000
    whole = ms // 1000
    second = _SECOND[0]
    if second[0] != whole:
        second = _SECOND[0] = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return second[1] + _MILLIS[ms - whole * 1000]


def child_parent() -> SpanContext | Literal[False] | None:
    """Where a child span of this request goes: under the current span when it is recorded (its
    context); False when the request's trace is not recorded (head sampling said no); None when
    there is no current span (outside an RPC: the SDK starts a trace of its own).

    An unrecorded trace's children would not be recorded either under the parent-based samplers
    (the SDK's default, and OTEL_TRACES_SAMPLER=parentbased_*), so they are not even made: an
    unsampled request costs only its server span's sampling decision.
    """
    scope = current_rpc.get()
    if scope is not None and scope.traced:  # inside an RPC: its server span decided
        return scope.children_parent
    current = trace.get_current_span()
    context = current.get_span_context()
    if current.is_recording():
        return context
    return False if context.is_valid else None


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
