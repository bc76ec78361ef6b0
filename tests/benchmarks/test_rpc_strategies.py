"""The per-strategy Route RPC bench: its routes are the in-process bench's cases, in a config that loads."""

from __future__ import annotations

from benchmarks.rpc_bench import strategy_routes
from benchmarks.workload import config_dict
from sidecar.config import parse_config


def test_each_in_process_case_is_a_route_of_one_valid_config() -> None:
    raw = config_dict()
    routes = strategy_routes(raw)
    models = raw["routes"][0]["models"]
    raw["routes"] = [{"name": name, "models": models, "strategies": st} for name, st in routes.values()]
    raw["default_route"] = routes["full route, uncached"][0]
    config = parse_config(raw, source="test", env={})
    assert set(config.routes) == {name for name, _ in routes.values()}
    # the labels join the in-process table's rows (benchmarks/policy_bench.py)
    assert set(routes) == {
        "full route, uncached",
        "capability (baseline)",
        "rules + capability",
        "capability + sla",
        "capability + scoring",
        "capability + classifier (learned)",
        "capability + classifier (length)",
    }
    kinds = {
        label: [type(s).__name__ for s in config.routes[name].strategies]
        for label, (name, _) in routes.items()
    }
    assert kinds["capability + classifier (learned)"] == ["CapabilitySpec", "ClassifierSpec"]
    assert kinds["full route, uncached"] == ["RulesSpec", "CapabilitySpec", "SlaSpec", "ScoringSpec"]
