"""Overhead and throughput: the simulator direct, through Turnout, and through the LiteLLM proxy, in one run.

One workload, one provider simulator (its own process), and every target up at once:

    direct            the simulator's /v1/chat/completions over HTTP (the baseline), unary and streamed
    turnout           the sidecar's Generate and GenerateStream over gRPC (one process)
    turnout http      the sidecar's OpenAI-compatible /v1/chat/completions (one process of its own)
    litellm Nw        the LiteLLM proxy (`litellm[proxy]`, pinned, in its own venv made by
                      scripts/litellm-venv.sh) with N uvicorn workers, unary and streamed
    portkey           Portkey's open-source gateway (`@portkey-ai/gateway`, pinned by
                      tools/portkey/package-lock.json, installed by scripts/bench-deps.sh) on the
                      machine's Node.js, one process, unary only (PORTKEY_STREAMS says why)

Every proxy has the same setup: two models on the simulator, the second the fallback of the first,
no retries, no database, no callbacks, telemetry off (Turnout: no traces, metrics, Prometheus
endpoint or request log; LiteLLM: no callbacks, LITELLM_LOG=ERROR; Portkey: its fallback strategy in
the x-portkey-config header, no cache, no retries). The three HTTP front doors get the same
`/v1/chat/completions` request; Turnout's names its route, LiteLLM's and Portkey's the first model.
The load comes from benchmarks/loadgen_http.py and benchmarks/loadgen.py, a process per round (never
in the server's interpreter), after one warm-up per target: closed loops at concurrency 1, 16, 64,
then open loops at fixed rates. Each load point runs in rounds (4 in full mode), each round
alternating between the targets, forward then backward, so that the machine's drift lands on every
target alike; the rounds' samples are pooled. Before each point the servers are left to go quiet
(`settle`). A rate is sent to a target only when it is under 80 % of that target's best closed-loop
throughput (above it the queue grows and the figures say more about queueing than overhead: the row
says "over capacity"), except the goal rate (500 req/s), which every target that reached it in
closed loop is sent, marked with its share of that best. Added latency is a target's percentile
minus the direct target's at the same level (streams against direct streams). CPU is utime + stime
over the server's process tree (/proc), per request; memory is the tree's RSS idle after start and
the sum of its peaks (VmHWM).

The simulator answers every request after a fixed 10 ms to the first token and 16 tokens at 2,000
tokens/s (no jitter, no tail): about 20 ms direct, so that an overhead of a millisecond is visible
and the c1 points are not all waiting. The machine has 2 cores for the simulator, the proxy and
the load generator together, so throughput figures are of the whole set-up, the same for each
target.

LiteLLM's venv is made when missing, in quick mode too: a cold install measured about a minute
here. TURNOUT_BENCH_LITELLM=skip leaves LiteLLM out; a failed install or start is reported as
skipped, and Turnout's figures are still measured. Its master key is made per run and only ever
passed through the environment.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from benchmarks import loadgen
from benchmarks.loadgen import pool
from benchmarks.stats import round_ratios
from benchmarks.workload import TELEMETRY_GOAL_RATIO, TELEMETRY_OFF, TELEMETRY_ON

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VERSION = "1.106.2"
LITELLM_SCRIPT = ROOT / "scripts" / "litellm-venv.sh"
# Set to "skip" to leave LiteLLM out (e.g. offline without its venv); any other value runs it.
LITELLM_SWITCH = "TURNOUT_BENCH_LITELLM"
PORTKEY_DIR = ROOT / "tools" / "portkey"
PORTKEY_START = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
PORTKEY_SWITCH = "TURNOUT_BENCH_PORTKEY"  # "skip" leaves Portkey's gateway out
# Measured with @portkey-ai/gateway 1.15.2 on Node.js 20.20: every streamed request through an
# OpenAI-compatible target fails (HTTP 500 "Something went wrong"); the gateway's log says
# "TypeError: immutable" in updateHeaders: it appends its x-portkey-* headers to the upstream
# fetch() Response, whose headers Node's fetch makes immutable. So its streams are not measured.
PORTKEY_STREAMS = (
    "streams not measured: @portkey-ai/gateway 1.15.2 answers every streamed request with HTTP 500 on "
    "this Node.js (TypeError: immutable, appending its headers to the upstream fetch() response)"
)

PROFILE = {
    "ttft_ms": 10,
    "tokens_per_second": 2000,
    "jitter": 0.0,
    "tail_probability": 0.0,
    "default_output_tokens": 16,
}
OUTPUT_TOKENS = 16
PROMPT = "Summarise the change log of this release in one line."
MODELS = ("bench-a", "bench-b")  # the first choice and its fallback

# The issue's targets, and the reference figures it gives for LiteLLM 1.106.2 on this kind of machine.
GOAL_RATE = 500
GOAL_ADDED_P50_MS = 1.0
GOAL_ADDED_P99_MS = 2.0
GOAL_THROUGHPUT_RATIO = 10.0
GOAL_ADDED_RATIO = 0.1
GOAL_IDLE_RSS_MB = 100.0
LITELLM_REFERENCE = {"rps_per_worker": 115, "added_p50_ms_c1": 8.5, "rss_mb_per_worker": 380}
CAPACITY_SHARE = 0.8


@dataclass(frozen=True)
class Mode:
    levels: tuple[int, ...]
    rates: tuple[int, ...]
    seconds: float  # per load point, over all its rounds
    rounds: int  # each point is run in rounds, alternating with the other targets; samples pooled
    warmup: int  # sequential calls before each round
    litellm_workers: tuple[int, ...]
    # telemetry on over off: slices alternating within one load generator (loadgen --compare)
    slice_s: float = 0.5
    slices: int = 20


FULL = Mode((1, 16, 64), (100, 250, GOAL_RATE), seconds=12.0, rounds=4, warmup=20, litellm_workers=(1, 2))
QUICK = Mode(
    (1, 16), (100, GOAL_RATE), seconds=1.5, rounds=1, warmup=5, litellm_workers=(1,), slice_s=0.25, slices=2
)


@dataclass(frozen=True)
class Target:
    """One thing the load generator drives: which server, over which protocol, streamed or not."""

    name: str
    server: str
    address: str  # base URL for HTTP targets, host:port for gRPC
    stream: bool
    grpc: bool
    baseline: str  # the direct target this one's added latency is measured against
    body: str = "body"  # the key of its request body in the run's files (HTTP targets)
    headers: tuple[str, ...] = ()  # 'Name: value' sent with each request (HTTP targets)


# --- processes ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return probe


def _tcp_open(port: int) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return probe


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone since the listing
                continue
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _tree(pid: int) -> list[int]:
    """The process and all its descendants (LiteLLM's workers, its multiprocessing tracker)."""
    children = _children()
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo += children.get(p, [])
    return found


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


# Before each load point the servers are left to go quiet, so that work one target still does
# after its point (LiteLLM's background tasks after a burst, an exporter's flush) is not paid by
# whichever target runs next: their CPU over a window at most this share of one core.
SETTLE_WINDOW_S = 0.25
SETTLE_IDLE_SHARE = 0.1
SETTLE_MAX_S = 10.0


def settle(
    pids: list[int],
    *,
    cpu: Callable[[list[int]], float] = _cpu_s,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> float:
    """Wait until the processes' CPU over SETTLE_WINDOW_S is at most SETTLE_IDLE_SHARE of a core,
    or SETTLE_MAX_S has passed; the seconds waited."""
    start = clock()
    while True:
        before = cpu(pids)
        sleep(SETTLE_WINDOW_S)
        quiet = cpu(pids) - before <= SETTLE_IDLE_SHARE * SETTLE_WINDOW_S
        waited = clock() - start
        if quiet or waited >= SETTLE_MAX_S:
            return waited


def _memory_mb(pids: list[int]) -> dict[str, float]:
    """RSS now and the sum of each process's peak RSS (VmHWM), in MB."""
    out = {"rss": 0.0, "peak": 0.0}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in lines if ":" in line)
        out["rss"] += int(fields.get("VmRSS", "0 kB").split()[0]) / 1024
        out["peak"] += int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
    return {k: round(v, 1) for k, v in out.items()}


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    workers: int = 1

    def pids(self) -> list[int]:
        return _tree(self.proc.pid)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (it and every worker it forked), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the bench dies, even by SIGKILL (PR_SET_PDEATHSIG),
    so that no server outlives a killed run; a normal end or an exception stops them in _server."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


@contextmanager
def _server(
    name: str,
    argv: list[str],
    ready: Callable[[], bool],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    secret: str = "",
    start_timeout_s: float = 120.0,
) -> Iterator[Server]:
    """Start a server in a process group of its own and yield it once `ready()` holds; stop it
    (and every process it started) whatever happens. Its output goes to `log`, never to a pipe
    nobody reads."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # safe: the bench runs no threads of its own
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                if secret:
                    tail = tail.replace(secret, "<master key>")
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "is not ready"
                raise RuntimeError(f"{name} {state} after start; its log ends:\n{tail}")
            time.sleep(0.2)
        yield Server(name, proc)
    finally:
        _stop(proc)


# --- configurations ----------------------------------------------------------------------------------


def _write_configs(tmp: Path, sim_url: str) -> dict[str, Path]:
    sim = {"seed": 1, "time_scale": 1.0, "default_profile": PROFILE}
    model = {
        "provider": "simulator",
        "price": {"input": 0.15, "output": 0.60},
        "context_window": 128_000,
        "max_output_tokens": 16_384,
        "capabilities": ["streaming"],
        "quality": 0.7,
        "typical_latency_s": 0.02,
    }
    turnout = {
        "version": 1,
        "server": {"host": "127.0.0.1", "port": 0, "reload_interval_s": 0},
        "providers": [{"name": "simulator", "kind": "openai", "base_url": sim_url}],
        "models": [{"name": m, **model} for m in MODELS],
        "routes": [{"name": "bench", "models": list(MODELS), "execution": {"max_retries": 0}}],
        "telemetry": TELEMETRY_OFF,
    }
    litellm = {
        "model_list": [
            {
                "model_name": m,
                "litellm_params": {"model": f"openai/{m}", "api_base": sim_url, "api_key": "sk-simulator"},
            }
            for m in MODELS
        ],
        "router_settings": {"fallbacks": [{MODELS[0]: [MODELS[1]]}], "num_retries": 0},
        "litellm_settings": {
            "num_retries": 0,
            "request_timeout": 30,
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
        },
    }
    generate = {
        "messages": [{"role": "ROLE_USER", "content": [{"text": PROMPT}]}],
        "params": {"maxOutputTokens": OUTPUT_TOKENS},
    }
    body = {
        "model": MODELS[0],
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": OUTPUT_TOKENS,
    }
    # Turnout's HTTP front door names the route (its fallback is the route's), not a model (a pin).
    body_turnout = {**body, "model": "bench"}
    files = {
        "simulator": (sim, "simulator.yaml"),
        "turnout": (turnout, "turnout.yaml"),
        "turnout_telemetry": ({**turnout, "telemetry": TELEMETRY_ON}, "turnout-telemetry.yaml"),
        "litellm": (litellm, "litellm.yaml"),
        "generate": (generate, "generate.json"),
        "body": (body, "body.json"),
        "body_turnout": (body_turnout, "body-turnout.json"),
    }
    paths = {}
    for key, (content, filename) in files.items():
        paths[key] = tmp / filename
        text = json.dumps(content) if filename.endswith(".json") else yaml.safe_dump(content, sort_keys=False)
        paths[key].write_text(text)
    return paths


def _litellm_venv(quick: bool) -> tuple[Path | None, str]:
    """(the venv, "") or (None, why LiteLLM is left out). Installs it when missing: measured at about
    a minute on this machine from a cold pip cache, so quick mode installs too."""
    del quick  # the same in both modes; kept so the policy is visible at the call
    if os.environ.get(LITELLM_SWITCH, "").lower() == "skip":
        return None, f"skipped: {LITELLM_SWITCH}=skip"
    done = subprocess.run(["bash", str(LITELLM_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, f"skipped: scripts/litellm-venv.sh failed: {done.stderr.strip()[-500:]}"
    return Path(done.stdout.strip().splitlines()[-1]), ""


def _litellm_env(master_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "STORE_MODEL_IN_DB"}}
    return env | {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the price map at import
        "LITELLM_MODE": "PRODUCTION",  # no .env loading
        "LITELLM_LOG": "ERROR",
        "LITELLM_MASTER_KEY": master_key,
    }


# --- load --------------------------------------------------------------------------------------------


def _point(
    target: Target,
    server: Server,
    paths: dict[str, Path],
    mode: Mode,
    *,
    concurrency: int = 1,
    rate: int | None = None,
    api_key: str = "",
) -> dict[str, Any]:
    """One round of a load point from a load generator process, with the server tree's CPU over it."""
    common = ["--duration", str(mode.seconds / mode.rounds), "--warmup", str(mode.warmup), "--raw"]
    common += ["--rate", str(rate)] if rate is not None else ["--concurrency", str(concurrency)]
    if target.grpc:
        method = "GenerateStream" if target.stream else "Generate"
        argv = [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            target.address,
            "--request",
            str(paths["generate"]),
        ]
        argv += ["--method", method, *common]
    else:
        argv = _http_argv(target, paths)
        argv += ["--stream", *common] if target.stream else common
    env = {**os.environ, "LOADGEN_API_KEY": api_key} if api_key else None
    pids = server.pids()
    cpu0 = _cpu_s(pids)
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=ROOT, env=env, timeout=mode.seconds + 120
    )
    cpu = _cpu_s(pids) - cpu0
    if done.returncode != 0:
        raise RuntimeError(f"load generator for {target.name} failed: {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    if api_key and "first_error" in result:
        result["first_error"] = result["first_error"].replace(api_key, "<master key>")
    result["cpu_s"] = cpu
    result["requests"] = result["calls"] + mode.warmup  # the warm-up's CPU is in cpu_s too
    return result


def _http_argv(target: Target, paths: dict[str, Path]) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.loadgen_http",
        target.address,
        "--body",
        str(paths[target.body]),
    ]
    for header in target.headers:
        argv += ["--header", header]
    return argv


