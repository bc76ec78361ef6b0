"""Telemetry's fast path: hand-made pieces that do what the OpenTelemetry SDK does, cheaper.

Each piece is kept only while a benchmark shows it pays (docs/decisions/030-telemetry-fast-path.md),
and `telemetry.fast_path` chooses them: true (the default) all of them, false none (the plain SDK
path), or a list of their names. The rest of telemetry sees them only through the interfaces they
implement (finished_spans.FinishedSpans, tally.Tallies, the SDK's SpanExporter), chosen in setup.py.

    span_writer    finished spans handed to the span processor      finished_spans.FastSpans
    root_sampling  root spans' ids and decision drawn here          FastSpans.draw_root (needs span_writer)
    span_encoder   OTLP/gRPC spans encoded as bytes                 otlp_spans.grpc_span_exporter
    tally          per-request metrics summed in plain Python       tally.Tally
"""

from __future__ import annotations

from typing import Final

PIECES: Final = ("span_writer", "root_sampling", "span_encoder", "tally")
