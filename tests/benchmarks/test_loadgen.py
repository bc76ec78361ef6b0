"""The load generators and the proxy bench's pieces that need no LiteLLM, on loopback, in a few seconds."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from turnout_simulator import ModelProfile, SimulatorConfig, start_simulator
from turnout_simulator.server import Simulator

from benchmarks import proxy_bench
from benchmarks.loadgen import Samples, closed_loop, interleaved, open_loop, percentile, pool, run_grpc
from benchmarks.loadgen_http import first_content, run_http
from sidecar.app import Sidecar

BODY = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}


def shape(**kw: Any) -> argparse.Namespace:
    return argparse.Namespace(
        **(
            {"concurrency": 1, "calls": 20, "rate": None, "warmup": 2, "duration": None, "raw": False}
            | {"compare": [], "slice": 0.05, "cycles": 2}
            | kw
        )
    )


@pytest.fixture
async def fixed_simulator() -> AsyncIterator[Simulator]:
    """A simulator that takes a fixed 5 ms to the first token, without jitter or tail."""
    profile = ModelProfile(ttft_ms=5, tokens_per_second=4000, jitter=0, tail_probability=0)
    sim = await start_simulator(SimulatorConfig(seed=1, default_profile=profile))
    yield sim
    await sim.close()


# --- percentiles and summaries ----------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(i) for i in range(1, 101)]  # 1..100
    assert percentile(ordered, 0.50) == 50
    assert percentile(ordered, 0.95) == 95
    assert percentile(ordered, 0.99) == 99
    assert percentile(ordered, 1.0) == 100
    assert percentile(ordered, 0.001) == 1
    assert percentile([7.0], 0.99) == 7
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2  # at least half the samples at or below
    assert math.isnan(percentile([], 0.5))


def test_summary_in_milliseconds_with_ttft_only_for_streams() -> None:
    samples = Samples(latencies=[0.003, 0.001, 0.002, 0.004], errors=1, first_error="RuntimeError: x")
    out = samples.summary(elapsed_s=2.0)
    assert out["rps"] == 2.0  # successes per second
    assert (out["p50_ms"], out["p99_ms"], out["max_ms"]) == (2.0, 4.0, 4.0)
    assert (out["calls"], out["errors"], out["first_error"]) == (5, 1, "RuntimeError: x")
    assert "ttft_p50_ms" not in out
    assert "send_lag_p99_ms" not in out
    samples.ttfts = [0.0005, 0.0015]
    assert samples.summary(1.0)["ttft_p50_ms"] == 0.5


def test_rounds_pool_their_samples() -> None:
    first = Samples(latencies=[0.001] * 9, ttfts=[0.0005] * 9).summary(1.0, raw=True)
    second = Samples(latencies=[0.010] * 9 + [0.1], errors=1, first_error="E: x").summary(3.0, raw=True)
    out = pool(
        [{"mode": "closed", "concurrency": 2, **first}, {"mode": "closed", "concurrency": 2, **second}]
    )
    assert (out["mode"], out["concurrency"], out["rounds"]) == ("closed", 2, 2)
    assert (out["calls"], out["errors"], out["first_error"]) == (20, 1, "E: x")
    assert out["rps"] == 4.8  # 19 answers in 4 s
    assert out["rps_range"] == [3.3, 9.0]
    assert (out["p50_ms"], out["p95_ms"], out["max_ms"]) == (10.0, 100.0, 100.0)  # the 10th and 19th of 19
    assert out["ttft_p50_ms"] == 0.5
    assert "latencies_s" not in out


async def test_closed_loop_counts_calls_and_failures() -> None:
    made = 0

    async def call() -> float | None:
        nonlocal made
        made += 1
        n = made
        await asyncio.sleep(0)
        if n % 5 == 0:
            raise RuntimeError("every fifth call fails")
        return None

    out = await closed_loop(call, concurrency=4, calls=40)
    assert made == 40
    assert (out["calls"], out["errors"], out["concurrency"]) == (40, 8, 4)
    assert out["first_error"] == "RuntimeError: every fifth call fails"


async def test_interleaving_brackets_each_slice_with_the_references_around_it() -> None:
    """The reference runs before and after every slice of the others, and a slice's ratio is over
    the mean of those two: a machine that slows down midway does not count against a target."""
    order: list[str] = []
    clock = {"slow": 1.0}

    def target(name: str, cost_s: float) -> Any:
        async def call() -> float | None:
            order.append(name)
            await asyncio.sleep(cost_s * clock["slow"])
            if name == "half" and len(order) > 400:
                clock["slow"] = 2.0  # the machine slows down for everyone from here on
            return None

        return call

    out = await interleaved([target("ref", 0.002), target("same", 0.002), target("half", 0.004)], 1, 0.05, 4)
    runs = [name for i, name in enumerate(order) if i == 0 or order[i - 1] != name]
    assert runs == ["ref", "same", "ref", "half"] * 4 + ["ref"]
    same, half = out["ratios"]
    assert same["slices"] == half["slices"] == 4
    assert 0.8 < same["median"] < 1.2, out  # as fast as the reference, before and after the slow-down
    assert 0.4 < half["median"] < 0.6, out  # half as fast, whatever the machine did
    assert same["q1"] <= same["median"] <= same["q3"]
    assert out["errors"] == [0, 0, 0]
    assert out["rps"][0] > 0


async def test_open_loop_holds_its_rate_whatever_the_answers_take() -> None:
    async def slow() -> float | None:  # slower than the interval: a closed loop of 1 would fall behind
        await asyncio.sleep(0.05)
        return None

    out = await open_loop(slow, rate=200, calls=40)
    assert (out["calls"], out["errors"], out["dropped"]) == (40, 0, 0)
    assert 150 <= out["sent_rate"] <= 210
    assert out["p50_ms"] >= 50
    assert out["send_lag_p99_ms"] < 50


# --- the HTTP load generator against the simulator -----------------------------------------------------


def test_first_content_skips_the_role_chunk_and_done() -> None:
    role = {"choices": [{"delta": {"role": "assistant", "content": ""}}]}
    token = {"choices": [{"delta": {"content": "Hi"}}]}
    usage = {"choices": [], "usage": {"completion_tokens": 1}}
    assert not first_content(b"data: " + json.dumps(role).encode())
    assert first_content(b"data: " + json.dumps(token).encode())
    assert not first_content(b"data: " + json.dumps(usage).encode())
    assert not first_content(b"data: [DONE]")
    assert not first_content(b"\n")


async def test_http_unary_and_stream_against_the_simulator(fixed_simulator: Simulator) -> None:
    unary = await run_http(fixed_simulator.base_url, BODY, False, shape(concurrency=4, calls=40))
    assert (unary["calls"], unary["errors"]) == (40, 0), unary
    assert 5 <= unary["p50_ms"] <= unary["p95_ms"] <= unary["p99_ms"] < 1000
    assert unary["rps"] > 0
    streamed = await run_http(fixed_simulator.base_url, BODY, True, shape(calls=10))
    assert (streamed["calls"], streamed["errors"]) == (10, 0), streamed
    assert 5 <= streamed["ttft_p50_ms"] <= streamed["p50_ms"]


async def test_http_open_loop_and_failures_are_counted(fixed_simulator: Simulator) -> None:
    out = await run_http(fixed_simulator.base_url, BODY, False, shape(rate=100, duration=0.2, warmup=0))
    assert (out["mode"], out["calls"], out["errors"]) == ("open", 20, 0)
    fault = {"model": "m", "kind": "server_error", "count": 3}
    url = f"{fixed_simulator.root_url}/_sim/faults"
    await asyncio.to_thread(_post, url, fault)
    failed = await run_http(fixed_simulator.base_url, BODY, False, shape(calls=5, warmup=0))
    assert (failed["calls"], failed["errors"]) == (5, 3)
    assert failed["first_error"].startswith("RuntimeError: HTTP 500")


def _post(url: str, body: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).close()


async def test_http_bearer_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    profile = ModelProfile(ttft_ms=1, tokens_per_second=10_000, jitter=0, tail_probability=0)
    sim = await start_simulator(SimulatorConfig(api_key="sk-test", time_scale=0, default_profile=profile))
    try:
        monkeypatch.delenv("LOADGEN_API_KEY", raising=False)
        refused = await run_http(sim.base_url, BODY, False, shape(calls=2, warmup=0))
        assert refused["errors"] == 2
        assert "HTTP 401" in refused["first_error"]
        assert "sk-test" not in refused["first_error"]
        monkeypatch.setenv("LOADGEN_API_KEY", "sk-test")
        accepted = await run_http(sim.base_url, BODY, False, shape(calls=2, warmup=0))
        assert accepted["errors"] == 0
    finally:
        await sim.close()


# --- the gRPC load generator against the sidecar --------------------------------------------------------


async def test_grpc_generate_and_stream_against_the_sidecar(sidecar: Sidecar) -> None:
    request = json.dumps({"messages": [{"role": "ROLE_USER", "content": [{"text": "hello"}]}]})
    unary = await run_grpc(sidecar.address, "Generate", request, shape(concurrency=2, calls=6))
    assert (unary["calls"], unary["errors"]) == (6, 0), unary
    streamed = await run_grpc(sidecar.address, "GenerateStream", request, shape(calls=3))
    assert (streamed["calls"], streamed["errors"]) == (3, 0), streamed
    assert 0 < streamed["ttft_p50_ms"] <= streamed["p50_ms"]


async def test_grpc_interleaves_targets_for_a_ratio(sidecar: Sidecar) -> None:
    request = json.dumps({"messages": [{"role": "ROLE_USER", "content": [{"text": "hello"}]}]})
    args = shape(concurrency=2, compare=[sidecar.address], slice=0.05, cycles=3)
    out = await run_grpc(sidecar.address, "Route", request, args)
    assert out["mode"] == "interleaved"
    assert out["errors"] == [0, 0], out
    [ratio] = out["ratios"]
    assert ratio["slices"] == 3
    assert ratio["median"] > 0  # the same sidecar on both sides: near 1, but not asserted (timing)


# --- the proxy bench's pieces ---------------------------------------------------------------------------


def test_process_tree_cpu_and_memory_of_this_process() -> None:
    pids = proxy_bench._tree(os.getpid())
    assert pids[0] == os.getpid()
    assert proxy_bench._cpu_s(pids) > 0
    memory = proxy_bench._memory_mb(pids)
    assert 0 < memory["rss"] <= memory["peak"]


def test_added_latency_is_against_the_baseline() -> None:
    added = proxy_bench._added(
        {"p50_ms": 3.5, "p95_ms": 5, "p99_ms": 9}, {"p50_ms": 3, "p95_ms": 4, "p99_ms": 6}
    )
    assert added == {"added_p50_ms": 0.5, "added_p95_ms": 1, "added_p99_ms": 3}


def test_report_renders_a_run_without_litellm() -> None:
    point = {"rps": 40.0, "p50_ms": 21.0, "p95_ms": 22.0, "p99_ms": 23.0, "calls": 80, "errors": 0}
    closed = {
        "direct": {"c1": dict(point)},
        "turnout": {"c1": dict(point, p50_ms=21.5, added_p50_ms=0.5, added_p99_ms=0.7)},
    }
    results = {
        "seconds_per_point": 1.0,
        "rounds_per_point": 1,
        "warmup_calls_per_round": 5,
        "load_generator": "loadgen",
        "workload": {
            "simulator_profile": proxy_bench.PROFILE,
            "output_tokens": 16,
            "telemetry": "off on both proxies",
        },
        "litellm": {"version": proxy_bench.LITELLM_VERSION, "skipped": "skipped: TURNOUT_BENCH_LITELLM=skip"},
        "levels": ["c1"],
        "rates": ["r500"],
        "closed": closed,
        "open": {"direct": {"r500": dict(point)}, "turnout": {"r500": {"skipped": "over capacity"}}},
        "best_rps": {"direct": 40.0, "turnout": 40.0},
        "processes": {
            "turnout": {"workers": 1, "idle_rss_mb": 75.0, "peak_rss_mb": 80.0, "cpu_ms_per_request": 1.0}
        },
        "fallback_check": {"turnout": "answered"},
    }
    results["comparison"] = proxy_bench._compare(results)
    text = "\n".join(proxy_bench.report(results))
    assert "| Turnout Generate (gRPC) | 1 | 40 | 21.5 |" in text
    assert "+0.50" in text
    assert "over capacity" in text
    assert "TURNOUT_BENCH_LITELLM=skip" in text
    assert "Turnout idle RSS 75.0 MB (goal <= 100): met." in text
    assert "Added latency at 500 req/s: not measured, Turnout over capacity (goal p50 <= 1 ms" in text


def test_telemetry_on_is_compared_with_the_same_sidecar_off() -> None:
    def proc(cpu: float) -> dict[str, float]:
        return {"workers": 1, "idle_rss_mb": 75.0, "peak_rss_mb": 80.0, "cpu_ms_per_request": cpu}

    def point(rps: float, cpu_s: float, requests: int, rounds: list[float] | None = None) -> dict[str, Any]:
        x: dict[str, Any] = {"rps": rps, "cpu_s": cpu_s, "requests": requests}
        x["cpu_ms_per_request"] = 1000 * cpu_s / requests
        return x | ({"rps_rounds": rounds} if rounds else {})

    results = {
        "closed": {
            "turnout": {"c1": point(40.0, 0.8, 400), "c16": point(700.0, 8.4, 7000, [690.0, 710.0])},
            "turnout telemetry": {
                "c1": point(39.6, 0.88, 400),
                "c16": point(525.0, 8.0, 5000, [517.5, 532.5]),
            },
        },
        "open": {},
        "best_rps": {"turnout": 700.0, "turnout telemetry": 525.0},
        "processes": {"turnout": proc(1.6), "turnout telemetry": proc(2.4)},
    }
    telemetry = proxy_bench._compare(results)["telemetry_on_over_off"]
    assert telemetry["rps"] == {"c1": 0.99, "c16": 0.75}
    # over the closed-loop points both ran, not the processes' totals (2.4 vs 1.6 here)
    assert telemetry["cpu_ms_per_request"] == {"on": 1.644, "off": 1.243}
    assert telemetry["met"] is False  # 0.75 < 0.9 at concurrency 16
    assert telemetry["rps_by_round"] == {"c16": [0.75, 0.75]}  # each round against its own "off"
    assert telemetry["rps_by_rounds"] is None  # no slices: the rounds are the figure

    # With the interleaved slices measured, their medians are judged and the rounds' kept beside.
    results["telemetry_slices"] = {
        level: {"turnout telemetry": {"median": m, "q1": m - 0.02, "q3": m + 0.02, "slices": 20}}
        for level, m in (("c1", 0.98), ("c16", 0.93))
    }
    sliced = proxy_bench._compare(results)["telemetry_on_over_off"]
    assert sliced["rps"] == {"c1": 0.98, "c16": 0.93}
    assert sliced["rps_by_rounds"] == {"c1": 0.99, "c16": 0.75}
    assert sliced["quartiles"]["c16"] == pytest.approx([0.91, 0.95])
    assert sliced["met"] is True


def test_route_telemetry_ratio_pairs_each_round_with_the_same_rounds_off() -> None:
    from benchmarks.rpc_bench import _paired_ratio

    off = {"rps_rounds": [1000.0, 500.0, 1000.0]}  # the machine slowed down in round 2
    on = {"rps_rounds": [950.0, 480.0, 930.0]}
    assert _paired_ratio(on, off) == 0.95  # median of 0.95, 0.96, 0.93
