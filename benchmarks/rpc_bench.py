"""Route over gRPC on loopback: calls per second and latency, the sidecar beside a no-op ceiling.

Load comes from benchmarks/loadgen.py in its own process (so that client and server each have a
core): on this machine it drives a grpc.aio server harder than ghz does. Targets run alternately at each
concurrency, in one run: the echo server (same proto, canned answer: the ceiling), the sidecar
with the decision cache off, with it on, and with it on and all telemetry on (spans exported over
OTLP/gRPC to a local sink, OTLP metrics, the Prometheus endpoint, the request log to a file) beside
the same sidecar with telemetry off; the on/off ratios are then measured in short slices
alternating within one load generator (loadgen --compare), steadier than whole rounds. Then each
strategy composition of the in-process decision-time bench as a route of one sidecar, over the
Route RPC at concurrency 1 beside the echo (what routing adds to a call). Also the sidecar's
memory, idle and after load.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from benchmarks import loadgen
from benchmarks.stats import round_ratios
from benchmarks.workload import TELEMETRY_OFF, TELEMETRY_ON, config_dict, route_request_json

ROOT = Path(__file__).resolve().parent.parent
# Telemetry off entirely, and on (below).


@contextmanager
def _process(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start a server and yield (process, address) once it announces it is listening.

    Its log (stderr: the request log among it) goes to `log` or is dropped: a pipe nobody reads
    would fill and stall the server mid-benchmark.
    """
    err = log.open("w") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT, env={**os.environ, **(env or {})}
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            match = re.search(r"listening on (\S+:\d+)", line)
            if match:
                yield proc, match.group(1)
                break
            if not line and proc.poll() is not None:
                raise RuntimeError(f"{args} exited before listening")
        else:
            raise RuntimeError(f"{args} did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
        if log is not None:
            err.close()  # type: ignore[union-attr]


def _rss_mb(pid: int) -> dict[str, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def _load(address: str, data: Path, concurrency: int, calls: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            address,
            "--request",
            str(data),
            "--concurrency",
            str(concurrency),
            "--calls",
            str(calls),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# The variants measured beside the echo ceiling: (decision cache, telemetry block, extra env).
# Telemetry variants export to the local OTLP sink; their ratio is taken against "sidecar+cache".
TRACES_ALL = {"OTEL_TRACES_SAMPLER": "always_on"}
VARIANTS: dict[str, tuple[bool, dict[str, Any], dict[str, str]]] = {
    "sidecar": (False, TELEMETRY_OFF, {}),
    "sidecar+cache": (True, TELEMETRY_OFF, {}),
    "+telemetry, all traces": (True, TELEMETRY_ON, TRACES_ALL),
    "+telemetry, default: 10% of root traces": (True, TELEMETRY_ON, {}),
    "+metrics and log, no traces": (True, {**TELEMETRY_ON, "traces": "none"}, {}),
}
TELEMETRY_VARIANTS = [name for name in VARIANTS if name.startswith("+")]


ROUNDS = 6
# Telemetry on over off: slices alternating off / on in one load generator (see loadgen.interleaved)
SLICE_S, CYCLES = 0.5, 30
QUICK_SLICE_S, QUICK_CYCLES = 0.25, 3
STRATEGY_ROUNDS = 2  # per-strategy Route at concurrency 1: rounds alternating with the echo


def strategy_routes(raw: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    """The in-process decision-time cases (benchmarks/policy_bench.py) as named routes of one
    config: label -> (route name, strategies), over the workload's 50 models."""
    rules, capability, sla, scoring = raw["routes"][0]["strategies"]
    cases: dict[str, list[Any]] = {
        "full route, uncached": [rules, capability, sla, scoring],
        "capability (baseline)": [capability],
        "rules + capability": [rules, capability],
        "capability + sla": [capability, sla],
        "capability + scoring": [capability, scoring],
        "capability + classifier (learned)": [capability, {"classifier": {"name": "learned"}}],
        "capability + classifier (length)": [capability, {"classifier": {"name": "length"}}],
    }
    return {label: (f"s{i}", strategies) for i, (label, strategies) in enumerate(cases.items())}


def _per_strategy(running: ExitStack, tmp: Path, echo: str, echo_request: Path, calls: int) -> dict[str, Any]:
    """Each strategy composition over the Route RPC at concurrency 1, beside the echo ceiling (sent
    `echo_request`, the same request without a route): the RPC's p50 and p99, and its p50 over the
    echo's (what the sidecar's routing adds to a call)."""
    raw = config_dict(cache=False)
    routes = strategy_routes(raw)
    models = raw["routes"][0]["models"]
    raw["routes"] = [{"name": name, "models": models, "strategies": st} for name, st in routes.values()]
    raw["default_route"] = routes["full route, uncached"][0]
    raw["telemetry"] = TELEMETRY_OFF
    config = tmp / "sidecar-strategies.yaml"
    config.write_text(yaml.safe_dump(raw))
    argv = [sys.executable, "-m", "sidecar", "serve", "--config", str(config), "--port", "0"]
    _, address = running.enter_context(_process(argv))
    targets = {"echo (ceiling)": (echo, echo_request)}
    for label, (name, _) in routes.items():
        request = route_request_json()
        request["hints"] = {**request["hints"], "route": name}
        data = tmp / f"route-{name}.json"
        data.write_text(json.dumps(request))
        targets[label] = (address, data)
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in targets}
    order = list(targets.items())
    for i in range(STRATEGY_ROUNDS):
        for label, (target, data) in order if i % 2 == 0 else order[::-1]:
            runs[label].append(_load(target, data, 1, calls))
    echo_p50 = statistics.median(r["p50_ms"] for r in runs["echo (ceiling)"])
    out: dict[str, Any] = {}
    for label, rounds in runs.items():
        p50 = statistics.median(r["p50_ms"] for r in rounds)
        out[label] = {
            "p50_ms": round(p50, 3),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 3),
            "errors": sum(r["errors"] for r in rounds),
            "p50_over_echo_us": None if label == "echo (ceiling)" else round(1000 * (p50 - echo_p50), 1),
        }
    return out


def _median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median calls/s (its latencies with it), and the spread of calls/s."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    middle = dict(ordered[len(ordered) // 2])
    middle["rounds"] = len(runs)
    middle["rps_rounds"] = [r["rps"] for r in runs]  # in the order run
    middle["rps_range"] = [ordered[0]["rps"], ordered[-1]["rps"]]
    middle["errors"] = sum(r["errors"] for r in runs)
    return middle


def _paired_ratio(on: dict[str, Any], off: dict[str, Any]) -> float:
    return round(statistics.median(round_ratios(on["rps_rounds"], off["rps_rounds"])), 3)


def _interleaved(
    targets: dict[str, str], data: Path, concurrency: int, slice_s: float, cycles: int
) -> dict[str, Any]:
    """One load generator alternating short slices between the first target and each other
    (loadgen.compare): each other target's slices' calls/s over the first's."""
    names = list(targets)
    out = loadgen.compare(list(targets.values()), str(data), concurrency, slice_s, cycles)
    return {
        "rps": dict(zip(names, out["rps"], strict=True)),
        "errors": sum(out["errors"]),
        "ratios": dict(zip(names[1:], out["ratios"], strict=True)),
    }


def run(quick: bool) -> dict[str, Any]:
    calls = 1_000 if quick else 10_000
    strategy_calls = 300 if quick else 1_500  # per round of the per-strategy Route at concurrency 1
    slice_s, cycles = (QUICK_SLICE_S, QUICK_CYCLES) if quick else (SLICE_S, CYCLES)
    levels = (1, 16, 64)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        data = Path(tmp) / "route.json"
        data.write_text(json.dumps(route_request_json()))
        py = sys.executable
        stats = Path(tmp) / "sink.json"
        _, echo = running.enter_context(_process([py, "-m", "benchmarks.echo_server"]))
        _, sink = running.enter_context(_process([py, "-m", "benchmarks.otlp_sink", "--stats", str(stats)]))
        targets = {"echo (ceiling)": echo}
        logs: dict[str, Path] = {}
        first = None
        for i, (name, (cache, telemetry, env)) in enumerate(VARIANTS.items()):
            config = Path(tmp) / f"sidecar-{i}.yaml"
            raw = config_dict(cache=cache)
            raw["default_route"] = "bench"
            raw["telemetry"] = telemetry
            config.write_text(yaml.safe_dump(raw))
            if telemetry is not TELEMETRY_OFF:
                env = {
                    **env,
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{sink}",
                    "OTEL_BSP_SCHEDULE_DELAY": "1000",
                }
                logs[name] = Path(tmp) / f"access-{i}.log"
            argv = [py, "-m", "sidecar", "serve", "--config", str(config), "--port", "0"]
            proc, targets[name] = running.enter_context(_process(argv, env=env, log=logs.get(name)))
            first = first or proc
        assert first is not None
        time.sleep(1.0)
        idle = _rss_mb(first.pid)
        results: dict[str, Any] = {name: {} for name in targets}
        interleaved: dict[str, Any] = {}
        # Rounds, alternating the targets within each: the machine's drift (other processes, CPU
        # frequency) then lands on every target alike, and the median round is reported.
        for c in levels:
            per_round = max(100, (calls if c > 1 else calls // 2) // ROUNDS)
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
            order = list(targets.items())
            for i in range(ROUNDS):
                # forward, then backward: a steady drift cancels out of the ratios over an even count
                for name, address in order if i % 2 == 0 else order[::-1]:
                    rounds[name].append(_load(address, data, c, per_round))
            for name, runs in rounds.items():
                results[name][f"c{c}"] = _median_round(runs)
            compared = {name: targets[name] for name in ("sidecar+cache", *TELEMETRY_VARIANTS)}
            interleaved[f"c{c}"] = _interleaved(compared, data, c, slice_s, cycles)
        loaded = _rss_mb(first.pid)
        per_strategy = _per_strategy(running, Path(tmp), echo, data, strategy_calls)
        running.close()  # stops the sidecars (flushing their spans), then the sink, which writes its stats
        exported = json.loads(stats.read_text()) if stats.exists() else {}
        logged = {name: sum(1 for _ in path.open()) for name, path in logs.items() if path.exists()}
    ratios = {
        name: {
            f"c{c}": round(results[name][f"c{c}"]["rps"] / results["echo (ceiling)"][f"c{c}"]["rps"], 2)
            for c in levels
        }
        for name in VARIANTS
    }
    # Telemetry on over off: the median of the interleaved slices' ratios (the figure judged), and
    # for comparison the median of the rounds' ratios, each round's "on" against the same round's "off".
    on_over_off = {
        name: {f"c{c}": interleaved[f"c{c}"]["ratios"][name]["median"] for c in levels}
        for name in TELEMETRY_VARIANTS
    }
    quartiles = {
        name: {f"c{c}": [interleaved[f"c{c}"]["ratios"][name][q] for q in ("q1", "q3")] for c in levels}
        for name in TELEMETRY_VARIANTS
    }
    by_rounds = {
        name: {
            f"c{c}": _paired_ratio(results[name][f"c{c}"], results["sidecar+cache"][f"c{c}"]) for c in levels
        }
        for name in TELEMETRY_VARIANTS
    }
    return {
        "calls_per_point": calls,
        "load_generator": f"benchmarks/loadgen.py (grpc.aio, closed loop, its own process); {ROUNDS} "
        "rounds per point, alternating the targets forward then backward; the median round reported",
        "results": results,
        "rps_ratio_to_echo": ratios,
        "telemetry": {
            "rps_on_over_off": on_over_off,
            "quartiles": quartiles,
            "by_rounds": by_rounds,
            "method": f"one load generator alternating slices of {slice_s} s between sidecar+cache and "
            f"each variant, {cycles} slices of each per concurrency; each slice's calls/s over the mean "
            "of its two neighbouring sidecar+cache slices; the median (quartiles beside)",
            "interleaved": interleaved,
            "trace_exports": exported.get("traces_exports", 0),
            "trace_export_mb": round(exported.get("traces_bytes", 0) / 1e6, 2),
            "request_log_lines": logged,
            "on": "per Route: 2 spans (server + routing) over OTLP/gRPC to a local sink, metrics on "
            "the Prometheus endpoint, a JSON request log line to a file",
        },
        "per_strategy_c1": per_strategy,
        "per_strategy_calls": strategy_calls * STRATEGY_ROUNDS,
        "sidecar_memory_mb": {"idle": idle, "after_load": loaded},
        "cpu_count": os.cpu_count(),
    }