def portkey_config(sim_url: str) -> str:
    """Portkey's routing for the run: the two models on the simulator, the second the fallback."""
    targets = [
        {
            "provider": "openai",
            "api_key": "sk-simulator",
            "custom_host": sim_url,
            "override_params": {"model": m},
        }
        for m in MODELS
    ]
    return json.dumps({"strategy": {"mode": "fallback"}, "targets": targets, "retry": {"attempts": 0}})


def _pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """A load point's rounds as one: latency percentiles over all samples (loadgen.pool), CPU summed."""
    out = pool(rounds)
    cpu, requests = sum(r["cpu_s"] for r in rounds), sum(r["requests"] for r in rounds)
    out["rps_rounds"] = [r["rps"] for r in rounds]
    out["requests"] = requests
    out["cpu_s"] = round(cpu, 3)
    out["cpu_ms_per_request"] = round(1000 * cpu / requests, 3) if requests else None
    return out


def _added(result: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    keys = ["p50_ms", "p95_ms", "p99_ms", "ttft_p50_ms", "ttft_p99_ms"]
    return {f"added_{k}": round(result[k] - base[k], 3) for k in keys if k in result and k in base}


def _fallback_check(target: Target, paths: dict[str, Path], sim_url: str, api_key: str) -> str:
    """Make the simulator fail the first model once, send one request: did the fallback answer?"""
    fault = json.dumps({"model": MODELS[0], "kind": "server_error", "count": 1}).encode()
    admin = sim_url.removesuffix("/v1") + "/_sim/faults"
    urllib.request.urlopen(urllib.request.Request(admin, data=fault, method="POST"), timeout=5).close()
    argv = [sys.executable, "-m"]
    if target.grpc:
        argv += [
            "benchmarks.loadgen",
            target.address,
            "--request",
            str(paths["generate"]),
            "--method",
            "Generate",
        ]
    else:
        argv = _http_argv(target, paths)
    argv += ["--calls", "1", "--warmup", "0"]
    env = {**os.environ, "LOADGEN_API_KEY": api_key} if api_key else None
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=ROOT, env=env, timeout=60)
    # Clear the fault if the request never reached the simulator.
    urllib.request.urlopen(urllib.request.Request(admin, method="DELETE"), timeout=5).close()
    if done.returncode != 0:
        return "load generator failed"
    result = json.loads(done.stdout)
    return (
        "answered"
        if result["errors"] == 0
        else "failed: " + result.get("first_error", "?").replace(api_key or "\0", "<master key>")
    )


