"""The fast path's pieces and the plain OpenTelemetry SDK record the same telemetry; and the GenAI
names follow OTEL_SEMCONV_STABILITY_OPT_IN."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from opentelemetry.sdk.metrics.export import HistogramDataPoint
from turnout_simulator.server import Simulator

from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.telemetry import TelemetryOptions
from tests.conftest import EXAMPLE_CONFIG, inject_fault, point_at_simulator
from tests.server.helpers import generate_request, user
from tests.telemetry.conftest import Lines, Observed, observed_sidecar

OPT_IN = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http,gen_ai_latest_experimental"}


async def workload(observed: Observed, simulator: Simulator) -> None:
    """A fallback, a stream and a Route."""
    await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
    await observed.stub.Generate(generate_request("hello there", tenant_id="acme"))
    async for _ in observed.stub.GenerateStream(pb.GenerateStreamRequest(messages=[user("a story")])):
        pass
    await observed.stub.Route(pb.RouteRequest(messages=[user("route only")]))


def span_shapes(observed: Observed) -> list[tuple[Any, ...]]:
    """Each span's name, kind, parent's name, status and attribute names (ids and times differ)."""
    spans = observed.spans()
    names = {s.context.span_id: s.name for s in spans}
    return sorted(
        (
            s.name,
            s.kind.name,
            names.get(s.parent.span_id, "") if s.parent is not None else "",
            s.status.status_code.name,
            tuple(sorted(s.attributes or {})),
        )
        for s in spans
    )


def metric_shapes(observed: Observed) -> dict[str, list[tuple[Any, ...]]]:
    """Each metric's points: attributes and, for histograms, the buckets' bounds."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name, points in observed.metrics().items():
        shapes = []
        for p in points:
            attrs = tuple(sorted((p.attributes or {}).items()))
            bounds = tuple(p.explicit_bounds) if isinstance(p, HistogramDataPoint) else ()
            shapes.append((attrs, bounds))
        out[name] = sorted(shapes)
    return out


@pytest.mark.parametrize("env", [{}, OPT_IN], ids=["v1.41", "latest"])
async def test_fast_pieces_and_the_plain_sdk_record_the_same_spans_and_metrics(
    simulator: Simulator, access_log: Lines, fast_path: str, env: dict[str, str]
):
    if fast_path == "plain":
        pytest.skip("compares both paths itself")
    # No retries: a retry of the failed model races the fallback's answer, so whether it is made
    # (and cancelled, and billed) is up to timing, not to the path.
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    point_at_simulator(raw, simulator.base_url.removesuffix("/v1"))
    for route in raw["routes"]:
        route.setdefault("execution", {})["max_retries"] = 0
    config = parse_config(raw, source=str(EXAMPLE_CONFIG), env={})
    seen = []
    for choice in (True, False):
        async with observed_sidecar(simulator, access_log, env, config, fast_path=choice) as observed:
            await workload(observed, simulator)
            seen.append((span_shapes(observed), metric_shapes(observed), observed.log_lines()[-3:]))
    (fast_spans, fast_metrics, fast_log), (plain_spans, plain_metrics, plain_log) = seen
    assert fast_spans == plain_spans
    assert fast_metrics == plain_metrics
    assert [sorted(line) for line in fast_log] == [sorted(line) for line in plain_log]


def test_fast_path_takes_true_false_or_named_pieces(fast_path: str):
    if fast_path == "plain":
        pytest.skip("reads the setting itself")
    assert TelemetryOptions().fast_pieces == {"span_writer", "tally"}
    assert TelemetryOptions(fast_path=False).fast_pieces == frozenset()
    assert TelemetryOptions(fast_path=["tally"]).fast_pieces == {"tally"}
    with pytest.raises(ValueError, match="unknown pieces \\['encoder'\\]"):
        _ = TelemetryOptions(fast_path=["encoder"]).fast_pieces


async def test_with_the_opt_in_the_latest_genai_names_are_emitted_and_not_v1_41s(
    simulator: Simulator, access_log: Lines
):
    async with observed_sidecar(simulator, access_log, env=OPT_IN) as observed:
        await workload(observed, simulator)
        metrics = observed.metrics()
        routings = [span for span in observed.spans() if span.name == "route default"]
    for old in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
        assert old not in metrics
    assert "gen_ai.client.operation.time_to_first_chunk" not in metrics
    assert metrics["gen_ai.client.inference.duration"]
    assert metrics["gen_ai.client.inference.time_to_first_chunk"]
    for kind in ("input", "output"):
        totals = metrics[f"gen_ai.client.inference.usage.{kind}_tokens"]
        per_call = metrics[f"gen_ai.client.inference.operation.{kind}_tokens"]
        assert sum(p.value for p in totals) == sum(p.sum for p in per_call) > 0
        for p in (*totals, *per_call):
            assert "gen_ai.token.type" not in p.attributes
            assert p.attributes["gen_ai.operation.name"] == "chat"
    assert len(routings) == 3
    for routing in routings:
        assert routing.attributes is not None
        assert routing.attributes["gen_ai.gateway.name"] == "turnout"
        assert routing.attributes["gen_ai.gateway.request.model"] == "default"
        assert routing.attributes["gen_ai.gateway.version"]


async def test_without_the_opt_in_v1_41s_names_only(observed: Observed, simulator: Simulator):
    await workload(observed, simulator)
    metrics = observed.metrics()
    assert metrics["gen_ai.client.token.usage"]
    assert metrics["gen_ai.client.operation.duration"]
    assert not [name for name in metrics if name.startswith("gen_ai.client.inference")]
    routings = [span for span in observed.spans() if span.name == "route default"]
    assert len(routings) == 3
    assert not [
        key for span in routings for key in span.attributes or {} if key.startswith("gen_ai.gateway.")
    ]
