"""The proxy bench's HTTP comparison: Portkey's routing config, and the verdicts each rival gets."""

from __future__ import annotations

import json
from typing import Any

from benchmarks import proxy_bench


def _point(rps: float, added_p50: float, added_p99: float) -> dict[str, Any]:
    return {"c1": {"rps": rps, "added_p50_ms": added_p50, "added_p99_ms": added_p99}}


def test_portkey_gets_both_models_as_a_fallback_chain_on_the_simulator() -> None:
    config = json.loads(proxy_bench.portkey_config("http://127.0.0.1:9/v1"))
    assert config["strategy"] == {"mode": "fallback"}
    assert [t["override_params"]["model"] for t in config["targets"]] == list(proxy_bench.MODELS)
    assert {t["custom_host"] for t in config["targets"]} == {"http://127.0.0.1:9/v1"}


def test_the_goals_are_judged_against_litellm_and_portkey_is_only_reported() -> None:
    closed = {
        "turnout http": _point(300, 0.5, 1.0),
        "litellm 1w": _point(20, 10.0, 20.0),
        "portkey": _point(100, 2.0, 4.0),
    }
    best = {name: points["c1"]["rps"] for name, points in closed.items()}
    litellm = proxy_bench._versus(closed, best, "turnout http", "litellm 1w")
    assert litellm == {"throughput": 15.0, "added_p50_c1": 0.05, "added_p99_c1": 0.05, "met": True}
    portkey = proxy_bench._versus(closed, best, "turnout http", "portkey")
    assert portkey == {"throughput": 3.0, "added_p50_c1": 0.25, "added_p99_c1": 0.25}


def test_the_floor_bench_puts_turnout_between_the_pass_through_proxy_and_litellm() -> None:
    from benchmarks import http_floor

    def at(p50: float, p99: float) -> dict[str, Any]:
        return {"p50_ms": p50, "p99_ms": p99}

    pooled = {
        "direct": at(20.0, 21.0),
        "passthrough": at(20.8, 22.0),
        "turnout http": at(21.2, 23.0),
        "litellm 1w": at(32.0, 41.0),
    }
    out = http_floor._summary(pooled, rounds=2, calls=10, skipped="")
    assert out["added_ms"]["turnout http"] == {"p50": 1.2, "p99": 2.0}
    assert out["turnout_above_floor_ms"] == {"p50": 0.4, "p99": 1.0}
    assert out["turnout_over_litellm"] == {"p50": 0.1, "p99": 0.1}
    assert out["floor_over_litellm"] == {"p50": 0.067, "p99": 0.05}
    del pooled["litellm 1w"]
    assert http_floor._summary(pooled, 2, 10, "skipped: no venv")["litellm"] == "skipped: no venv"
    text = "\n".join(
        http_floor.report(http_floor._summary({**pooled, "litellm 1w": at(32.0, 41.0)}, 2, 10, ""))
    )
    assert "| turnout http | +1.200 | +2.000 |" in text
    assert "Turnout over LiteLLM: 0.100 at p50" in text