# --- the run -----------------------------------------------------------------------------------------


class _Bench:
    """The servers of one run, its targets, and the CPU and requests billed to each server."""

    def __init__(self, mode: Mode, tmp: Path, running: ExitStack, master_key: str) -> None:
        self.mode, self.tmp, self.running, self.master_key = mode, tmp, running, master_key
        self.sim_port = _free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}/v1"
        self.paths = _write_configs(tmp, self.sim_url)
        self.servers: dict[str, Server] = {}
        self.targets: list[Target] = []
        self.cpu_s: dict[str, float] = {}
        self.requests: dict[str, int] = {}
        self.litellm_failed = ""
        self.portkey_skipped = ""
        self.settle_s: list[float] = []  # before each point, the wait for the servers to go quiet

    def _start(self, name: str, argv: list[str], ready: Callable[[], bool], **kw: Any) -> Server:
        server = self.running.enter_context(_server(name, argv, ready, self.tmp / f"{name}.log", **kw))
        self.servers[name] = server
        self.cpu_s[name], self.requests[name] = 0.0, 0
        return server

    def _add(
        self, name: str, server: str, address: str, *, grpc: bool, streams: bool = True, **http: Any
    ) -> None:
        """A target, and its streamed twin unless `streams` is false; `http`: body= and headers=."""
        unary = Target(name, server, address, stream=False, grpc=grpc, baseline="direct", **http)
        self.targets.append(unary)
        if streams:
            self.targets.append(replace(unary, name=f"{name} stream", stream=True, baseline="direct stream"))

    def _turnout(
        self, name: str, config: Path, env: dict[str, str] | None = None, *, streams: bool = True
    ) -> None:
        port = _free_port()
        argv = [sys.executable, "-m", "sidecar", "serve", "--config", str(config), "--port", str(port)]
        self._start(name, argv, _tcp_open(port), env=env)
        self._add(name, name, f"127.0.0.1:{port}", grpc=True, streams=streams)

    def start(self, venv: Path | None) -> None:
        """The simulator, Turnout, and LiteLLM with each worker count when its venv is there."""
        py, paths = sys.executable, self.paths
        argv = [py, "-m", "sidecar", "simulate", "--config", str(paths["simulator"])]
        healthz = _http_ok(f"http://127.0.0.1:{self.sim_port}/healthz")
        self._start("simulator", [*argv, "--port", str(self.sim_port)], healthz)
        self._add("direct", "simulator", self.sim_url, grpc=False)
        self._turnout("turnout", paths["turnout"])
        # The same config in a process of its own serving the OpenAI-compatible HTTP API: one
        # process per proxy, as LiteLLM's and Portkey's are measured.
        port = _free_port()
        argv = [py, "-m", "sidecar", "serve", "--config", str(paths["turnout"]), "--port", "0"]
        self._start(
            "turnout http", [*argv, "--http-port", str(port)], _http_ok(f"http://127.0.0.1:{port}/readyz")
        )
        self._add(
            "turnout http", "turnout http", f"http://127.0.0.1:{port}/v1", grpc=False, body="body_turnout"
        )
        self._portkey()
        # The same sidecar with telemetry on as a pod runs it by default: traces over OTLP to a sink
        # that does not decode (its CPU is its own, not billed to the sidecar) with the default
        # sampling (10% of root requests), metrics on the Prometheus endpoint, the request log
        # written; and once more with every trace recorded (Generate only).
        sink_port = _free_port()
        sink = [py, "-m", "benchmarks.otlp_sink", "--port", str(sink_port)]
        self.running.enter_context(_server("otlp sink", sink, _tcp_open(sink_port), self.tmp / "sink.log"))
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}"}
        env.pop("OTEL_TRACES_SAMPLER", None)
        self._turnout("turnout telemetry", paths["turnout_telemetry"], env=env)
        every = {**env, "OTEL_TRACES_SAMPLER": "always_on"}
        self._turnout("turnout telemetry all", paths["turnout_telemetry"], env=every, streams=False)
        if venv is None:
            return
        env = _litellm_env(self.master_key)
        for workers in self.mode.litellm_workers:
            name, port = f"litellm {workers}w", _free_port()
            argv = [str(venv / "bin" / "litellm"), "--config", str(paths["litellm"]), "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--num_workers", str(workers)]
            ready = _http_ok(f"http://127.0.0.1:{port}/health/liveliness")
            try:
                server = self._start(name, argv, ready, env=env, cwd=self.tmp, secret=self.master_key)
            except RuntimeError as exc:  # the comparison is lost, not Turnout's figures
                self.litellm_failed = f"skipped: {exc}"[:1500]
                return
            server.workers = workers
            self._add(name, name, f"http://127.0.0.1:{port}/v1", grpc=False)

    def _portkey(self) -> None:
        """Portkey's gateway on the machine's Node.js, when scripts/bench-deps.sh installed it."""
        node = shutil.which("node")
        if os.environ.get(PORTKEY_SWITCH, "").lower() == "skip":
            self.portkey_skipped = f"skipped: {PORTKEY_SWITCH}=skip"
        elif node is None or not PORTKEY_START.is_file():
            self.portkey_skipped = (
                "skipped: no Node.js, or tools/portkey not installed (scripts/bench-deps.sh)"
            )
        if self.portkey_skipped:
            return
        assert node is not None
        port = _free_port()
        argv = [node, str(PORTKEY_START), f"--port={port}", "--headless"]
        env = {**os.environ, "NODE_ENV": "production"}
        try:
            self._start("portkey", argv, _http_ok(f"http://127.0.0.1:{port}/"), env=env, cwd=PORTKEY_DIR)
        except RuntimeError as exc:
            self.portkey_skipped = f"skipped: {exc}"[:1500]
            return
        header = f"x-portkey-config: {portkey_config(self.sim_url)}"
        self._add(
            "portkey", "portkey", f"http://127.0.0.1:{port}/v1", grpc=False, streams=False, headers=(header,)
        )

    def key(self, target: Target) -> str:
        return self.master_key if target.server.startswith("litellm") else ""

    def level(self, targets: list[Target], **shape: Any) -> dict[str, dict[str, Any]]:
        """One load level on every target: round after round, each round alternating the targets."""
        rounds: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        for i in range(self.mode.rounds):
            # Forward, then backward (A B C, C B A, ...): a drift of the machine over a level then
            # lands on every target alike, not most on the last; with an even number of rounds a
            # steady drift cancels out of the ratios between targets.
            for t in targets if i % 2 == 0 else targets[::-1]:
                rounds[t.name].append(self.point(t, **shape))
        return {name: _pooled(runs) for name, runs in rounds.items()}

    def point(self, target: Target, **shape: Any) -> dict[str, Any]:
        waited = settle([pid for server in self.servers.values() for pid in server.pids()])
        self.settle_s.append(waited)
        result = _point(
            target, self.servers[target.server], self.paths, self.mode, api_key=self.key(target), **shape
        )
        self.cpu_s[target.server] += result["cpu_s"]
        self.requests[target.server] += result["requests"]
        return result

    def warm(self, target: Target) -> None:
        """Once per target before the first point: LiteLLM's first request takes most of a second."""
        mode = replace(self.mode, seconds=0.5, rounds=1, warmup=3 * self.mode.warmup)
        _point(target, self.servers[target.server], self.paths, mode, api_key=self.key(target))

    def memory(self) -> dict[str, dict[str, float]]:
        return {name: _memory_mb(s.pids()) for name, s in self.servers.items()}


