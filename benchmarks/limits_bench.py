"""Generate with budgets off, on in-process counters, and on Redis (loopback), side by side.

    python -m benchmarks.limits_bench [--quick]

Four sidecars on one config (compare_builds' Generate setup: two models on the provider
simulator answering in ~1 ms), started together: without budgets (the reference), with a
deployment and a tenant budget kept in this process, and with the same budgets in a
redis-server on loopback (`--save '' --appendonly no`), once as configured by default (a charge
far from the limit waits for nothing) and once with `exact_within: 1` (every charge waits for
Redis's check: what a request pays near its limit). One load generator alternates short slices
between the reference and each other (benchmarks/loadgen.py --compare): each slice's calls/s over
its two reference neighbours', median and quartiles. At concurrency 1 a call's time is 1/calls/s,
so the difference of those is what a request's budgets add to its latency (the issue's target:
at most +0.5 ms with Redis). Results: <out>/limits.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from benchmarks import loadgen
from benchmarks.compare_builds import GENERATE_REQUEST, SIMULATOR, _generate_config
from benchmarks.rpc_bench import _process
from benchmarks.workload import TELEMETRY_OFF
from tests.integration.services import ToolMissing
from tests.limits.redis_server import RedisServer, redis_binary

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (1, 16)
BUDGETS = [
    # Never reached during the run: the cost of checking and counting, not of refusing.
    {"name": "fleet", "usd": 1_000_000, "window": "day"},
    {"name": "per-tenant", "per": "tenant", "usd": 1_000_000, "window": "hour"},
]


def run(quick: bool) -> dict[str, Any]:
    try:
        binary = redis_binary()
    except ToolMissing as exc:  # `make bench` runs the rest; `make test-deps` installs it
        print(f"limits bench skipped: {exc}", flush=True)
        return {"skipped": str(exc)}
    slice_s, cycles = (0.3, 8) if quick else (0.5, 30)
    request = {**GENERATE_REQUEST, "tenantId": "bench"}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        py = sys.executable
        redis = RedisServer(binary, Path(tmp))
        redis.start()
        running.callback(redis.kill)
        sim_config = Path(tmp) / "simulator.yaml"
        sim_config.write_text(yaml.safe_dump(SIMULATOR))
        _, sim = running.enter_context(
            _process([py, "-m", "turnout_simulator", "--config", str(sim_config), "--port", "0"])
        )
        stores = {
            "off": None,
            "local": {},
            "redis": {"redis_url": redis.url},
            "redis-exact": {"redis_url": redis.url, "exact_within": 1},
        }
        addresses = {}
        for name, store in stores.items():
            raw = _generate_config(f"http://{sim}/v1", TELEMETRY_OFF)
            if store is not None:
                raw["limits"] = {"store": store, "budgets": BUDGETS}
            config = Path(tmp) / f"{name}.yaml"
            config.write_text(yaml.safe_dump(raw))
            argv = [py, "-m", "sidecar", "serve", "--config", str(config), "--port", "0"]
            _, addresses[name] = running.enter_context(_process(argv))
        request_file = Path(tmp) / "generate.json"
        request_file.write_text(json.dumps(request))
        for c in LEVELS:
            out = loadgen.compare(
                list(addresses.values()), str(request_file), c, slice_s, cycles, method="Generate"
            )
            rps = dict(zip(addresses, out["rps"], strict=True))
            for name, ratio in zip(list(addresses)[1:], out["ratios"], strict=True):
                key = f"Generate budgets {name} c{c}"
                row = {
                    "over_off": ratio["median"],
                    "quartiles": [ratio["q1"], ratio["q3"]],
                    "rps": {"off": rps["off"], name: rps[name]},
                    "errors": sum(out["errors"]),
                }
                if c == 1:  # one call at a time: its time is 1/rps
                    row["added_ms"] = round(1000 / rps[name] - 1000 / rps["off"], 3)
                results[key] = row
                added = f"  {row['added_ms']:+.3f} ms/call" if "added_ms" in row else ""
                print(
                    f"{key:28} {ratio['median']:.3f}  [{ratio['q1']:.3f}, {ratio['q3']:.3f}]{added}",
                    flush=True,
                )
    return {
        "load_average": os.getloadavg(),  # at the end: what else the machine was doing
        "method": f"loadgen --compare: slices of {slice_s} s alternating the sidecar without budgets "
        f"and each other, {cycles} of each per point; calls/s over the mean of the two neighbouring "
        "slices without budgets; median, quartiles; added_ms at concurrency 1 from the pooled calls/s",
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer, shorter slices (a noisier figure)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for limits.json")
    args = parser.parse_args()
    report = run(args.quick)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "limits.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()


def report(results: dict[str, Any]) -> list[str]:
    """The REPORT.md section."""
    title = "## Budgets: Generate with the limits store off, in process, on Redis"
    if "skipped" in results:
        return [title, "", f"Skipped: {results['skipped']}", ""]
    lines = [
        title,
        "",
        "| point | over off (median) | quartiles | added per call |",
        "|---|---:|---:|---:|",
    ]
    for key, row in results["results"].items():
        added = f"{row['added_ms']:+.3f} ms" if "added_ms" in row else ""
        q1, q3 = row["quartiles"]
        lines.append(f"| {key} | {row['over_off']:.3f} | {q1:.3f}-{q3:.3f} | {added} |")
    return [*lines, "", f"Load average at the end: {results['load_average'][0]:.2f}.", ""]
