"""Telemetry: OpenTelemetry traces and metrics (GenAI conventions), Prometheus, the request log.

The only package that imports the OpenTelemetry SDK or prometheus_client. It observes: Telemetry
is an Observer (domain/observe.py) that the server, the pipeline and the executor report each
RPC's events to; nothing here calls back into the request flow.
"""

from typing import TextIO

from sidecar.telemetry.privacy import capture_enabled, redact_log_records
from sidecar.telemetry.recorder import Telemetry
from sidecar.telemetry.setup import TelemetryOptions, build_sdk

__all__ = [
    "Telemetry",
    "TelemetryOptions",
    "build_sdk",
    "build_telemetry",
    "capture_enabled",
    "log_requests_to",
    "redact_log_records",
]


def log_requests_to(stream: TextIO) -> None:
    """Write the request log (logger `turnout.access`) to `stream` as bare JSON lines.

    Buffered: lines go out in blocks, at least once a second and at exit, not one write per
    request (stderr is line-buffered, so each line would otherwise be a system call).
    """
    import logging

    from sidecar.telemetry.access_log import BufferedLines

    access = logging.getLogger("turnout.access")
    handler = BufferedLines(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for old in access.handlers:
        old.close()
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False


def build_telemetry(
    options: TelemetryOptions, env: dict[str, str] | None = None, **parts: object
) -> Telemetry:
    """Telemetry from settings and the environment (OTEL_* variables, the content opt-in)."""
    import os

    from sidecar.domain.model import ModelSpec

    env = dict(os.environ) if env is None else env
    reference = parts.pop("reference", None)
    sdk = build_sdk(options, env, **parts)  # type: ignore[arg-type]
    return Telemetry(
        sdk,
        options,
        capture_content=capture_enabled(env),
        id_secret=env.get(options.id_secret_env, ""),
        reference=reference if isinstance(reference, ModelSpec) else None,
    )
