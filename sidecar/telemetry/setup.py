"""Builds the OpenTelemetry SDK pieces from Turnout's settings and the standard OTEL_* variables.

Traces: OTLP over gRPC or HTTP (endpoint, headers, TLS, timeouts from OTEL_EXPORTER_OTLP_*, read by
the exporters themselves), batched off the request path. Metrics: a Prometheus scrape endpoint on
localhost (pull) and/or OTLP (push). Nothing is set globally: the providers belong to this
sidecar, so tests and embedders can run several.

Which exporters run, most specific first: OTEL_SDK_DISABLED=true turns all of it off; then
OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER (otlp, console, none; metrics also prometheus); then
the config's `telemetry.traces` / `telemetry.metrics` ("auto": OTLP when an OTLP endpoint
variable is set, so a sidecar without a collector never retries connections in the background;
for metrics, only when the Prometheus endpoint is off).

How spans and metrics are made: the plain OpenTelemetry SDK (`telemetry.fast_path: false`) or the
hand-made pieces of fast/ (the default), chosen here behind the interfaces the recorder calls
(finished_spans.FinishedSpans, tally.Tallies).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NoOpTracerProvider, Tracer

from sidecar.telemetry.fast import PIECES
from sidecar.telemetry.fast.finished_spans import FastSpans
from sidecar.telemetry.fast.tally import Tally
from sidecar.telemetry.finished_spans import FinishedSpans, SdkSpans
from sidecar.telemetry.names import Names, names_for
from sidecar.telemetry.tally import SdkTally, Tallies

log = logging.getLogger(__name__)

INSTRUMENTATION = "turnout"


@dataclass(frozen=True, slots=True)
class TelemetryOptions:
    """Turnout's telemetry settings (the config's `telemetry:` block), already validated."""

    service_name: str = "turnout"
    traces: str = "auto"  # auto | otlp | console | none
    metrics: str = "auto"  # OTLP push: auto | otlp | console | none
    otlp_protocol: str = ""  # grpc | http/protobuf; "" = OTEL_EXPORTER_OTLP_PROTOCOL, else grpc
    prometheus: bool = True
    prometheus_host: str = "127.0.0.1"
    prometheus_port: int = 9464
    propagate_to_providers: bool = False
    trace_sample_ratio: float = 0.1  # root requests traced; a caller's decision is followed
    request_log: bool = True
    reference_model: str = ""  # a registry model whose price is the savings baseline
    tenant_label: bool = True  # label cost metrics with the (hashed) tenant
    id_secret_env: str = "TURNOUT_TELEMETRY_ID_SECRET"
    metric_export_interval_s: float = 15.0
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    # true: every piece of fast/; false: the plain SDK; or the names of the pieces (fast.PIECES)
    fast_path: bool | Sequence[str] = True

    @property
    def fast_pieces(self) -> frozenset[str]:
        chosen = PIECES if self.fast_path is True else () if self.fast_path is False else self.fast_path
        unknown = set(chosen) - set(PIECES)
        if unknown:
            raise ValueError(f"telemetry.fast_path: unknown pieces {sorted(unknown)}; known: {list(PIECES)}")
        return frozenset(chosen)


@dataclass(slots=True)
class SdkParts:
    tracer: Tracer
    meter: Meter
    tracing: bool
    metrics: bool
    tally: Tallies
    names: Names = field(default_factory=names_for)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    prometheus_server: Any = None  # (WSGIServer, Thread) from prometheus_client
    prometheus_address: tuple[str, int] | None = None
    span_processor: BatchSpanProcessor | None = None
    finished_spans: FinishedSpans | None = None  # with every tracer provider (finished_spans.py)

    def flush(self, timeout_ms: int = 5000) -> None:
        """Export what is buffered now (tests, and before a process exits), pending records first."""
        self.tally.run_drains()
        if self.tracer_provider is not None:
            self.tracer_provider.force_flush(timeout_ms)
        if self.meter_provider is not None:
            self.meter_provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        self.tally.run_drains()
        if self.prometheus_server is not None:
            server, thread = self.prometheus_server
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self.prometheus_server = None
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()  # flushes the batch
            self.tracer_provider = None
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
            self.meter_provider = None


def build_sdk(
    options: TelemetryOptions,
    env: Mapping[str, str] | None = None,
    *,
    span_exporter: SpanExporter | None = None,
    metric_readers: tuple[MetricReader, ...] = (),
) -> SdkParts:
    """The tracer and meter for one sidecar. `span_exporter` / `metric_readers` are for tests."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        log.info("telemetry: OTEL_SDK_DISABLED=true: no traces or metrics")
        return _disabled(env)
    version = _version()  # package metadata, read once
    scope = InstrumentationScope(INSTRUMENTATION, version)
    resource = Resource.create(
        {
            "service.name": env.get("OTEL_SERVICE_NAME") or options.service_name,
            "service.version": version,
            "service.instance.id": str(uuid.uuid4()),
            "host.name": socket.gethostname(),
            **options.resource_attributes,
        }
    )  # OTEL_RESOURCE_ATTRIBUTES is merged in by Resource.create
    protocol = options.otlp_protocol or env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

    pieces = options.fast_pieces
    names = names_for(env)
    exporter = span_exporter or _span_exporter(_choice(options.traces, "TRACES", env), protocol)
    tracer_provider = processor = None
    finished: FinishedSpans | None = None
    if exporter is not None:
        tracer_provider = TracerProvider(resource=resource, sampler=_sampler(options, env))
        processor = BatchSpanProcessor(exporter)
        tracer_provider.add_span_processor(processor)
        if "span_writer" in pieces:
            finished = FastSpans(tracer_provider, processor, scope)
        else:
            finished = SdkSpans(tracer_provider.get_tracer(INSTRUMENTATION, version))

    readers: list[tuple[MetricReader, bool]] = [(r, False) for r in metric_readers]  # (reader, delta)
    prometheus_server = address = None
    if not metric_readers:
        want_prometheus = options.prometheus or "prometheus" in env.get("OTEL_METRICS_EXPORTER", "")
        # `auto` pushes metrics over OTLP only where nothing scrapes them: every reader records
        # every measurement again, so both at once are for operators who ask (`metrics: otlp`).
        configured = "none" if options.metrics == "auto" and want_prometheus else options.metrics
        metrics_choice = _choice(configured, "METRICS", env)
        if want_prometheus:
            started = _prometheus(options)
            if started is not None:
                reader, prometheus_server, address = started
                readers.append((reader, False))
        push = _metric_exporter(metrics_choice, protocol)
        if push is not None:
            interval_ms = int(options.metric_export_interval_s * 1000)
            periodic = PeriodicExportingMetricReader(push, export_interval_millis=interval_ms)
            readers.append((periodic, metrics_choice == "otlp" and _prefers_delta(env)))
    # Without the tally, the SDK's readers keep their own temporality (OTLP's exporter reads
    # OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE itself).
    meter_provider = None
    if readers:
        meter_provider = MeterProvider(resource=resource, metric_readers=[r for r, _ in readers])
    meter = (meter_provider or NoOpMeterProvider()).get_meter(INSTRUMENTATION, version)
    tally: Tallies
    if "tally" in pieces:
        fast_tally = Tally(scope, resource)
        for reader, wants_delta in readers:
            fast_tally.attach(reader, delta=wants_delta)
        tally = fast_tally
    else:
        tally = SdkTally(meter, version)

    return SdkParts(
        tracer=(tracer_provider or NoOpTracerProvider()).get_tracer(INSTRUMENTATION, version),
        meter=meter,
        tracing=tracer_provider is not None,
        metrics=meter_provider is not None,
        tally=tally,
        names=names,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        prometheus_server=prometheus_server,
        prometheus_address=address,
        span_processor=processor,
        finished_spans=finished,
    )