def run(quick: bool) -> dict[str, Any]:
    mode = QUICK if quick else FULL
    venv, litellm_skipped = _litellm_venv(quick)
    master_key = "sk-" + secrets.token_urlsafe(32)  # per run; never printed or stored
    with tempfile.TemporaryDirectory(prefix="turnout-proxy-bench-") as tmp, ExitStack() as running:
        bench = _Bench(mode, Path(tmp), running, master_key)
        bench.start(venv)
        targets = bench.targets
        time.sleep(1.0)  # settle: idle memory after start-up, before any request
        idle = bench.memory()
        for t in targets:
            bench.warm(t)
        closed: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
        for c in mode.levels:
            for name, result in bench.level(targets, concurrency=c).items():
                closed[name][f"c{c}"] = result
        slices = _telemetry_slices(bench, mode)
        best = {t.name: max(x["rps"] for x in closed[t.name].values()) for t in targets}
        opened: dict[str, dict[str, Any]] = {t.name: {} for t in targets}
        for r in mode.rates:
            able = [t for t in targets if _sends(r, best[t.name])]
            for t in targets:
                opened[t.name][f"r{r}"] = {"skipped": f"over capacity (best {best[t.name]} req/s)"}
            for name, result in bench.level(able, rate=r).items():
                opened[name][f"r{r}"] = result | {"share_of_best": round(r / best[name], 2)}
        peak = bench.memory()
        fallback = {
            t.name: _fallback_check(t, bench.paths, bench.sim_url, bench.key(t))
            for t in targets
            if not t.stream and t.server != "simulator"
        }
    by_name = {t.name: t for t in targets}
    for table in (closed, opened):
        for name, points in table.items():
            for level, x in points.items():
                base = table[by_name[name].baseline].get(level, {})
                if name != by_name[name].baseline and "skipped" not in x and "skipped" not in base:
                    x.update(_added(x, base))
    processes = {
        name: {
            "workers": s.workers,
            "idle_rss_mb": idle[name]["rss"],
            "peak_rss_mb": peak[name]["peak"],
            "rss_after_load_mb": peak[name]["rss"],
            "cpu_s": round(bench.cpu_s[name], 2),
            "requests": bench.requests[name],
            "cpu_ms_per_request": round(1000 * bench.cpu_s[name] / max(bench.requests[name], 1), 3),
        }
        for name, s in bench.servers.items()
    }
    results: dict[str, Any] = {
        "mode": "quick" if quick else "full",
        "workload": {
            "simulator_profile": PROFILE,
            "output_tokens": OUTPUT_TOKENS,
            "prompt_chars": len(PROMPT),
            "models": list(MODELS),
            "fallback": f"{MODELS[1]} after {MODELS[0]}, no retries",
            "telemetry": "telemetry off on both proxies, and on for the 'Turnout ..., telemetry on' "
            "targets as the sidecar runs by default (traces of 10% of root requests over OTLP/gRPC to "
            "a local sink, metrics on the Prometheus endpoint, the request log) and, for Generate, "
            "with every trace recorded",
        },
        "load_generator": "benchmarks/loadgen_http.py (aiohttp) and benchmarks/loadgen.py (grpc.aio), "
        "each round in its own process",
        "seconds_per_point": mode.seconds,
        "rounds_per_point": mode.rounds,
        "warmup_calls_per_round": mode.warmup,
        "levels": [f"c{c}" for c in mode.levels],
        "rates": [f"r{r}" for r in mode.rates],
        "targets": {
            t.name: {"server": t.server, "stream": t.stream, "baseline": t.baseline} for t in targets
        },
        "closed": closed,
        "telemetry_slices": slices,
        "open": opened,
        "best_rps": best,
        "processes": processes,
        "fallback_check": fallback,
        "litellm": {"version": LITELLM_VERSION, "skipped": litellm_skipped or bench.litellm_failed or None},
        "portkey": {
            "version": portkey_version(),
            "skipped": bench.portkey_skipped or None,
            "streams": PORTKEY_STREAMS,
        },
        "settle": {
            "points": len(bench.settle_s),
            "total_s": round(sum(bench.settle_s), 1),
            "max_s": round(max(bench.settle_s, default=0.0), 2),
            "gave_up": sum(1 for w in bench.settle_s if w >= SETTLE_MAX_S),
        },
        "cpu_count": os.cpu_count(),
    }
    results["comparison"] = _compare(results)
    return results


