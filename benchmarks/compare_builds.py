"""This tree against an earlier commit, side by side in one run: Route and Generate calls/s.

For a change that must not change speed (a refactor), the figure that counts is new over old on
the same machine at the same moment, not two absolute figures taken hours apart. So:

    python -m benchmarks.compare_builds --base 6e730fa [--quick]

exports the base commit's tree (`git archive`, no checkout of this one is touched) into
${TURNOUT_BENCH_CACHE:-~/.cache/turnout-bench}/base-<sha>, gives it a venv of its own (once; pip's
cache makes it quick), and starts, at once, a sidecar from each tree with the same config. One
load generator (benchmarks/loadgen.py --compare, its own process) then alternates short slices
between the two, the base first: each slice of this tree's calls/s over the mean of its two
neighbouring slices of the base's, the median over the slices with its quartiles. A ratio of 1.0
is no change; the quartiles show the noise.

    Route     the benchmark workload's 50 models and one rules > capability > SLA > scoring route,
              decision cache on (as benchmarks/rpc_bench.py's headline)
    Generate  two models on the provider simulator answering in ~1 ms (16 tokens), so
              that the sidecar's own work is what is measured

each with telemetry off and on (spans over OTLP to a local sink, Prometheus, the request log), at
concurrency 1 and 16. Results: <out>/compare-builds.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

from benchmarks import loadgen
from benchmarks.rpc_bench import _process
from benchmarks.workload import TELEMETRY_OFF, TELEMETRY_ON, config_dict, route_request_json

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("TURNOUT_BENCH_CACHE", Path.home() / ".cache" / "turnout-bench"))
SIMULATOR = {
    "seed": 1,
    "time_scale": 1.0,
    "default_profile": {"ttft_ms": 1, "tokens_per_second": 1_000_000, "jitter": 0.0},
}
GENERATE_MODELS = ("bench-a", "bench-b")
GENERATE_REQUEST = {
    "messages": [{"role": "ROLE_USER", "content": [{"text": "Summarise the change log in one line."}]}],
    "params": {"maxOutputTokens": 16},
}
LEVELS = (1, 16)


def base_tree(rev: str) -> tuple[str, Path]:
    """(sha, a python with the commit's sidecar installed), made once per commit."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree = CACHE / f"base-{sha[:12]}"
    python = tree / ".venv" / "bin" / "python"
    stamp = tree / ".venv" / ".installed"
    if stamp.exists():
        return sha, python
    tree.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "venv", str(tree / ".venv")], check=True)
    packages = ["-e", str(tree)]
    if (tree / "simulator" / "pyproject.toml").exists():
        packages = ["-e", str(tree / "simulator"), *packages]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *packages], check=True)
    stamp.touch()
    return sha, python


def _generate_config(sim_url: str, telemetry: dict[str, Any]) -> dict[str, Any]:
    model = {
        "provider": "simulator",
        "price": {"input": 0.15, "output": 0.60},
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "capabilities": ["streaming"],
        "quality": 0.7,
        "typical_latency_s": 0.02,
    }
    return {
        "server": {"host": "127.0.0.1", "port": 0, "reload_interval_s": 0},
        "providers": [{"name": "simulator", "kind": "openai", "base_url": sim_url}],
        "models": [{"name": m, **model} for m in GENERATE_MODELS],
        "routes": [{"name": "bench", "models": list(GENERATE_MODELS), "execution": {"max_retries": 0}}],
        "telemetry": telemetry,
    }


def _route_config(telemetry: dict[str, Any]) -> dict[str, Any]:
    raw = config_dict(cache=True)
    raw["default_route"] = "bench"
    raw["server"] = {"reload_interval_s": 0}
    raw["telemetry"] = telemetry
    return raw


@contextmanager
def _sidecars(pythons: dict[str, Path], config: Path, env: dict[str, str]) -> Iterator[dict[str, str]]:
    """Each tree's sidecar on `config`, started together; their addresses by tree name."""
    addresses = {}
    with ExitStack() as these:
        for name, python in pythons.items():
            argv = [str(python), "-m", "sidecar", "serve", "--config", str(config), "--port", "0"]
            log = config.with_suffix(f".{name}.log") if env else None
            _, addresses[name] = these.enter_context(_process(argv, env=env, log=log))
        yield addresses


def run(base: str, quick: bool) -> dict[str, Any]:
    sha, base_python = base_tree(base)
    pythons = {"base": base_python, "this": Path(sys.executable)}
    slice_s, cycles = (0.3, 10) if quick else (0.5, 30)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as running:
        py = sys.executable
        sim_config = Path(tmp) / "simulator.yaml"
        sim_config.write_text(yaml.safe_dump(SIMULATOR))
        _, sim = running.enter_context(
            _process([py, "-m", "turnout_simulator", "--config", str(sim_config), "--port", "0"])
        )
        _, sink = running.enter_context(_process([py, "-m", "benchmarks.otlp_sink"]))
        route_request = Path(tmp) / "route.json"
        route_request.write_text(json.dumps(route_request_json()))
        generate_request = Path(tmp) / "generate.json"
        generate_request.write_text(json.dumps(GENERATE_REQUEST))
        for telemetry_name, telemetry in (("off", TELEMETRY_OFF), ("on", TELEMETRY_ON)):
            env = {}
            if telemetry is TELEMETRY_ON:
                env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{sink}", "OTEL_BSP_SCHEDULE_DELAY": "1000"}
            for method, raw, request in (
                ("Route", _route_config(telemetry), route_request),
                ("Generate", _generate_config(f"http://{sim}/v1", telemetry), generate_request),
            ):
                config = Path(tmp) / f"{method}-{telemetry_name}.yaml"
                config.write_text(yaml.safe_dump(raw))
                with _sidecars(pythons, config, env) as addresses:
                    for c in LEVELS:
                        out = loadgen.compare(
                            [addresses["base"], addresses["this"]],
                            str(request),
                            c,
                            slice_s,
                            cycles,
                            method=method,
                        )
                        ratio = out["ratios"][0]
                        key = f"{method} telemetry {telemetry_name} c{c}"
                        results[key] = {
                            "this_over_base": ratio["median"],
                            "quartiles": [ratio["q1"], ratio["q3"]],
                            "rps": dict(zip(("base", "this"), out["rps"], strict=True)),
                            "errors": sum(out["errors"]),
                        }
                        print(
                            f"{key:32} {ratio['median']:.3f}  [{ratio['q1']:.3f}, {ratio['q3']:.3f}]",
                            flush=True,
                        )
    return {
        "base": sha,
        "this": _head(),
        "method": f"loadgen --compare: slices of {slice_s} s alternating base and this tree, {cycles} "
        "of each per point; this tree's slice calls/s over the mean of its two base neighbours; "
        "median, quartiles",
        "results": results,
    }


def _head() -> str:
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    return sha + (" (with uncommitted changes)" if dirty.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", required=True, help="the commit to compare with (any git revision)")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter slices (a noisier figure)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for compare-builds.json")
    args = parser.parse_args()
    report = run(args.base, args.quick)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare-builds.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
