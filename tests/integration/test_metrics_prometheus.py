"""A real Prometheus scrapes the sidecar: PromQL returns the decision, token and cost series, and every
query of the shipped Grafana dashboard is valid PromQL that Prometheus accepts and answers. On both
telemetry paths (fast pieces, plain SDK) and with both GenAI namings (v1.41, latest)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import example_config, inject_fault
from tests.integration.conftest import require
from tests.integration.services import Prometheus, prometheus_binary, run_prometheus
from tests.server.helpers import generate_request, user

pytestmark = pytest.mark.slow

DASHBOARD = Path(__file__).resolve().parents[2] / "helm" / "turnout" / "dashboards" / "turnout-routing.json"


def value(result: list[dict]) -> float:
    return sum(float(series["value"][1]) for series in result)


@pytest.fixture
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A Prometheus of this test's own: each variant's sums start from nothing."""
    binary = require(prometheus_binary)
    with run_prometheus(tmp_path_factory.mktemp("prometheus"), binary=binary) as running:
        yield running


async def test_prometheus_scrapes_decisions_tokens_and_cost(
    prometheus: Prometheus, simulator: Simulator, telemetry_path: str, latest_names: bool
):
    sidecar = Sidecar(example_config(simulator.base_url), ListenOverrides(host="127.0.0.1", port=0))
    await sidecar.start()
    try:
        host, port = sidecar.telemetry.sdk.prometheus_address or ("", 0)
        prometheus.set_targets([f"{host}:{port}"])
        await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            for i in range(4):
                await stub.Generate(generate_request(f"question {i}", tenant_id="acme"))
            await stub.Route(pb.RouteRequest(messages=[user("route only")]))
        await asyncio.to_thread(prometheus.wait_for_up)

        decisions = await asyncio.to_thread(
            prometheus.wait_for, 'sum(turnout_decision_duration_seconds_count{turnout_route="default"}) >= 5'
        )
        assert value(decisions) == 5
        by_model = await asyncio.to_thread(
            prometheus.query, "sum by (turnout_decision_model) (turnout_decision_duration_seconds_count)"
        )
        assert {s["metric"]["turnout_decision_model"] for s in by_model} == {"gpt-4o-mini"}
        if latest_names:  # a counter per token type, no gen_ai.token.type
            for kind in ("input", "output"):
                tokens = await asyncio.to_thread(
                    prometheus.wait_for,
                    f'sum(gen_ai_client_inference_usage_{kind}_tokens_total{{gen_ai_operation_name="chat"}})',
                )
                assert value(tokens) > 0
            old = await asyncio.to_thread(prometheus.query, "count(gen_ai_client_token_usage_sum)")
            assert old == []
        else:
            tokens = await asyncio.to_thread(
                prometheus.wait_for,
                'sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum{gen_ai_operation_name="chat"})',
            )
            assert {s["metric"]["gen_ai_token_type"] for s in tokens} == {"input", "output"}
            assert all(float(s["value"][1]) > 0 for s in tokens)
        cost = await asyncio.to_thread(prometheus.wait_for, "sum by (turnout_model) (turnout_cost_usd_total)")
        assert value(cost) > 0
        savings = await asyncio.to_thread(
            prometheus.wait_for, 'sum(turnout_savings_usd{turnout_reference_model="gpt-4o"})'
        )
        assert value(savings) > 0
        fallbacks = await asyncio.to_thread(prometheus.wait_for, "sum(turnout_fallbacks_total)")
        assert value(fallbacks) == 1
        duration = "inference" if latest_names else "operation"
        durations = await asyncio.to_thread(
            prometheus.wait_for,
            f"histogram_quantile(0.95, sum by (le) (gen_ai_client_{duration}_duration_seconds_bucket))",
        )
        assert 0 < value(durations) < 60

        # Every dashboard query parses and runs (a typo would come back as an error, not empty), and
        # the GenAI panels have data whichever names are exported.
        dashboard = json.loads(DASHBOARD.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"].replace("$route", ".*")
                if "gen_ai_" in expr and "first_chunk" not in expr:  # no stream here: no first chunk
                    assert await asyncio.to_thread(prometheus.wait_for, expr), expr
                else:
                    await asyncio.to_thread(prometheus.query, expr)  # raises on a PromQL error
        # A rate needs two scrapes: the routing-mix panel has data a second or two later.
        mix = await asyncio.to_thread(
            prometheus.wait_for,
            "sum by (turnout_decision_model) (rate(turnout_decision_duration_seconds_count[5m]))",
        )
        assert {s["metric"]["turnout_decision_model"] for s in mix} == {"gpt-4o-mini"}
    finally:
        await sidecar.stop(grace_s=0)
