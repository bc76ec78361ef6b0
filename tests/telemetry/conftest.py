"""A sidecar whose telemetry records into memory: spans, metrics and the request log lines."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import Config
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from sidecar.telemetry import Telemetry, TelemetryOptions, build_telemetry
from tests.conftest import example_config


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Observed:
    sidecar: Sidecar
    stub: pb_grpc.RouterServiceStub
    telemetry: Telemetry
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    log: Lines
    env: dict[str, str] = field(default_factory=dict)

    def spans(self) -> list[ReadableSpan]:
        self.telemetry.sdk.flush()
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"{name!r}: {[s.name for s in self.spans()]}"
        return found[0]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points."""
        out: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    out.setdefault(m.name, []).extend(m.data.data_points)
        return out

    def metrics_json(self) -> str:
        data = self.reader.get_metrics_data()
        return data.to_json() if data else ""

    def log_lines(self) -> list[dict[str, Any]]:
        self.telemetry.drain()  # what ended in the last few milliseconds is recorded at the next drain
        return [json.loads(line) for line in self.log.lines]


@pytest.fixture
def access_log() -> Iterator[Lines]:
    logger = logging.getLogger("turnout.access")
    handler = Lines()
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@asynccontextmanager
async def observed_sidecar(
    simulator: Simulator,
    access_log: Lines,
    env: dict[str, str] | None = None,
    config: Config | None = None,
    **options: Any,
) -> AsyncIterator[Observed]:
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    opts = TelemetryOptions(
        **{"prometheus": False, "reference_model": "gpt-4o", "trace_sample_ratio": 1.0, **options}
    )
    telemetry = build_telemetry(opts, env=env or {}, span_exporter=exporter, metric_readers=(reader,))
    sidecar = Sidecar(
        config or example_config(simulator.base_url),
        ListenOverrides(host="127.0.0.1", port=0),
        telemetry=telemetry,
    )
    await sidecar.start()
    try:
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            yield Observed(
                sidecar,
                pb_grpc.RouterServiceStub(channel),
                telemetry,
                exporter,
                reader,
                access_log,
                env or {},
            )
    finally:
        await sidecar.stop(grace_s=0)


@pytest.fixture
async def observed(simulator: Simulator, access_log: Lines) -> AsyncIterator[Observed]:
    async with observed_sidecar(simulator, access_log) as o:
        yield o


@pytest.fixture(autouse=True, params=["fast", "plain"])
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every telemetry test runs on both paths: the fast pieces (the default) and the plain SDK
    (`telemetry.fast_path: false`), unless its options choose."""
    if request.param == "plain":
        chosen = TelemetryOptions.fast_pieces

        def pieces(options: TelemetryOptions) -> frozenset[str]:
            return frozenset() if options.fast_path is True else chosen.fget(options)  # type: ignore[misc]

        # a slotted dataclass's field default cannot be patched: its reading of the field is
        monkeypatch.setattr(TelemetryOptions, "fast_pieces", property(pieces))
    return str(request.param)