def portkey_version() -> str:
    """The gateway's version as pinned by tools/portkey/package.json."""
    manifest = json.loads((PORTKEY_DIR / "package.json").read_text())
    return str(manifest["devDependencies"]["@portkey-ai/gateway"])


# comparison key -> (Turnout's target, the rival's): one process each, the same workload and
# fallback. The issue's goals (GOAL_THROUGHPUT_RATIO, GOAL_ADDED_RATIO) are set against LiteLLM;
# against Portkey the ratios are reported without a verdict.
VERSUS = (
    ("vs_litellm_1w", "turnout", "litellm 1w"),
    ("http_vs_litellm_1w", "turnout http", "litellm 1w"),
    ("http_vs_portkey", "turnout http", "portkey"),
)


def _versus(closed: dict[str, Any], best: dict[str, float], ours: str, rival: str) -> dict[str, Any]:
    """Best throughput over the rival's (and streams', where both streamed), added latency at
    concurrency 1 as a share of the rival's, and the streams' TTFT at concurrency 1."""
    ratios: dict[str, Any] = {"throughput": round(best[ours] / best[rival], 1)}
    streams = f"{ours} stream", f"{rival} stream"
    if all(name in best for name in streams):
        ratios["throughput_stream"] = round(best[streams[0]] / best[streams[1]], 1)
        ratios["ttft_p50_ms_c1"] = {
            name: closed[name]["c1"].get("ttft_p50_ms") for name in (streams[0], streams[1])
        }
    t1, l1 = closed[ours]["c1"], closed[rival]["c1"]
    for q in ("p50", "p99"):
        # A negative or zero overhead for Turnout is as good as it gets: ratio 0.
        ratios[f"added_{q}_c1"] = round(max(t1[f"added_{q}_ms"], 0.0) / max(l1[f"added_{q}_ms"], 1e-9), 3)
    if not rival.startswith("litellm"):
        return ratios
    return ratios | {
        "met": ratios["throughput"] >= GOAL_THROUGHPUT_RATIO
        and ratios["added_p50_c1"] <= GOAL_ADDED_RATIO
        and ratios["added_p99_c1"] <= GOAL_ADDED_RATIO
    }