def _sampler(options: TelemetryOptions, env: Mapping[str, str]) -> Sampler | None:
    """Parent-based by default: a caller's sampled trace is always continued, an unsampled one
    never; of the requests that start a trace here, `trace_sample_ratio` are recorded.

    OTEL_TRACES_SAMPLER (and _ARG), when set, wins: the standard samplers are made here from the
    given environment; any other name (a plugin's) is left to the SDK, which reads the process's.
    """
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if not name:
        ratio = options.trace_sample_ratio
        return ParentBased(ALWAYS_ON if ratio >= 1 else TraceIdRatioBased(ratio))
    fixed = {"always_on": ALWAYS_ON, "always_off": ALWAYS_OFF}
    root = name.removeprefix("parentbased_")
    if root in fixed:
        chosen: Sampler = fixed[root]
    elif root == "traceidratio":
        try:
            ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
        except ValueError:
            ratio = 1.0
        chosen = TraceIdRatioBased(ratio if 0 <= ratio <= 1 else 1.0)
    else:
        return None
    return ParentBased(chosen) if name.startswith("parentbased_") else chosen


def _disabled(env: Mapping[str, str]) -> SdkParts:
    return SdkParts(
        tracer=NoOpTracerProvider().get_tracer(INSTRUMENTATION),
        meter=NoOpMeterProvider().get_meter(INSTRUMENTATION),
        tracing=False,
        metrics=False,
        tally=Tally(InstrumentationScope(INSTRUMENTATION), Resource.get_empty()),
        names=names_for(env),
    )


def _choice(configured: str, signal: str, env: Mapping[str, str]) -> str:
    """otlp, console or none for one signal (TRACES or METRICS)."""
    chosen = env.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if chosen:
        names = {n.strip() for n in chosen.split(",")}
        for name in ("otlp", "console"):
            if name in names:
                return name
        return "none"
    if configured != "auto":
        return configured
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")
    return "otlp" if endpoint else "none"


def _span_exporter(choice: str, protocol: str) -> SpanExporter | None:
    if choice == "console":
        return ConsoleSpanExporter()
    if choice != "otlp":
        return None
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

    return GrpcExporter()


def _prefers_delta(env: Mapping[str, str]) -> bool:
    """OTLP counters and histograms as deltas (the OTLP exporter's own reading of the variable)."""
    preference = env.get("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "").strip().lower()
    return preference in ("delta", "lowmemory")


def _metric_exporter(choice: str, protocol: str) -> Any:
    if choice == "console":
        return ConsoleMetricExporter()
    if choice != "otlp":
        return None
    if protocol.startswith("http"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

        return Http()
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

    return Grpc()


def _prometheus(options: TelemetryOptions) -> tuple[MetricReader, Any, tuple[str, int]] | None:
    """A Prometheus reader on a registry of its own, served on host:port; None if the port is taken.

    A taken port does not stop the sidecar (routing matters more than its metrics): it is logged
    as an error naming the setting, and OTLP metrics, if configured, still flow.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=True)
    try:
        server, thread = start_http_server(
            options.prometheus_port, options.prometheus_host, registry=registry
        )
    except OSError as exc:
        log.error(
            "telemetry: cannot serve Prometheus metrics on %s:%d (%s); set telemetry.prometheus.port "
            "or turn it off with telemetry.prometheus.enabled: false",
            options.prometheus_host,
            options.prometheus_port,
            exc.strerror or exc,
        )
        return None
    reader = PrometheusMetricReader(registry=registry)
    host, port = server.server_address[:2]
    return reader, (server, thread), (str(host), int(port))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("turnout")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0+unknown"
