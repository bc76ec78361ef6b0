"""Headers an observer asks the current provider attempt to carry (W3C trace context propagation).

Why a context variable: the attempt's span is made by telemetry when the attempt starts, inside
the attempt's own task; the HTTP request is built a few calls later by the provider transport.
A context variable carries the headers between the two without the executor or the providers
knowing about tracing, and each attempt task has its own copy, so concurrent attempts (hedges)
never see each other's values.
"""

from __future__ import annotations

from contextvars import ContextVar

# (name, value) pairs; empty unless an observer set them for the attempt running in this context.
outbound_headers: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("turnout_outbound_headers", default=())