def _telemetry_slices(bench: _Bench, mode: Mode) -> dict[str, Any]:
    """Generate with telemetry on over off at each closed-loop level, measured in slices that
    alternate within one load generator (loadgen.interleaved): steadier than whole rounds on a
    machine whose speed drifts over seconds. Level -> variant -> median and quartiles."""
    by_name = {t.name: t for t in bench.targets}
    names = [n for n in ("turnout", "turnout telemetry", "turnout telemetry all") if n in by_name]
    out: dict[str, Any] = {}
    if len(names) < 2:
        return out
    addresses = [by_name[name].address for name in names]
    for c in mode.levels:
        request = str(bench.paths["generate"])
        got = loadgen.compare(addresses, request, c, mode.slice_s, mode.slices, method="Generate", warmup=20)
        out[f"c{c}"] = dict(zip(names[1:], got["ratios"], strict=True)) | {"errors": sum(got["errors"])}
    return out


def _sends(rate: int, best: float) -> bool:
    """Whether a target is sent a fixed rate: under 80 % of its best closed-loop throughput, or
    the goal rate when the target reached it at all (the goal's figure, near capacity or not)."""
    return rate <= CAPACITY_SHARE * best or (rate == GOAL_RATE and rate < best)


def _cpu_per_request(points: dict[str, dict[str, Any]]) -> float | None:
    """CPU ms per request over a target's load points (their CPU summed over their requests)."""
    measured = [x for x in points.values() if x.get("cpu_ms_per_request")]
    cpu = sum(x["cpu_s"] for x in measured)
    # results written before "requests" was kept: it is cpu_s over the per-request figure
    requests = sum(x.get("requests") or 1000 * x["cpu_s"] / x["cpu_ms_per_request"] for x in measured)
    return round(1000 * cpu / requests, 3) if requests else None


def _compare(r: dict[str, Any]) -> dict[str, Any]:
    """Turnout against the goals, and against LiteLLM with one worker where it ran."""
    closed, opened, best = r["closed"], r["open"], r["best_rps"]
    out: dict[str, Any] = {}
    turnout_open = opened.get("turnout", {})
    at_rate = turnout_open.get(f"r{GOAL_RATE}")
    if at_rate and "added_p50_ms" in at_rate:
        out["added_at_goal_rate"] = {
            "rate": GOAL_RATE,
            "added_p50_ms": at_rate["added_p50_ms"],
            "added_p99_ms": at_rate["added_p99_ms"],
            "share_of_best": at_rate.get("share_of_best"),
            "met": at_rate["added_p50_ms"] <= GOAL_ADDED_P50_MS
            and at_rate["added_p99_ms"] <= GOAL_ADDED_P99_MS,
        }
    elif at_rate:  # not sent (Turnout never reached the rate): say so, with the highest rate it was sent
        measured = [(x["rate"], x) for x in turnout_open.values() if "added_p50_ms" in x]
        skipped = at_rate.get("skipped", "not sent")
        out["added_at_goal_rate"] = {"rate": GOAL_RATE, "skipped": skipped, "met": False}
        if measured:
            rate, x = max(measured, key=lambda m: m[0])
            out["added_at_goal_rate"]["highest_measured"] = {
                "rate": rate,
                "added_p50_ms": x["added_p50_ms"],
                "added_p99_ms": x["added_p99_ms"],
            }
    for key, target in (
        ("telemetry_on_over_off", "turnout telemetry"),
        ("telemetry_all_traces_over_off", "turnout telemetry all"),
    ):
        if target in closed:
            ratios = {
                level: round(closed[target][level]["rps"] / closed["turnout"][level]["rps"], 3)
                for level in closed["turnout"]
            }
            # CPU over the same points (the closed-loop levels, non-streamed): the processes' totals
            # also hold points only one of them ran (streams, fixed rates), so they are not comparable.
            on, off = (_cpu_per_request(closed[n]) for n in (target, "turnout"))
            # Each round's ratio too: the spread says how much of a shortfall is the machine's noise.
            per_round = {
                level: [
                    round(r, 3) for r in round_ratios(x["rps_rounds"], closed["turnout"][level]["rps_rounds"])
                ]
                for level, x in closed[target].items()
                if "rps_rounds" in x and "rps_rounds" in closed["turnout"][level]
            }
            slices = r.get("telemetry_slices") or {}
            by_rounds = None
            if slices:  # the slices' medians are the figure judged; the rounds' beside
                by_rounds = ratios
                ratios = {level: s[target]["median"] for level, s in slices.items()}
            out[key] = {
                "rps": ratios,
                "rps_by_rounds": by_rounds,
                "quartiles": {level: [s[target]["q1"], s[target]["q3"]] for level, s in slices.items()},
                "rps_by_round": per_round,
                "cpu_ms_per_request": {"on": on, "off": off},
                "met": min(ratios.values()) >= TELEMETRY_GOAL_RATIO,
            }
    idle = r["processes"]["turnout"]["idle_rss_mb"]
    out["turnout_idle_rss"] = {"mb": idle, "met": idle <= GOAL_IDLE_RSS_MB}
    for key, ours, rival in VERSUS:
        if ours in closed and rival in closed:
            out[key] = _versus(closed, best, ours, rival)
    if "litellm 1w" in closed:
        l1 = closed["litellm 1w"]["c1"]
        lp = r["processes"]["litellm 1w"]
        out["litellm_vs_reference"] = {
            "reference": LITELLM_REFERENCE,
            "rps_per_worker": best["litellm 1w"],
            "added_p50_ms_c1": l1["added_p50_ms"],
            "rss_mb_per_worker": lp["peak_rss_mb"],
        }
    return out


