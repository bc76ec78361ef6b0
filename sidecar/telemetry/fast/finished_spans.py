"""The fast path's span writer: finished spans handed straight to the span processor.

What the SDK would have done and this keeps: the provider's sampler (whatever OTEL_TRACES_SAMPLER
chose) asked with the same arguments, so a caller's sampled trace is continued and an
unsampled one is not; the trace flags (sampled, and the random-trace-id bit) and the sampler's
trace state; the sampler's attributes; the parent's trace id, flags and trace state for
children; span ids from the provider's id generator; the provider's resource, Turnout's
instrumentation scope, and the attribute limits from OTEL_SPAN_ATTRIBUTE_* / OTEL_ATTRIBUTE_*
(applied only when set: Turnout's own attributes are of valid types and few, so the SDK's
cleaning of them changes nothing). What it does not do: the span processors' `on_start` (the
batch processor's is empty), the SDK's own span metrics (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED,
off by default), and the experimental tracer configurator (never set by Turnout).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

from sidecar.telemetry.finished_spans import UNSET, FinishedSpans, Started


class FastSpans(FinishedSpans):
    """Starts spans as the SDK's tracer would and writes them finished to the span processor."""

    writes_finished = True

    def __init__(
        self,
        provider: TracerProvider,
        processor: SpanProcessor,
        scope: InstrumentationScope,
    ) -> None:
        self._processor = processor
        self._resource = provider.resource
        self._scope = scope
        self._ids = provider.id_generator
        self._sampler = provider.sampler
        limits = SpanLimits()  # the OTEL_* limits, read as the provider reads them
        self._max_attributes = limits.max_span_attributes
        self._max_length = limits.max_span_attribute_length

    def new_id(self) -> int:
        return self._ids.generate_span_id()

    def start(
        self, name: str, kind: SpanKind, context: Context | None, attributes: Mapping[str, Any]
    ) -> Started:
        """The sampling decision and context of a span under `context`'s span (a remote parent
        extracted from a request; None: the current context), made as `Tracer.start_span` makes
        them (opentelemetry-sdk 1.45; tests compare the two)."""
        if context is None:  # the current context, looked up once (the sampler reads it too)
            context = otel_context.get_current()
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = self._ids.generate_trace_id()
        else:
            trace_id = parent.trace_id
        result = self._sampler.should_sample(context, trace_id, name, kind, dict(attributes), ())
        flags = TraceFlags.SAMPLED if result.decision is Decision.RECORD_AND_SAMPLE else TraceFlags.DEFAULT
        random_id = self._ids.is_trace_id_random() if parent is None else parent.trace_flags.random_trace_id
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        own = SpanContext(
            trace_id, self._ids.generate_span_id(), False, TraceFlags(flags), result.trace_state
        )
        return Started(own, parent, None if result.decision is Decision.DROP else result.attributes)

    def write(
        self,
        name: str,
        kind: SpanKind,
        context: SpanContext,
        parent: SpanContext | None,
        start_ns: int,
        end_ns: int,
        attributes: Mapping[str, Any],
        status: Status = UNSET,
    ) -> None:
        """One finished span with its own context, under `parent` (None: a root span)."""
        if self._max_length is not None or (
            self._max_attributes is not None and len(attributes) > self._max_attributes
        ):
            attributes = BoundedAttributes(self._max_attributes, attributes, max_value_len=self._max_length)
        span = ReadableSpan(
            name,
            context,
            parent,
            resource=self._resource,
            attributes=attributes,
            kind=kind,
            status=status,
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self._scope,
        )
        self._processor.on_end(span)
