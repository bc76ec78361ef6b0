"""Route over gRPC on loopback: calls per second and latency, the sidecar beside a no-op ceiling.

Load comes from benchmarks/loadgen.py in its own process (so that client and server each have a
core): on this machine it drives a grpc.aio server harder than ghz does. Targets run alternately at each
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


def run(quick: bool) -> dict[str, Any]:
    calls = 1_000 if quick else 10_000
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
                    results[name][f"c{c}"] = _load(address, data, c, calls if c > 1 else calls // 2)
            loaded = _rss_mb(proc.pid)
    ratios = {
        name: {
            f"c{c}": round(results[name][f"c{c}"]["rps"] / results["echo (ceiling)"][f"c{c}"]["rps"], 2)
            for c in levels
        }
        for name in ("sidecar", "sidecar+cache")
    }
    return {
        "calls_per_point": calls,
        "load_generator": "benchmarks/loadgen.py (grpc.aio, closed loop, its own process)",
        "results": results,
        "rps_ratio_to_echo": ratios,
        "sidecar_memory_mb": {"idle": idle, "after_load": loaded},
        "cpu_count": os.cpu_count(),
    }