# --- the report --------------------------------------------------------------------------------------

LABELS = {
    "direct": "simulator direct (HTTP)",
    "direct stream": "simulator direct, stream",
    "turnout": "Turnout Generate (gRPC)",
    "turnout stream": "Turnout GenerateStream",
    "turnout telemetry": "Turnout Generate, telemetry on",
    "turnout telemetry stream": "Turnout GenerateStream, telemetry on",
    "turnout telemetry all": "Turnout Generate, telemetry on, every trace",
    "turnout http": "Turnout /v1/chat/completions (HTTP)",
    "turnout http stream": "Turnout /v1/chat/completions, stream",
    "portkey": "Portkey gateway",
}


def _label(name: str) -> str:
    if name in LABELS:
        return LABELS[name]
    if name.startswith("litellm"):
        workers = name.split()[1].removesuffix("w")
        stream = ", stream" if name.endswith("stream") else ""
        return f"LiteLLM {workers} worker{'s' if workers != '1' else ''}{stream}"
    return name


def _cell(x: dict[str, Any], key: str) -> str:
    v = x.get(key)
    if v is None:
        return "-"
    return f"{v:+.2f}" if key.startswith("added_") else f"{v:g}"


def _rows(table: dict[str, dict[str, Any]], levels: list[str], first: str) -> list[str]:
    lines = []
    for level in levels:
        for name, points in table.items():
            x = points.get(level)
            if x is None:
                continue
            head = [_label(name), level[1:]]
            share = x.get("share_of_best")
            if share is not None and share > CAPACITY_SHARE:
                head[1] += f" ({share:.0%} of best)"
            if "skipped" in x:
                lines.append("| " + " | ".join([*head, x["skipped"], *["" for _ in range(10)]]) + " |")
                continue
            cells = [_cell(x, first)]
            cells += [_cell(x, k) for k in ("p50_ms", "p95_ms", "p99_ms", "added_p50_ms", "added_p99_ms")]
            cells += [_cell(x, k) for k in ("ttft_p50_ms", "ttft_p99_ms", "added_ttft_p50_ms")]
            cells += [_cell(x, "cpu_ms_per_request"), str(x["errors"])]
            lines.append("| " + " | ".join([*head, *cells]) + " |")
    return lines


HEADER = (
    "| p50 ms | p95 ms | p99 ms | added p50 | added p99 | TTFT p50 | TTFT p99 | added TTFT p50 "
    "| CPU ms/req | errors |"
)
ALIGN = "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"


