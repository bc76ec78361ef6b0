"""Child spans written once, finished: the routing decision and each provider attempt.

Why not the SDK's live spans for these: a `Tracer.start_span` ... `end` with the ~20 attributes of
an attempt costs ~55 µs here (a sampler call, a `BoundedAttributes` that validates every value
twice, a lock per attribute, the processor's start and end hooks), ~8 µs as one `ReadableSpan`
handed to the span processor. Neither span has children and both have their whole life known
when they are written (the decision is timed by the policy; an attempt's start time and span id
are taken when it starts), so nothing of a live span is needed. The server span stays the SDK's:
it is the parent context and carries the head-sampling decision.

What the SDK would have done and this keeps: the parent's trace id, flags and trace state (a
parent-based sampler's children), span ids from the provider's id generator, the provider's
resource, Turnout's instrumentation scope, and the attribute limits from OTEL_SPAN_ATTRIBUTE_*
/ OTEL_ATTRIBUTE_* (applied only when set: Turnout's own attributes are of valid types and
few, so the SDK's cleaning of them changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

UNSET = Status(StatusCode.UNSET)


class FinishedSpans:
    """Writes finished child spans straight to the provider's span processor."""

    def __init__(
        self, provider: TracerProvider, processor: SpanProcessor, scope: InstrumentationScope
    ) -> None:
        self._processor = processor
        self._resource = provider.resource
        self._scope = scope
        self._ids = provider.id_generator
        limits = SpanLimits()  # the OTEL_* limits, read as the provider reads them
        self._max_attributes = limits.max_span_attributes
        self._max_length = limits.max_span_attribute_length

    def new_id(self) -> int:
        return self._ids.generate_span_id()

    @staticmethod
    def child_context(parent: SpanContext, span_id: int) -> SpanContext:
        """The context of a child of `parent` with this id: same trace, flags and trace state."""
        return SpanContext(parent.trace_id, span_id, False, parent.trace_flags, parent.trace_state)

    def record(
        self,
        name: str,
        kind: SpanKind,
        parent: SpanContext,
        span_id: int,
        start_ns: int,
        end_ns: int,
        attributes: Mapping[str, Any],
        status: Status = UNSET,
    ) -> None:
        """One finished span, a child of `parent` (a sampled span's context) in its trace."""
        context = self.child_context(parent, span_id)
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
