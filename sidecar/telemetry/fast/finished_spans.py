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

import random
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    StaticSampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, TraceFlags

from sidecar.telemetry.finished_spans import UNSET, FinishedSpans, Started


def root_bound(sampler: Sampler) -> int | None:
    """When the sampler decides a root span by its trace id alone, as the SDK's own do (a trace-id
    ratio, always on, always off; parent-based or not), the bound its trace id (masked to
    TRACE_ID_LIMIT) must be under to be sampled; else None (ask the sampler)."""
    root = sampler._root if type(sampler) is ParentBased else sampler
    if type(root) is TraceIdRatioBased:
        return root.bound
    if type(root) is StaticSampler:
        decision = root._decision
        if decision is Decision.RECORD_AND_SAMPLE:
            return TraceIdRatioBased.TRACE_ID_LIMIT + 1
        if decision is Decision.DROP:
            return 0
    return None


class FastSpans(FinishedSpans):
    """Starts spans as the SDK's tracer would and writes them finished to the span processor.
    `root_sampling`: draw root spans' ids and decisions here when the sampler allows (`root_bound`)."""

    writes_finished = True

    def __init__(
        self,
        provider: TracerProvider,
        processor: SpanProcessor,
        scope: InstrumentationScope,
        *,
        root_sampling: bool = True,
    ) -> None:
        self._processor = processor
        self._resource = provider.resource
        self._scope = scope
        self._ids = provider.id_generator
        self._sampler = provider.sampler
        # Root spans (no caller's trace: most requests) decided here without asking the sampler,
        # when that gives the same ids and decision: the SDK's random ids, a sampler as above.
        random_ids = type(self._ids) is RandomIdGenerator
        self._root_bound = root_bound(provider.sampler) if root_sampling and random_ids else None
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
            if self._root_bound is not None:
                return self.root_started(*self._draw_root(), attributes)
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

    def draw_root(self) -> tuple[int, int, bool] | None:
        """A new root span's (trace id, span id, sampled) when nothing is current and the sampler
        decides root spans by their trace id alone (_root_bound): what the sampler and
        RandomIdGenerator would make. None: ask `start`."""
        if self._root_bound is None or otel_context.get_current():
            return None
        return self._draw_root()

    def _draw_root(self) -> tuple[int, int, bool]:
        assert self._root_bound is not None
        trace_id = random.getrandbits(128)
        while not trace_id:
            trace_id = random.getrandbits(128)
        span_id = random.getrandbits(64)
        while not span_id:
            span_id = random.getrandbits(64)
        return trace_id, span_id, trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._root_bound

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
