"""The Grafana dashboard reads only series the sidecar exports, with labels those series carry."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from turnout_simulator.server import Simulator

from sidecar.app import ListenOverrides, Sidecar
from sidecar.config import parse_config
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLE_CONFIG, example_config, inject_fault
from tests.server.helpers import generate_request, user

DASHBOARD = Path(__file__).resolve().parents[2] / "helm" / "turnout" / "dashboards" / "turnout-routing.json"
SERIES = re.compile(r"\b((?:turnout|gen_ai)_[a-z0-9_]+)")
# Series that exist only once their event has happened (a hedge, a retry, a breaker change).
AFTER_EVENTS = {
    "turnout_hedges_total",
    "turnout_hedges_won_total",
    "turnout_retries_total",
    "turnout_breaker_transitions_total",
    "turnout_limits_store_up",  # only with a shared store (limits.store.redis_url); tests/limits has it
}
# GenAI series under each naming (the dashboard reads either): v1.41's, and the latest conventions'.
V1_41 = {
    "gen_ai_client_token_usage_sum",
    "gen_ai_client_operation_duration_seconds_bucket",
    "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
}
LATEST = {
    "gen_ai_client_inference_usage_input_tokens_total",
    "gen_ai_client_inference_usage_output_tokens_total",
    "gen_ai_client_inference_duration_seconds_bucket",
    "gen_ai_client_inference_time_to_first_chunk_seconds_bucket",
}


# The limits' series exist once budgets and escalation caps are configured: the sidecar here has both.
LIMITS = {
    "budgets": [{"name": "team-daily", "per": "label:team", "usd": 100}],
    "escalation": [{"route": "default", "above_quality": 0.8, "max_share": 0.2}],
}


def limits_config(limits: dict[str, Any]) -> dict[str, Any]:
    """The Config fields a `limits:` section sets (the rest of the example config unchanged)."""
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    raw["limits"] = limits
    config = parse_config(raw, source="dashboard test", env={})
    return {"budgets": config.budgets, "escalation_caps": config.escalation_caps, "limits": config.limits}


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def variable_queries() -> list[tuple[str, str]]:
    """(series, label) of every `label_values(series, label)` template variable."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable.get("definition", ""))
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode())


def exported(text: str) -> dict[str, set[str]]:
    """Series name -> its label names, from a Prometheus exposition."""
    series: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("{")
        labels = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', rest.split("}")[0])) if rest else set()
        series.setdefault(name.split(" ")[0], set()).update(labels)
    return series


def test_the_dashboard_is_grafana_json_with_panels_for_each_concern():
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "turnout-routing"
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for concern in ("Routing mix", "Cost and savings", "Latency", "Resilience", "Admission queue", "Limits"):
        assert concern in titles
    for words in ("Fallback", "hedge", "retry", "breakers", "Queue depth", "p95"):
        assert words.lower() in titles.lower(), words
    assert all(p["id"] for p in dashboard["panels"])


@pytest.mark.parametrize("latest", [False, True], ids=["v1.41", "latest"])
async def test_every_series_and_label_the_dashboard_reads_is_exported(
    simulator: Simulator, monkeypatch: pytest.MonkeyPatch, latest: bool
):
    if latest:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    other_names = V1_41 if latest else LATEST
    config = dataclasses.replace(example_config(simulator.base_url), **limits_config(LIMITS))
    sidecar = Sidecar(config, ListenOverrides(host="127.0.0.1", port=0))
    await sidecar.start()
    try:
        await inject_fault(simulator, model="gpt-4o-mini", kind="server_error", count=1)
        async with grpc.aio.insecure_channel(sidecar.address) as channel:
            stub = pb_grpc.RouterServiceStub(channel)
            await stub.Generate(generate_request("a question", tenant_id="t1", labels={"team": "a"}))
            async for _ in stub.GenerateStream(pb.GenerateStreamRequest(messages=[user("a story")])):
                pass
        host, port = sidecar.telemetry.sdk.prometheus_address or ("", 0)
        series = exported(await asyncio.to_thread(scrape, f"http://{host}:{port}/metrics"))
    finally:
        await sidecar.stop(grace_s=0)
    for name, label in variable_queries():
        assert label in series[name], (name, label)
    for expr in expressions():
        bare = re.sub(r'\{[^}]*\}|by \([^)]*\)|"[^"]*"', "", expr)  # label names are not series
        names = SERIES.findall(bare)
        for name in names:
            assert name in series or name in AFTER_EVENTS | other_names, (
                f"{name} (in {expr!r}) is not exported"
            )
            assert name not in series or name not in other_names, f"{name}: both namings exported"
        present = [name for name in names if name in series]
        assert present or set(names) <= AFTER_EVENTS, f"{expr!r} reads nothing exported"
        labels_here = set().union(*(series[name] for name in present)) | {"le"}
        labels_here |= set(re.findall(r'label_replace\(.*?,\s*"(\w+)"', expr))  # labels the query adds
        for group in re.findall(r"by \(([^)]*)\)", expr):
            for label in (g.strip() for g in group.split(",")):
                assert label in labels_here, f"{expr!r} groups by {label!r}, which no series in it carries"
        for name, selector in re.findall(r"\b((?:turnout|gen_ai)_[a-z0-9_]+)\{([^}]*)\}", expr):
            if name in series:
                for label in re.findall(r"([a-z_]+)\s*(?:=~|!=|=)", selector):
                    assert label in series[name], f"{expr!r} selects {name} on {label!r}, which it lacks"
