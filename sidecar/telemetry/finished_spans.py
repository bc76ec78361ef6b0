"""Spans written once, finished: each RPC's server span, its routing decision and each provider attempt.

The recorder sees spans through this small interface, `FinishedSpans`: a span is started (`start`:
its sampling decision and context, as `Tracer.start_span` makes them) and written when it ends
(`write`; `record` for a child whose whole life is known when it ends, like the routing decision).
Two implementations: `SdkSpans` here, the SDK's own live spans (`telemetry.fast_path: false`), and
fast/finished_spans.py, which hands finished `ReadableSpan`s to the span processor without the live
span's bookkeeping (why, and what it buys: docs/decisions/030-telemetry-fast-path.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

UNSET = Status(StatusCode.UNSET)


class Started(NamedTuple):
    """A span's start as `Tracer.start_span` decides it: its context, its parent's (None for a
    root span), and the attributes to record it with (None when the sampler said not to record)."""

    context: SpanContext
    parent: SpanContext | None
    attributes: Mapping[str, Any] | None

    @property
    def recording(self) -> bool:
        return self.attributes is not None


class FinishedSpans:
    """Starts spans and writes them when they end. `writes_finished`: children are written finished
    under the span ids `new_id` gives them (else they are the SDK's live spans)."""

    writes_finished = False

    def new_id(self) -> int:
        raise NotImplementedError

    def start(
        self, name: str, kind: SpanKind, context: Context | None, attributes: Mapping[str, Any]
    ) -> Started:
        """The sampling decision and context of a span under `context`'s span (a remote parent
        extracted from a request; None: the current context)."""
        raise NotImplementedError

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
        self.write(
            name, kind, self.child_context(parent, span_id), parent, start_ns, end_ns, attributes, status
        )

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
        """The span started with `context` (or a new one under `parent`), ended with these attributes."""
        raise NotImplementedError


def _under(parent: SpanContext | None) -> Context | None:
    return trace.set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None


class SdkSpans(FinishedSpans):
    """The plain path: every span is the tracer's live span, started by `start` and ended by `write`."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        # Recorded spans between `start` and `write`, by span id (started on the event loop,
        # written at a drain; dict operations are atomic).
        self._live: dict[int, trace.Span] = {}

    def new_id(self) -> int:
        return 0  # the SDK gives its live spans their ids; `record` ignores this one

    def start(
        self, name: str, kind: SpanKind, context: Context | None, attributes: Mapping[str, Any]
    ) -> Started:
        span = self._tracer.start_span(name, context=context, kind=kind, attributes=attributes)
        own = span.get_span_context()
        parent = trace.get_current_span(context or otel_context.get_current()).get_span_context()
        parent_context = parent if parent.is_valid else None
        if not span.is_recording():
            return Started(own, parent_context, None)
        self._live[own.span_id] = span
        return Started(own, parent_context, attributes)

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
        span = self._live.pop(context.span_id, None)
        if span is None:  # not started here (`record`): a new span under `parent`, timed as given
            span = self._tracer.start_span(name, context=_under(parent), kind=kind, start_time=start_ns)
        span.set_attributes(attributes)
        if status.status_code is not StatusCode.UNSET:
            span.set_status(status)
        span.end(end_time=end_ns)


class AttemptSpan:
    """A provider attempt's CLIENT span from its start to its end: written finished when its
    parent is recorded and the spans are written finished (`FinishedSpans.writes_finished`), else
    a live SDK span under that parent (no parent: under the current context)."""

    __slots__ = ("_attrs", "_finished", "_live", "_name", "_parent", "_span_id", "_start_ns")

    def __init__(
        self,
        finished: FinishedSpans | None,
        tracer: trace.Tracer,
        name: str,
        parent: SpanContext | None,
        attrs: dict[str, Any],
    ) -> None:
        written = parent is not None and finished is not None and finished.writes_finished
        self._finished = finished if written else None
        self._name, self._parent, self._attrs = name, parent, attrs
        self._live: trace.Span | None = None
        self._span_id = 0
        self._start_ns = time.time_ns()
        if self._finished is not None:
            self._span_id = self._finished.new_id()
        else:
            context = _under(parent)
            self._live = tracer.start_span(name, context=context, kind=SpanKind.CLIENT, attributes=attrs)

    def for_context(self) -> trace.Span:
        """A span to put in a context for propagation (its id is this attempt's)."""
        if self._live is not None:
            return self._live
        assert self._parent is not None
        return NonRecordingSpan(FinishedSpans.child_context(self._parent, self._span_id))

    def end(self, attrs: dict[str, Any], status: Status, end_ns: int) -> None:
        if self._live is not None:
            if self._live.is_recording():
                self._live.set_attributes(attrs)
                if status.status_code is not StatusCode.UNSET:
                    self._live.set_status(status)
            self._live.end(end_time=end_ns)
            return
        assert self._finished is not None
        assert self._parent is not None
        self._finished.record(
            self._name,
            SpanKind.CLIENT,
            self._parent,
            self._span_id,
            self._start_ns,
            end_ns,
            {**self._attrs, **attrs},
            status,
        )
