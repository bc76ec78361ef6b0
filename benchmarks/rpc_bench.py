"""Route over gRPC on loopback: calls per second and latency, the sidecar beside a no-op ceiling.

Load comes from ghz (`go install github.com/bojand/ghz/cmd/ghz`, built by `make bench`), limited
to one core so that the server under test has the other. Targets run alternately at each
concurrency, in one run: the echo server (same proto, canned answer: the ceiling), the sidecar
with the decision cache off, and with it on. Also the sidecar's memory, idle and after load.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from benchmarks.workload import config_dict, route_request_json

ROOT = Path(__file__).resolve().parent.parent
GHZ = ROOT / "tools" / "bin" / "ghz"
CALL = "turnout.v1.RouterService.Route"


@contextmanager
def _process(args: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
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


def _rss_mb(pid: int) -> dict[str, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {k: round(int(fields[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def _ghz(address: str, data: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            str(GHZ),
            "--insecure",
            "--call",
            CALL,
            "-D",
            str(data),
            "-c",
            str(concurrency),
            "-z",
            f"{seconds}s",
            "--cpus",
            "1",
            "-O",
            "json",
            address,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    dist = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    codes = report.get("statusCodeDistribution") or {}
    return {
        "rps": round(report["rps"], 1),
        "p50_ms": round(dist.get(50, 0.0), 3),
        "p99_ms": round(dist.get(99, 0.0), 3),
        "ok": codes.get("OK", 0),
        "errors": sum(v for k, v in codes.items() if k != "OK"),
    }


def run(quick: bool) -> dict[str, Any]:
    if not GHZ.exists():
        return {"skipped": f"{GHZ} is missing: run `make bench` (it builds ghz with go install)"}
    seconds = 2.0 if quick else 8.0
    levels = (1, 16, 64)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "route.json"
        data.write_text(json.dumps(route_request_json()))
        configs = {}
        for name, cache in (("sidecar", False), ("sidecar+cache", True)):
            configs[name] = Path(tmp) / f"{name}.yaml"
            raw = config_dict(cache=cache)
            raw["default_route"] = "bench"
            configs[name].write_text(yaml.safe_dump(raw))
        py = sys.executable
        with (
            _process([py, "-m", "benchmarks.echo_server"]) as (_, echo),
            _process([py, "-m", "sidecar", "serve", "--config", str(configs["sidecar"]), "--port", "0"]) as (
                proc,
                plain,
            ),
            _process(
                [py, "-m", "sidecar", "serve", "--config", str(configs["sidecar+cache"]), "--port", "0"]
            ) as (_, cached),
        ):
            time.sleep(1.0)
            idle = _rss_mb(proc.pid)
            targets = {"echo (ceiling)": echo, "sidecar": plain, "sidecar+cache": cached}
            results: dict[str, Any] = {name: {} for name in targets}
            for c in levels:
                for name, address in targets.items():
                    results[name][f"c{c}"] = _ghz(address, data, c, seconds)
            loaded = _rss_mb(proc.pid)
    ratios = {
        name: {
            f"c{c}": round(results[name][f"c{c}"]["rps"] / results["echo (ceiling)"][f"c{c}"]["rps"], 2)
            for c in levels
        }
        for name in ("sidecar", "sidecar+cache")
    }
    return {
        "seconds_per_point": seconds,
        "load_generator": "ghz, 1 core",
        "results": results,
        "rps_ratio_to_echo": ratios,
        "sidecar_memory_mb": {"idle": idle, "after_load": loaded},
        "cpu_count": os.cpu_count(),
    }
