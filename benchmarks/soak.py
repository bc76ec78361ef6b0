"""`make soak`: a bounded soak of a real sidecar process under mixed load and random provider faults.

`turnout serve` runs as its own process with the example config, every provider pointed at a
provider simulator in a process of its own (`turnout simulate`, 5x faster than real time), both from
the tree under test (`--tree`, default this checkout; `--python` picks the interpreter), on free
loopback ports. For `--minutes`, 16 clients send Generate (unary and streamed), Route, ListModels
and bad requests (INVALID_ARGUMENT, NOT_FOUND) with a 10 s deadline, while random faults are armed
in the simulator every 2 s (500, 429, 503, hang, malformed JSON, cut streams, slow answers) and the
simulator is killed and restarted once or twice (a full outage of every provider, 5 s at most).

Every second the sidecar's RSS (/proc/PID/status) and open file descriptors (/proc/PID/fd) are
sampled. After a warm-up (the first half of the run: tokenizers, the decision cache, connection
pools, latency windows and telemetry's series fill, which at this load takes ~13 minutes, so
the default run is 30) a least-squares line is fitted to each. The soak fails (exit 1) when

- RSS grows faster than RSS_SLOPE_MB_PER_MIN (2 MB/min; see below),
- the open fds at the end (median of the last tenth) exceed those after the warm-up by more than
  FD_GROWTH (16: one provider connection per client in flight; a leak of one per failed request
  or per outage would add hundreds),
- any call outlives its deadline by more than HANG_SLACK_S (the sidecar or the client hangs), or
  a provider request is still open UPSTREAM_GRACE_S after the last call ended (an attempt the
  sidecar went on with after its call was over),
- the sidecar dies.

Why 2 MB/min: a healthy run is flat within the allocator's noise (a few MB up and down, which
over 15 minutes fits to well under 1 MB/min); the load makes some 4,000-17,000 calls a minute
(more when most fail fast), so 2 MB/min is 0.1-0.5 KB kept per call, the size of one leaked
attempt record or request object. A slower leak is below what minutes can tell from noise; it
is what a longer soak (`--minutes 60`) is for.

The result is printed and merged into OUT/results.json under "soak" (one entry per `--label`,
stamped with when and which commit) and the report, OUT/REPORT.md, is rewritten with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import yaml

from benchmarks.rpc_bench import ROOT, _process
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc

RESULTS = ROOT / "benchmarks" / "results"
RSS_SLOPE_MB_PER_MIN = 2.0
FD_GROWTH = 16
WARMUP_SHARE = 0.5  # at this load the bounded structures take ~13 minutes to fill (decision 002)
CONCURRENCY = 16
DEADLINE_S = 10.0
HANG_SLACK_S = 5.0
UPSTREAM_GRACE_S = 5.0
FAULT_EVERY_S = 2.0
CLEAR_FAULTS_EVERY_S = 60.0  # drop armed faults no request has drawn yet, so they do not pile up
OUTAGE_S = 5.0
TIME_SCALE = 0.2
SIMULATOR_PATHS = {"gemini": "/v1beta"}  # every other wire format is served under /v1
FAULT_KINDS = ("server_error", "rate_limit", "overloaded", "hang", "malformed_json", "stream_cut", "slow")


def slope_per_min(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, value) points, in value per minute (0 for fewer than 2)."""
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return 60 * cov / var


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    rss_mb: float
    fds: int


def read_process(pid: int) -> tuple[float, int] | None:
    """(RSS in MB, open fds) of a live process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return rss_kb / 1024, fds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _configs(tree: Path, tmp: Path, sim_port: int) -> tuple[Path, Path]:
    """The tree's own example config and simulator profiles, pointed at each other."""
    raw = yaml.safe_load((tree / "examples" / "turnout.yaml").read_text())
    for provider in raw["providers"]:
        provider["base_url"] = f"http://127.0.0.1:{sim_port}" + SIMULATOR_PATHS.get(provider["kind"], "/v1")
    raw.setdefault("telemetry", {}).setdefault("prometheus", {})["port"] = 0
    sim = yaml.safe_load((tree / "examples" / "simulator.yaml").read_text())
    sim["time_scale"] = TIME_SCALE
    config, sim_config = tmp / "turnout.yaml", tmp / "simulator.yaml"
    config.write_text(yaml.safe_dump(raw))
    sim_config.write_text(yaml.safe_dump(sim))
    return config, sim_config