def report(results: dict[str, Any]) -> list[str]:
    """Markdown for REPORT.md: the tables, the ratios and the goals."""
    r = results
    w = r["workload"]
    p = w["simulator_profile"]
    lines = [
        "## Overhead and throughput: direct, Turnout and LiteLLM side by side "
        f"({r['seconds_per_point']:g} s per point, {r['rounds_per_point']} alternating round(s))",
        "",
        f"The simulator answers after {p['ttft_ms']} ms to the first token and {w['output_tokens']} tokens "
        f"at {p['tokens_per_second']} tokens/s, without jitter; two models, the second the fallback of the "
        f"first, no retries; {w['telemetry']}. Load from {r['load_generator']}; "
        f"{r['warmup_calls_per_round']} warm-up calls before each round; percentiles over the rounds' "
        "pooled samples. Added = the target's latency minus the direct target's at the same level "
        "(streams against direct streams), in ms. CPU is per request, over the server's process tree "
        "(the proxies' figures leave out the simulator's).",
        "",
    ]
    settled = r.get("settle")
    if settled:
        lines += [
            f"Before each point the servers were left to go quiet (their CPU at most "
            f"{SETTLE_IDLE_SHARE:.0%} of a core over {SETTLE_WINDOW_S:g} s), so that work a target still did "
            f"after its own point did not slow the next: {settled['total_s']:g} s waited over "
            f"{settled['points']} points, at most {settled['max_s']:g} s before one; "
            f"{settled['gave_up']} gave up after {SETTLE_MAX_S:g} s.",
            "",
        ]
    if r["litellm"]["skipped"]:
        lines += [f"LiteLLM {r['litellm']['version']}: {r['litellm']['skipped']}.", ""]
    lines += [
        "Closed loop (N workers, one request at a time each):",
        "",
        "| target | concurrency | req/s " + HEADER,
        "|---|---:" + ALIGN[:-1] + "|---:|",
        *_rows(r["closed"], r["levels"], "rps"),
        "",
        "Open loop at fixed rates (only below 80 % of a target's best closed-loop rate, and the goal "
        f"rate, {GOAL_RATE}/s, wherever the closed loop reached it: such a row says its share of that best):",
        "",
        "| target | rate/s | achieved req/s " + HEADER,
        "|---|---:" + ALIGN[:-1] + "|---:|",
        *_rows(r["open"], r["rates"], "rps"),
        "",
        "| process | workers | idle RSS MB | peak RSS MB (sum over its tree) | CPU ms/req, all points |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, x in r["processes"].items():
        cells = [name, x["workers"], x["idle_rss_mb"], x["peak_rss_mb"], x["cpu_ms_per_request"]]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    fallback = ", ".join(f"{_label(k)}: {v}" for k, v in r["fallback_check"].items())
    lines += ["", f"Fallback check (the first model fails once, one request): {fallback}.", ""]
    c = r["comparison"]
    goals = []
    g = c.get("added_at_goal_rate")
    if g:
        goals.append(f"- {added_at_goal_rate(g)}.")
    else:
        goals.append(f"- Added latency at {GOAL_RATE} req/s: not measured in this mode.")
    for key, what in VERSUS_WORDS.items():
        v = c.get(key)
        if v:
            judged = "met" in v
            streams = f"streams {v['throughput_stream']}x" if "throughput_stream" in v else ""
            goal = f"goal >= {GOAL_THROUGHPUT_RATIO:g}x" if judged else ""
            ttft = v.get("ttft_p50_ms_c1")
            ttfts = (
                f"; TTFT p50 at concurrency 1 {' vs '.join(f'{t} ms' for t in ttft.values())}" if ttft else ""
            )
            goals.append(
                f"- {what}, one worker / process each: best throughput {v['throughput']}x"
                f"{' (' + '; '.join(x for x in (streams, goal) if x) + ')' if streams or goal else ''}; "
                f"added latency at concurrency 1, Turnout's over theirs: p50 {v['added_p50_c1']}, "
                f"p99 {v['added_p99_c1']}{f' (goal <= {GOAL_ADDED_RATIO})' if judged else ''}{ttfts}"
                + (f": {_met(v['met'])}." if judged else ".")
            )
    if "vs_litellm_1w" in c:
        ref = c["litellm_vs_reference"]
        lr = ref["reference"]
        goals.append(
            f"- LiteLLM 1 worker here: {ref['rps_per_worker']} req/s at best, "
            f"{ref['added_p50_ms_c1']:+.2f} ms added p50 at concurrency 1, {ref['rss_mb_per_worker']} MB "
            "peak RSS (the issue's reference: "
            f"about {lr['rps_per_worker']} req/s, +{lr['added_p50_ms_c1']} ms, {lr['rss_mb_per_worker']} MB)."
        )
    else:
        goals.append("- Against LiteLLM: not measured (LiteLLM was skipped).")
    portkey = r.get("portkey")
    if portkey:
        state = portkey["skipped"] or portkey["streams"]
        goals.append(f"- Portkey's gateway {portkey['version']}: {state}.")
    for key, what in TELEMETRY_RUNS.items():
        t = c.get(key)
        if t:
            ratios = ", ".join(f"{level[1:]}: {v}" for level, v in t["rps"].items())
            spread = "; ".join(
                f"{level[1:]}: {min(v)}-{max(v)}" for level, v in t.get("rps_by_round", {}).items() if v
            )
            cpu = t["cpu_ms_per_request"]
            how = "interleaved slices" if t.get("rps_by_rounds") else "median of the rounds"
            q = "; ".join(f"{level[1:]}: {v[0]}-{v[1]}" for level, v in (t.get("quartiles") or {}).items())
            rounds = t.get("rps_by_rounds")
            by_rounds = ", ".join(f"{level[1:]}: {v}" for level, v in rounds.items()) if rounds else ""
            goals.append(
                f"- Telemetry on vs off on Generate ({what}): throughput ratio by concurrency {ratios} "
                f"({how}{'; quartiles ' + q if q else ''}; goal >= {TELEMETRY_GOAL_RATIO}"
                f"{'; by rounds ' + by_rounds if by_rounds else ''}; round by round {spread or 'n/a'}); "
                f"CPU {cpu['on']} vs {cpu['off']} ms per request: {_met(t['met'])}."
            )
    i = c["turnout_idle_rss"]
    goals.append(f"- Turnout idle RSS {i['mb']} MB (goal <= {GOAL_IDLE_RSS_MB:g}): {_met(i['met'])}.")
    return [*lines, "Goals:", "", *goals, ""]


VERSUS_WORDS = {
    "vs_litellm_1w": "Turnout gRPC against LiteLLM",
    "http_vs_litellm_1w": "Turnout's HTTP front door against LiteLLM's proxy",
    "http_vs_portkey": "Turnout's HTTP front door against Portkey's gateway",
}

# comparison key -> what was on
TELEMETRY_RUNS = {
    "telemetry_on_over_off": "as it runs by default: 10% of root traces, metrics, request log",
    "telemetry_all_traces_over_off": "every trace, metrics, request log",
}


def added_at_goal_rate(g: dict[str, Any]) -> str:
    """The goal-rate figure in words: measured (and how near capacity), or why not."""
    goal = f"goal p50 <= {GOAL_ADDED_P50_MS:g} ms, p99 <= {GOAL_ADDED_P99_MS:g} ms"
    if "skipped" not in g:
        share = g.get("share_of_best")
        near = f", at {share:.0%} of Turnout's best closed-loop rate" if share else ""
        return (
            f"Added latency at {g['rate']} req/s{near}: p50 {g['added_p50_ms']:+.2f} ms, "
            f"p99 {g['added_p99_ms']:+.2f} ms ({goal}): {_met(g['met'])}"
        )
    text = f"Added latency at {g['rate']} req/s: not measured, Turnout {g['skipped']}"
    h = g.get("highest_measured")
    if h:
        text += (
            f"; at {h['rate']:g} req/s, the highest rate sent: p50 {h['added_p50_ms']:+.2f} ms, "
            f"p99 {h['added_p99_ms']:+.2f} ms"
        )
    return f"{text} ({goal}): not met"


def _met(ok: bool) -> str:
    return "met" if ok else "not met"


if __name__ == "__main__":  # a run on its own: python -m benchmarks.proxy_bench [--quick]
    out = run("--quick" in sys.argv)
    print(json.dumps(out, indent=2), file=sys.stderr)
    print("\n".join(report(out)))
