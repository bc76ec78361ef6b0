"""What each piece of telemetry's fast path buys: Route and Generate throughput, telemetry on over off.

One sidecar per variant, all up at once: telemetry off, and telemetry on as a pod runs it by default
(10% of root requests traced to a local OTLP sink, the Prometheus endpoint, the request log to a
file) with `telemetry.fast_path` set to every piece, to none (the plain OpenTelemetry SDK), and to
every piece but one, for each piece. Each variant's calls/s over the "off" sidecar's is measured in
slices alternating within one load generator (loadgen.compare), as rpc_bench does; a piece buys
the difference between "every piece" and "every piece but it". Generate calls the provider
simulator (proxy_bench's workload: 10 ms to the first token, 16 tokens).

    .venv/bin/python -m benchmarks.telemetry_bench [--quick] [--out benchmarks/results/telemetry_fast.json]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from benchmarks import loadgen
from benchmarks.proxy_bench import _write_configs
from benchmarks.rpc_bench import _process
from benchmarks.workload import TELEMETRY_OFF, TELEMETRY_ON, config_dict, route_request_json
from sidecar.telemetry.fast import PIECES

ALL: list[str] = list(PIECES)
VARIANTS: dict[str, Any] = {
    "fast path (every piece)": True,
    "plain SDK (fast_path: false)": False,
    **{f"without {piece}": [p for p in ALL if p != piece] for piece in ALL},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_http(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def _sidecars(
    running: ExitStack, tmp: Path, label: str, base: dict[str, Any], sink: str, only: tuple[str, ...]
) -> dict[str, str]:
    """Telemetry off, then each variant on (those named in `only`, or all): name -> address."""
    out: dict[str, str] = {}
    chosen = {name: value for name, value in VARIANTS.items() if not only or name in only}
    variants: dict[str, Any] = {"off": None, **chosen}
    for i, (name, fast_path) in enumerate(variants.items()):
        raw = dict(base)
        env: dict[str, str] = {}
        log = None
        if fast_path is None:
            raw["telemetry"] = TELEMETRY_OFF
        else:
            raw["telemetry"] = {**TELEMETRY_ON, "fast_path": fast_path}
            env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{sink}", "OTEL_BSP_SCHEDULE_DELAY": "1000"}
            log = tmp / f"{label}-access-{i}.log"
        config = tmp / f"{label}-{i}.yaml"
        config.write_text(yaml.safe_dump(raw))
        argv = [sys.executable, "-m", "sidecar", "serve", "--config", str(config), "--port", "0"]
        _, out[name] = running.enter_context(_process(argv, env=env, log=log))
    return out


def _compare(
    targets: dict[str, str], request: Path, method: str, concurrency: int, slice_s: float, cycles: int
) -> dict[str, Any]:
    names = list(targets)
    got = loadgen.compare(
        list(targets.values()), str(request), concurrency, slice_s, cycles, method=method, warmup=50
    )
    return {
        "on_over_off": {
            name: {k: got["ratios"][i][k] for k in ("median", "q1", "q3")} for i, name in enumerate(names[1:])
        },
        "rps": dict(zip(names, got["rps"], strict=True)),
        "errors": sum(got["errors"]),
    }


def run(
    quick: bool,
    concurrency: int,
    methods: tuple[str, ...] = ("Route", "Generate"),
    cycles: int = 24,
    only: tuple[str, ...] = (),
) -> dict[str, Any]:
    slice_s, cycles = (0.25, 4) if quick else (0.5, cycles)
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as running:
        tmp = Path(tmp_name)
        py = sys.executable
        _, sink = running.enter_context(_process([py, "-m", "benchmarks.otlp_sink"]))
        sim_port = _free_port()
        paths = _write_configs(tmp, f"http://127.0.0.1:{sim_port}/v1")  # proxy_bench's workload
        running.enter_context(
            _process_plain(
                [
                    py,
                    "-m",
                    "sidecar",
                    "simulate",
                    "--config",
                    str(paths["simulator"]),
                    "--port",
                    str(sim_port),
                ]
            )
        )
        _wait_http(f"http://127.0.0.1:{sim_port}/healthz")

        route_base = config_dict(cache=True)
        route_base["default_route"] = "bench"
        route_request = tmp / "route.json"
        route_request.write_text(json.dumps(route_request_json()))
        generate_request = paths["generate"]
        results = {}
        if "Route" in methods:
            route = _sidecars(running, tmp, "route", route_base, sink, only)
            time.sleep(1.0)
            results["Route"] = _compare(route, route_request, "Route", concurrency, slice_s, cycles)
        if "Generate" in methods:
            generate_base = yaml.safe_load(paths["turnout"].read_text())
            generate = _sidecars(running, tmp, "generate", generate_base, sink, only)
            time.sleep(1.0)
            results["Generate"] = _compare(
                generate, generate_request, "Generate", concurrency, slice_s, cycles
            )
    for method in results.values():
        ratios = method["on_over_off"]
        every = ratios.get("fast path (every piece)", {}).get("median")
        method["piece_buys"] = {
            piece: round(every / ratios[f"without {piece}"]["median"] - 1, 3)
            for piece in ALL
            if every and f"without {piece}" in ratios
        }
    return {
        "concurrency": concurrency,
        "method": f"loadgen.compare: slices of {slice_s} s alternating the 'off' sidecar with each "
        f"variant, {cycles} of each; each slice's calls/s over its neighbouring 'off' slices', the "
        "median (quartiles beside). piece_buys: (every piece) / (every piece but it) - 1",
        "results": results,
    }


def _process_plain(argv: list[str]) -> Any:
    """A server that prints nothing on start (the simulator), stopped on exit."""
    import subprocess
    from contextlib import contextmanager

    @contextmanager
    def started() -> Any:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    return started()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cycles", type=int, default=24, help="slices of each variant")
    parser.add_argument("--methods", nargs="+", default=["Route", "Generate"], choices=["Route", "Generate"])
    parser.add_argument(
        "--only", nargs="*", default=[], choices=list(VARIANTS), help="variants (default: all)"
    )
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    result = run(args.quick, args.concurrency, tuple(args.methods), args.cycles, tuple(args.only))
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