class _Simulator:
    """The provider simulator as a process that an outage kills and restarts on the same port."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int) -> None:
        self._argv, self._env, self.port = argv, env, port
        self.url = f"http://127.0.0.1:{port}"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        # Popen returns once the child is forked; an asyncio subprocess would be bound to one event
        # loop, and the first start runs in a loop of its own before the soak's.
        self._process = subprocess.Popen(  # noqa: ASYNC220
            self._argv, env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise RuntimeError(f"the simulator exited with {self._process.returncode}")
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError("the simulator did not start in 30 s")

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)


@dataclass
class _Tally:
    statuses: Counter[str] = field(default_factory=Counter)  # "Generate OK", "Route INVALID_ARGUMENT", ...
    hangs: int = 0
    worst_over_deadline_s: float = 0.0


@dataclass
class _Run:
    """Until when the soak runs; it ends early when the sidecar dies."""

    started: float
    stop: float
    died: asyncio.Event = field(default_factory=asyncio.Event)

    def going(self) -> bool:
        return time.monotonic() < self.stop and not self.died.is_set()


def _user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])


PROMPTS = (
    "Is this email spam? 'You won a prize, click here'",
    "Extract the invoice number from: Invoice INV-{n} due 2026-01-31",
    "Summarise in one line: the deploy failed at step {n} because the cache was cold",
    "Write a Python function that returns the {n}th Fibonacci number",
    "Explain circuit breakers in one paragraph, example {n}",
    "Translate to French: the meeting moved to room {n}",
)
HINTS = (
    ("", "", ""),
    ("", "classify", "free"),
    ("", "code", "pro"),
    ("", "chat", "enterprise"),
    ("balanced", "", ""),
    ("smart", "", ""),
    ("long-context", "", ""),
    ("support-chat", "triage", "free"),
    ("support-chat", "answer", "pro"),
)


def _hints(rng: random.Random) -> pb.RoutingHints:
    route, task_type, tier = rng.choice(HINTS)
    return pb.RoutingHints(route=route, task_type=task_type, user_tier=tier)


def _call(stub: pb_grpc.RouterServiceStub, rng: random.Random) -> tuple[str, Any]:
    """One call of the mix, not yet awaited: (its name in the tally, the awaitable)."""
    text = rng.choice(PROMPTS).format(n=rng.randrange(10_000))
    kind = rng.random()
    if kind < 0.40:
        return "Generate", stub.Generate(
            pb.GenerateRequest(messages=[_user(text)], hints=_hints(rng)), timeout=DEADLINE_S
        )
    if kind < 0.65:
        request = pb.GenerateStreamRequest(messages=[_user(text)], hints=_hints(rng))
        return "GenerateStream", _drain(stub.GenerateStream(request, timeout=DEADLINE_S))
    if kind < 0.85:
        return "Route", stub.Route(
            pb.RouteRequest(messages=[_user(text)], hints=_hints(rng)), timeout=DEADLINE_S
        )
    if kind < 0.88:
        return "ListModels", stub.ListModels(pb.ListModelsRequest(), timeout=DEADLINE_S)
    bad = rng.choice(
        (
            pb.GenerateRequest(),  # no messages: INVALID_ARGUMENT
            pb.GenerateRequest(messages=[pb.Message(content=[pb.ContentPart(text=text)])]),  # no role
            pb.GenerateRequest(messages=[_user(text)], hints=pb.RoutingHints(pinned_model="no-such-model")),
            pb.GenerateRequest(messages=[_user(text)], hints=pb.RoutingHints(route="no-such-route")),
        )
    )
    return "bad request", stub.Generate(bad, timeout=DEADLINE_S)


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass


async def _client(stub: pb_grpc.RouterServiceStub, rng: random.Random, run: _Run, tally: _Tally) -> None:
    while run.going():
        rpc, call = _call(stub, rng)
        started = time.monotonic()
        try:
            await asyncio.wait_for(call, DEADLINE_S + HANG_SLACK_S)
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            code = error.code()
        except TimeoutError:
            tally.hangs += 1
            tally.statuses[f"{rpc} hung"] += 1
            continue
        tally.worst_over_deadline_s = max(
            tally.worst_over_deadline_s, time.monotonic() - started - DEADLINE_S
        )
        tally.statuses[f"{rpc} {code.name}"] += 1


async def _faults(
    sim: _Simulator, models: list[str], rng: random.Random, run: _Run, log: Counter[str]
) -> None:
    """Arm a random fault every FAULT_EVERY_S; at 40% and 70% of the run (once, at half, in a run
    under 2 minutes) kill the simulator for OUTAGE_S (a tenth of the run when shorter), restart it."""
    duration = run.stop - run.started
    outages = [run.started + duration * share for share in ((0.4, 0.7) if duration >= 120 else (0.5,))]
    cleared = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while run.going():
            await asyncio.sleep(FAULT_EVERY_S)
            if outages and time.monotonic() >= outages[0]:
                outages.pop(0)
                sim.kill()
                log["full outage"] += 1
                await asyncio.sleep(min(OUTAGE_S, duration / 10))
                await sim.start()
                continue
            kind = rng.choice(FAULT_KINDS)
            fault: dict[str, Any] = {"kind": kind, "model": rng.choice([*models, "*"])}
            fault["count"] = rng.randint(1, 3) if kind == "hang" else rng.randint(1, 20)
            if kind == "slow":
                fault["factor"] = rng.choice((3, 10, 30))
            try:
                if time.monotonic() - cleared > CLEAR_FAULTS_EVERY_S:
                    cleared = time.monotonic()
                    async with session.delete(f"{sim.url}/_sim/faults"):
                        pass
                async with session.post(f"{sim.url}/_sim/faults", json=fault) as response:
                    log[kind if response.status == 201 else f"{kind} refused {response.status}"] += 1
            except aiohttp.ClientError as error:
                log[f"admin call failed: {type(error).__name__}"] += 1


async def _sample(pid: int, run: _Run, samples: list[Sample]) -> None:
    while run.going():
        read = read_process(pid)
        if read is None:
            run.died.set()
            return
        samples.append(Sample(round(time.monotonic() - run.started, 2), round(read[0], 2), read[1]))
        await asyncio.sleep(1.0)


async def _drive(
    address: str, pid: int, sim: _Simulator, models: list[str], minutes: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    tally, faults, samples = _Tally(), Counter[str](), list[Sample]()
    started = time.monotonic()
    run = _Run(started, started + 60 * minutes)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        await asyncio.gather(
            _sample(pid, run, samples),
            _faults(sim, models, random.Random(rng.random()), run, faults),
            *(_client(stub, random.Random(rng.random()), run, tally) for _ in range(CONCURRENCY)),
        )
    elapsed_s = time.monotonic() - started
    return {
        "tally": tally,
        "faults": faults,
        "samples": samples,
        "elapsed_s": elapsed_s,
        "upstream_left_open": await _hanging_upstream(sim),
    }


async def _hanging_upstream(sim: _Simulator) -> int:
    """Provider requests the simulator still holds open UPSTREAM_GRACE_S after the last call ended
    (its `hang` faults answer never): attempts the sidecar went on with after their call was over."""
    deadline = time.monotonic() + UPSTREAM_GRACE_S
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while True:
            async with session.get(f"{sim.url}/_sim/stats") as response:
                hanging = int((await response.json())["hanging"])
            if hanging == 0 or time.monotonic() > deadline:
                return hanging
            await asyncio.sleep(0.5)


def summarise(samples: Sequence[Sample], minutes: float) -> dict[str, Any]:
    """RSS and fd figures of a run, the slopes fitted after the warm-up."""
    warm = [s for s in samples if s.t_s >= WARMUP_SHARE * 60 * minutes] or list(samples)
    tenth = max(1, len(warm) // 10)
    return {
        "samples": len(samples),
        "rss_mb": {
            "start": samples[0].rss_mb,
            "after_warmup": warm[0].rss_mb,
            "end": samples[-1].rss_mb,
            "peak": max(s.rss_mb for s in samples),
            "slope_per_min": round(slope_per_min([(s.t_s, s.rss_mb) for s in warm]), 3),
        },
        "fds": {
            "start": samples[0].fds,
            "after_warmup": statistics.median_low([s.fds for s in warm[:tenth]]),
            "end": statistics.median_low([s.fds for s in warm[-tenth:]]),
            "max": max(s.fds for s in samples),
            "slope_per_min": round(slope_per_min([(s.t_s, s.fds) for s in warm]), 3),
        },
    }


def failures(result: dict[str, Any]) -> list[str]:
    """What makes the soak fail, each in a sentence; empty when it passed."""
    out = []
    if result["died"]:
        out.append(f"the sidecar died: {result['died']}")
    figures = result.get("memory")
    if figures:
        rss, fds = figures["rss_mb"], figures["fds"]
        bounds = result["bounds"]
        if rss["slope_per_min"] > bounds["rss_slope_mb_per_min"]:
            out.append(f"RSS grew {rss['slope_per_min']} MB/min, over {bounds['rss_slope_mb_per_min']}")
        if fds["end"] - fds["after_warmup"] > bounds["fd_growth"]:
            out.append(
                f"open fds grew from {fds['after_warmup']} to {fds['end']}, more than {bounds['fd_growth']}"
            )
    if result["hangs"]:
        out.append(f"{result['hangs']} calls outlived their deadline by more than {HANG_SLACK_S:g} s")
    if result.get("upstream_left_open"):
        out.append(
            f"{result['upstream_left_open']} provider requests still open {UPSTREAM_GRACE_S:g} s after "
            "the last call ended"
        )
    return out


def run_soak(tree: Path, python: str, minutes: float, seed: int = 1) -> dict[str, Any]:
    """Start the tree's sidecar and simulator, soak them, and return the figures (see `failures`)."""
    tree = tree.resolve()
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1"}
    probe = subprocess.run(
        [python, "-P", "-c", "import sidecar; print(sidecar.__file__)"],
        env=env,
        capture_output=True,
        text=True,
    )
    if not probe.stdout.startswith(str(tree)):
        raise RuntimeError(
            f"{python} imports the sidecar from {probe.stdout.strip() or probe.stderr}, not {tree}"
        )
    git = ["git", "-C", str(tree)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    if subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout.strip():
        commit = commit.strip() + " (with uncommitted changes)"
    with tempfile.TemporaryDirectory(prefix="turnout-soak-") as tmp, ExitStack() as running:
        sim_port = _free_port()
        config, sim_config = _configs(tree, Path(tmp), sim_port)
        sim_argv = [
            python,
            "-P",
            "-m",
            "sidecar",
            "simulate",
            "--config",
            str(sim_config),
            "--port",
            str(sim_port),
        ]
        sim = _Simulator(sim_argv, env, sim_port)
        running.callback(sim.kill)
        asyncio.run(sim.start())
        argv = [python, "-P", "-m", "sidecar", "serve", "--config", str(config), "--port", "0"]
        log = Path(tmp) / "sidecar.log"
        process, address = running.enter_context(_process(argv, env={"PYTHONPATH": str(tree)}, log=log))
        models = list(yaml.safe_load(sim_config.read_text())["models"])
        drove = asyncio.run(_drive(address, process.pid, sim, models, minutes, seed))
        code = process.poll()
        died = "" if code is None else f"exit code {code}; the log ends: " + log.read_text()[-2000:]
    tally: _Tally = drove["tally"]
    result: dict[str, Any] = {
        "tree": str(tree),
        "commit": commit.strip(),
        "minutes": minutes,
        "elapsed_s": round(drove["elapsed_s"], 1),
        "concurrency": CONCURRENCY,
        "deadline_s": DEADLINE_S,
        "requests": sum(tally.statuses.values()),
        "by_status": dict(sorted(tally.statuses.items())),
        "faults": dict(sorted(drove["faults"].items())),
        "hangs": tally.hangs,
        "worst_over_deadline_s": round(tally.worst_over_deadline_s, 2),
        "upstream_left_open": drove["upstream_left_open"],
        "died": died,
        "bounds": {
            "rss_slope_mb_per_min": RSS_SLOPE_MB_PER_MIN,
            "fd_growth": FD_GROWTH,
            "warmup_share": WARMUP_SHARE,
        },
        "memory": summarise(drove["samples"], minutes) if drove["samples"] else None,
        "trend": [[s.t_s, s.rss_mb, s.fds] for s in drove["samples"][:: max(1, len(drove["samples"]) // 60)]],
    }
    result["failures"] = failures(result)
    return result


def report(soak: dict[str, Any] | None) -> list[str]:
    """The soak section of REPORT.md: one row per labelled run."""
    if not soak:
        return []
    lines = [
        "## Soak: RSS and open fds under load with random provider faults (`make soak`)",
        "",
        f"A real sidecar process, {CONCURRENCY} clients (Generate, GenerateStream, Route, ListModels, "
        f"bad requests; {DEADLINE_S:g} s deadlines), a random simulator fault every {FAULT_EVERY_S:g} s "
        f"and one or two full outages (the simulator killed, restarted {OUTAGE_S:g} s later); slopes "
        f"fitted after the first {WARMUP_SHARE:.0%}. Fails on RSS over {RSS_SLOPE_MB_PER_MIN:g} MB/min, "
        f"fds up by more than {FD_GROWTH}, a call past its deadline or a dead sidecar "
        "(benchmarks/soak.py says why).",
        "",
        "| run | commit | minutes | calls | OK | errors by status | RSS start / end / peak MB | "
        "RSS MB/min (KB per call) | fds after warm-up / end / max | fds/min "
        "| hung calls / open upstream | verdict |",
        "|---|---|---:|---:|---:|---|---|---:|---|---:|---:|---|",
    ]
    for label, r in soak.items():
        ok = sum(n for k, n in r["by_status"].items() if k.endswith(" OK"))
        errors = Counter[str]()
        for k, n in r["by_status"].items():
            if not k.endswith(" OK"):
                errors[k.rsplit(" ", 1)[-1]] += n
        m = r["memory"] or {"rss_mb": {}, "fds": {}}
        rss, fds = m["rss_mb"], m["fds"]
        cells = [
            label,
            r["commit"],
            f"{r['minutes']:g}",
            r["requests"],
            ok,
            ", ".join(f"{k} {n}" for k, n in errors.most_common()) or "-",
            f"{rss.get('start')} / {rss.get('end')} / {rss.get('peak')}",
            _per_call(r, rss.get("slope_per_min")),
            f"{fds.get('after_warmup')} / {fds.get('end')} / {fds.get('max')}",
            fds.get("slope_per_min"),
            f"{r['hangs']} / {r.get('upstream_left_open', '-')}",
            "passed" if not r["failures"] else "**failed**: " + "; ".join(r["failures"]),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return [*lines, ""]


def _per_call(r: dict[str, Any], mb_per_min: float | None) -> str:
    """The RSS slope, and what it comes to per call at the run's rate (runs differ in calls/s)."""
    if mb_per_min is None or not r["requests"]:
        return "-"
    calls_per_min = r["requests"] / (r["elapsed_s"] / 60)
    return f"{mb_per_min:g} ({1024 * mb_per_min / calls_per_min:.2f})"


def _write(out: Path, label: str, result: dict[str, Any]) -> None:
    """Merge the run into OUT/results.json under soak.LABEL and rewrite OUT/REPORT.md."""
    from benchmarks import run  # run.py renders this module's section: imported here, not at the top

    results_file = out / "results.json"
    merged = (
        json.loads(results_file.read_text())
        if results_file.is_file()
        else {"machine": run._machine(), "quick": False}
    )
    merged.setdefault("soak", {})[label] = {**result, "measured_at": run._machine()}
    out.mkdir(parents=True, exist_ok=True)
    results_file.write_text(json.dumps(merged, indent=2) + "\n")
    (out / "REPORT.md").write_text(run._report(merged) + "\n")


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(f"soak: stopped by signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose sidecar is soaked")
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs it")
    parser.add_argument("--label", default="current", help="the run's name in the report (e.g. before)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where results.json and REPORT.md are")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes: more than 0, at most a day")
    # SIGTERM (and SIGINT, which a shell ignores in background jobs) unwind the soak, so that the
    # sidecar and the simulator it started are stopped too.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"soak: {args.minutes:g} min of {args.tree} ...", flush=True)
    result = run_soak(args.tree, args.python, args.minutes, args.seed)
    shown = {k: v for k, v in result.items() if k != "trend"}
    print(json.dumps(shown, indent=2))
    if not args.no_write:
        _write(args.out, args.label, result)
        print(f"wrote soak.{args.label} into {args.out / 'results.json'} and {args.out / 'REPORT.md'}")
    for failure in result["failures"]:
        print(f"soak FAILED: {failure}", file=sys.stderr)
    sys.exit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
