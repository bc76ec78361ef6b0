"""Telemetry's fast path: hand-made pieces that do what the OpenTelemetry SDK does, cheaper.

Each piece is kept only while a benchmark shows it pays (docs/decisions/030-telemetry-fast-path.md),
and `telemetry.fast_path` chooses them: true (the default) all of them, false none (the plain SDK
path), or a list of their names. The rest of telemetry sees them only through the interfaces they
implement (finished_spans.FinishedSpans, tally.Tallies, the SDK's SpanExporter), chosen in setup.py.

    span_writer    finished spans handed to the span processor      finished_spans.FastSpans
    tally          per-request metrics summed in plain Python       tally.Tally

Measured and dropped (they re-implemented SDK internals and bought under 3% of Route throughput):
root spans sampled without asking the sampler (it read `ParentBased._root`), and an OTLP span
encoder put in through the exporter's private `_translate_data`.
"""

from __future__ import annotations

from typing import Final

PIECES: Final = ("span_writer", "tally")
