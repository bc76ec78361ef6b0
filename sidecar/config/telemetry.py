"""The `telemetry:` section: traces, metrics, the request log, and the Prometheus listener."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sidecar.config.common import ENV_NAME, Strict


class PrometheusSettings(Strict):
    enabled: bool = True
    host: str = "127.0.0.1"  # a scrape endpoint for the pod's own Prometheus agent; keep it local
    port: int = Field(9464, ge=0, le=65535)  # 0: any free port (the log says which)
    # A host off loopback must be chosen deliberately (README, Access control): the endpoint serves
    # read-only aggregates, no prompts or keys, to whoever can reach it.
    allow_remote: bool = False


class TelemetrySettings(Strict):
    """Traces, metrics and the request log. The standard OTEL_* variables take precedence."""

    service_name: str = "turnout"  # OTEL_SERVICE_NAME wins
    # OTLP export of spans / metrics: auto = when an OTEL_EXPORTER_OTLP_*ENDPOINT variable is set.
    traces: Literal["auto", "otlp", "console", "none"] = "auto"
    metrics: Literal["auto", "otlp", "console", "none"] = "auto"
    otlp_protocol: Literal["", "grpc", "http/protobuf"] = ""  # "": OTEL_EXPORTER_OTLP_PROTOCOL, else grpc
    prometheus: PrometheusSettings = PrometheusSettings()
    propagate_to_providers: bool = False  # send traceparent with provider calls
    # Share of root requests traced (those without a caller's trace). A caller's own decision is
    # always followed, so its sampled traces stay whole. OTEL_TRACES_SAMPLER, when set, wins.
    trace_sample_ratio: float = Field(0.1, ge=0, le=1)
    request_log: bool = True  # one JSON line per request on stderr (logger turnout.access)
    reference_model: str = ""  # savings are measured against this model's prices
    tenant_label: bool = True  # label cost metrics with the hashed tenant id
    id_secret_env: Annotated[str, Field(pattern=ENV_NAME)] = "TURNOUT_TELEMETRY_ID_SECRET"
    metric_export_interval_s: float = Field(15, gt=0)
    # How spans and metrics are made: true, the hand-made pieces that pay (sidecar/telemetry/fast/);
    # false, the plain OpenTelemetry SDK; or a list of those pieces (to measure each one).
    fast_path: bool | list[Literal["span_writer", "tally"]] = True
