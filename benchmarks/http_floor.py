"""Added latency at concurrency 1 against its floor: direct, a pass-through proxy, Turnout, LiteLLM.

The issue's latency target is Turnout's HTTP front door at <= 1/10 of LiteLLM's added latency at
concurrency 1 (benchmarks/proxy_bench.py measures it among everything else). This bench puts the
figure beside its floor, in one run:

    direct        the simulator's /v1/chat/completions (the baseline)
    passthrough   benchmarks/passthrough_proxy.py: read, POST upstream on a pooled aiohttp session,
                  answer; what any Python HTTP proxy pays here (two more loopback sends, its wake-ups)
    turnout http  `turnout serve --http-port`, the proxy bench's config (two models, a fallback)
    litellm 1w    the LiteLLM proxy, one worker, the proxy bench's config (when its venv is there)

Sequential calls (concurrency 1) in rounds; each round visits every target, forward then backward,
so that the machine's drift lands on each alike; percentiles over the pooled rounds. The simulator
uses the proxy bench's profile (10 ms to the first token, 16 tokens at 2,000 tokens/s), which also
matters: after 20 ms of waiting a process runs with cold caches, and the same code costs about twice
what it does back to back (decision 040).

    python -m benchmarks.http_floor [--rounds 8] [--calls 300]   # -> benchmarks/results/http_floor.json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.loadgen import pool
from benchmarks.proxy_bench import (
    ROOT,
    _free_port,
    _http_ok,
    _litellm_env,
    _litellm_venv,
    _server,
    _tcp_open,
    _write_configs,
)

OUT = ROOT / "benchmarks" / "results" / "http_floor.json"


def _round(url: str, body: Path, calls: int, api_key: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.loadgen_http", url, "--body", str(body)]
    argv += ["--calls", str(calls), "--concurrency", "1", "--warmup", "20", "--raw"]
    env = {**os.environ, "LOADGEN_API_KEY": api_key} if api_key else None
    done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT, env=env, timeout=600)
    result: dict[str, Any] = json.loads(done.stdout)
    if result.get("errors"):
        raise RuntimeError(f"{url}: {result['errors']} errors, first: {result.get('first_error')}")
    return result


def run(rounds: int, calls: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp_dir, ExitStack() as running:
        tmp = Path(tmp_dir)
        sim_port = _free_port()
        sim_url = f"http://127.0.0.1:{sim_port}/v1"
        paths = _write_configs(tmp, sim_url)
        py = sys.executable
        sim = [py, "-m", "sidecar", "simulate", "--config", str(paths["simulator"]), "--port", str(sim_port)]
        healthz = _http_ok(f"http://127.0.0.1:{sim_port}/healthz")
        running.enter_context(_server("simulator", sim, healthz, tmp / "sim.log"))
        # (name, base url, body, bearer token)
        targets: list[tuple[str, str, Path, str]] = [("direct", sim_url, paths["body"], "")]

        port = _free_port()
        argv = [py, "-m", "benchmarks.passthrough_proxy", str(port), sim_url]
        running.enter_context(_server("passthrough", argv, _tcp_open(port), tmp / "passthrough.log"))
        targets.append(("passthrough", f"http://127.0.0.1:{port}/v1", paths["body"], ""))

        port = _free_port()
        argv = [py, "-m", "sidecar", "serve", "--config", str(paths["turnout"]), "--port", "0"]
        ready = _http_ok(f"http://127.0.0.1:{port}/readyz")
        running.enter_context(
            _server("turnout", [*argv, "--http-port", str(port)], ready, tmp / "turnout.log")
        )
        targets.append(("turnout http", f"http://127.0.0.1:{port}/v1", paths["body_turnout"], ""))

        venv, skipped = _litellm_venv(quick=False)
        if venv is not None:
            key = f"sk-bench-{secrets.token_hex(16)}"
            port = _free_port()
            argv = [str(venv / "bin" / "litellm"), "--config", str(paths["litellm"]), "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--num_workers", "1"]
            ready = _http_ok(f"http://127.0.0.1:{port}/health/liveliness")
            running.enter_context(
                _server(
                    "litellm", argv, ready, tmp / "litellm.log", env=_litellm_env(key), cwd=tmp, secret=key
                )
            )
            targets.append(("litellm 1w", f"http://127.0.0.1:{port}/v1", paths["body"], key))

        samples: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in targets}
        for r in range(rounds):
            for name, url, body, key in targets if r % 2 == 0 else targets[::-1]:
                samples[name].append(_round(url, body, calls, key))
        pooled = {name: pool(rounds_of) for name, rounds_of in samples.items()}
    return _summary(pooled, rounds, calls, skipped)


def _summary(pooled: dict[str, dict[str, Any]], rounds: int, calls: int, skipped: str) -> dict[str, Any]:
    base = pooled["direct"]
    added = {
        name: {q: round(r[f"{q}_ms"] - base[f"{q}_ms"], 3) for q in ("p50", "p99")}
        for name, r in pooled.items()
        if name != "direct"
    }
    out: dict[str, Any] = {
        "rounds": rounds,
        "calls_per_round": calls,
        "direct_ms": {q: base[f"{q}_ms"] for q in ("p50", "p99")},
        "added_ms": added,
        "turnout_above_floor_ms": {
            q: round(added["turnout http"][q] - added["passthrough"][q], 3) for q in ("p50", "p99")
        },
    }
    if "litellm 1w" in added:
        lite = added["litellm 1w"]
        out["turnout_over_litellm"] = {
            q: round(added["turnout http"][q] / lite[q], 3) for q in ("p50", "p99")
        }
        out["floor_over_litellm"] = {q: round(added["passthrough"][q] / lite[q], 3) for q in ("p50", "p99")}
    else:
        out["litellm"] = skipped
    return out


def report(out: dict[str, Any]) -> list[str]:
    """The section of REPORT.md."""
    added = out["added_ms"]
    lines = [
        f"## HTTP added latency at concurrency 1, against its floor ({out['rounds']} alternating rounds "
        f"of {out['calls_per_round']} calls)",
        "",
        "Added over the simulator direct (p50 / p99 ms); the pass-through proxy "
        "(benchmarks/passthrough_proxy.py) is the least any aiohttp proxy adds here.",
        "",
        "| target | added p50 | added p99 |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {a['p50']:+.3f} | {a['p99']:+.3f} |" for name, a in added.items()]
    floor = out["turnout_above_floor_ms"]
    lines += ["", f"Turnout above the floor: {floor['p50']:+.3f} ms p50, {floor['p99']:+.3f} ms p99."]
    if "turnout_over_litellm" in out:
        ratio, least = out["turnout_over_litellm"], out["floor_over_litellm"]
        lines.append(
            f"Turnout over LiteLLM: {ratio['p50']:.3f} at p50, {ratio['p99']:.3f} at p99 (goal <= 0.1); "
            f"the pass-through proxy's: {least['p50']:.3f} / {least['p99']:.3f}."
        )
    else:
        lines.append(f"LiteLLM: {out['litellm']}.")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    out = run(args.rounds, args.calls)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
