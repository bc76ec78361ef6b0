"""The money table on real outcomes: frontier alone vs routed, end to end through the sidecar.

Every prompt of RouterBench's test split (deduplicated against train; benchmarks/replay/data.py)
goes to the real sidecar (`python -m sidecar serve`, its own process) over gRPC Generate, once per
route, interleaved. The sidecar calls the provider simulator in replay mode
(simulator/turnout_simulator/replay.py). The simulator answers each model with the text that model really
answered to that prompt (RouterBench `original/*.csv`), paces it by the model's latency profile and
reports usage at about 4 characters per token. RouterBench's own recorded costs count tokens the
same way (see benchmarks/replay/models.yaml). The sidecar prices that usage with the registry's list
prices, as it would in production. Accuracy is the recorded score of the model whose answer came
back, and the text is checked against the recording (benchmarks/replay/figures.py).

What is sent: the dataset's question as the last user message (what the router reads and was
trained on). Before it goes a system message with what the original prompt carried ahead of the
question (ARC and Winogrande: instructions and five solved examples), so each model is asked exactly
what it answered. `hints.task_type` is set as an application would set it for each of its features:
`multiple_choice` (ARC, Winogrande) or `code` (MBPP).

Routes (CHEAP = mixtral-8x7b, FRONTIER = gpt-4-1106-preview; the config is `routes()` below):

    frontier   FRONTIER only.
    rules      What a user might write without seeing any outcomes: code -> FRONTIER; multiple
               choice -> CHEAP (FRONTIER as a fallback); anything else -> FRONTIER.
    learned    The shipped learned router, `classifier: {name: learned, target: {quality: 0.95}}`
               over [CHEAP, FRONTIER]: CHEAP first when P(CHEAP suffices) clears the threshold
               calibrated for the target, else FRONTIER first.
    learned-n  The shipped `predicted_success` over all 11 models (quality 0.95): the cheapest model
               whose predicted success is within 95% of the best one's goes first.
    consensus  Rules by task type, then a consensus stage. Code -> gpt-3.5-turbo (FRONTIER as a
               fallback). Multiple choice -> mixtral, Yi-34B and llama-2-70b asked at once; their
               letter is accepted when all three agree, else FRONTIER answers. Every call is paid.
    cascade    CHEAP first, escalating to FRONTIER on what a cascade can observe without the answer
               key. (1) A format check (`expected_patterns`): escalate when the answer is neither
               a bare choice letter nor contains code. (2) Low confidence: a mean token
               logprob below -0.5. RouterBench recorded no logprobs, so the simulator draws them
               from the model's profile, and they do NOT depend on whether the answer was right:
               (2) escalates a random share of short answers. (1) is a real signal but a rare one
               (mixtral breaks the format on 7 of the 943 prompts, all of them wrong ones). This is
               the weakest row: a cascade without an informative confidence signal.

Target: routed vs frontier alone, cost at least 60% lower with accuracy within 2 points.

    run(quick, out_dir=None) -> dict     quick: a stratified sample of 100 prompts (seeded), about a
                                         minute; full: all 943, about 5 minutes. With out_dir, also
                                         writes money.png there. Without ../shared/data:
                                         {"skipped": "../shared/data not found"}.
    report(results) -> list[str]         the Markdown section (links money.png when drawn).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import yaml
from turnout_simulator import ModelProfile, SimulatorConfig, start_simulator
from turnout_simulator.config import ReplaySettings
from turnout_simulator.replay import ReplayBook

from benchmarks.replay.data import Prompt, load_prompts, stratified_sample
from benchmarks.replay.figures import (
    TARGET_ACCURACY_POINTS,
    TARGET_COST_REDUCTION,
    Served,
    compare,
    offline_frontier,
    offline_oracles,
    offline_single_models,
    summarize,
    verdict,
)
from benchmarks.replay.plot import plot
from sidecar.offline.training.data import ROUTERBENCH
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parent.parent
MODELS_FILE = Path(__file__).resolve().parent / "replay" / "models.yaml"
SKIPPED = "../shared/data not found"
FRONTIER = "gpt-4-1106-preview"
CHEAP = "mistralai/mixtral-8x7b-chat"
VOTERS = (CHEAP, "zero-one-ai/Yi-34B-Chat", "meta/llama-2-70b-chat")
CODER = "gpt-3.5-turbo-1106"
TASK_TYPES = {"arc-challenge": "multiple_choice", "winogrande": "multiple_choice", "mbpp": "code"}
QUICK_SAMPLE = 100
SEED = 7
# Escalate unless the answer is a bare choice letter ("B", "(B)", "B.") or contains code: the
# cascade's `expected_patterns` (RE2, case-insensitive, on the first 400 characters; `$` is the end).
FORMAT_CHECK = (r"^\s*\(?[A-E]\)?[.:]?\s*$", r"\bdef |```")
LOW_CONFIDENCE_LOGPROB = -0.5
REQUEST_TIMEOUT_S = 300.0


def routes(models: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The routes under test, as the sidecar config's `routes:` entries (without their names)."""
    code = {"name": "code", "match": {"task_types": ["code"]}, "models": [FRONTIER, CHEAP]}
    choice = {
        "name": "multiple-choice",
        "match": {"task_types": ["multiple_choice"]},
        "models": [CHEAP, FRONTIER],
    }
    # Chosen on the train split only (docs/decisions/050-answer-aware-cascades.md): code goes to the
    # cheap model that codes as well as the frontier there (two models: no vote, a fallback); a
    # choice is accepted when all three voters give the same letter, else the frontier answers.
    vote_code = {"name": "code", "match": {"task_types": ["code"]}, "models": [CODER, FRONTIER]}
    vote_choice = {
        "name": "multiple-choice",
        "match": {"task_types": ["multiple_choice"]},
        "models": [*VOTERS, FRONTIER],
    }
    return {
        "frontier": {"models": [FRONTIER]},
        "rules": {"models": [FRONTIER, CHEAP], "strategies": [{"rules": {"rules": [code, choice]}}]},
        "learned": {
            "models": [CHEAP, FRONTIER],
            "strategies": [{"classifier": {"name": "learned", "target": {"quality": 0.95}}}],
        },
        "learned-n": {
            "models": list(models),
            "strategies": [{"predicted_success": {"models": {m: m for m in models}, "quality": 0.95}}],
        },
        "consensus": {
            "models": [FRONTIER, *VOTERS, CODER],
            "strategies": [
                {"rules": {"rules": [vote_code, vote_choice]}},
                {"consensus": {"voters": len(VOTERS), "agree": "choice"}},
            ],
        },
        "cascade": {
            "models": [CHEAP, FRONTIER],
            "strategies": [
                {"cascade": {"max_stages": 2, "escalate_on": ["refusal", "length", "low_confidence"]}}
            ],
            "execution": {
                "low_confidence_logprob": LOW_CONFIDENCE_LOGPROB,
                "expected_patterns": list(FORMAT_CHECK),
            },
        },
    }


# --- the configs ---------------------------------------------------------------------------------


def load_models(path: Path = MODELS_FILE) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))["models"]
    return models


def simulator_config(
    models: Mapping[str, Mapping[str, Any]], replay: ReplaySettings, time_scale: float
) -> SimulatorConfig:
    """Each model's latency profile (the spread is the simulator's default shape) and replay."""
    profiles = {
        name: ModelProfile(
            ttft_ms=m["ttft_ms"],
            tokens_per_second=m["tokens_per_second"],
            jitter=0.25,
            tail_probability=0.02,
            tail_multiplier=3.0,
            confidence=m["confidence"],
            context_window=m["context_window"],
            max_output_tokens=m["max_output_tokens"],
        )
        for name, m in models.items()
    }
    return SimulatorConfig(seed=SEED, time_scale=time_scale, models=profiles, replay=replay)


def sidecar_config(models: Mapping[str, Mapping[str, Any]], base_url: str) -> dict[str, Any]:
    """One OpenAI-compatible provider (the simulator), the models at their prices, the routes."""
    registry = [
        {
            "name": name,
            "provider": "replay",
            "price": dict(m["price"]),
            "context_window": m["context_window"],
            "max_output_tokens": m["max_output_tokens"],
            "capabilities": ["streaming"],
            "quality": m["quality"],
            "typical_latency_s": round(m["ttft_ms"] / 1000 + 50 / m["tokens_per_second"], 2),
        }
        for name, m in models.items()
    ]
    return {
        "version": 1,
        "server": {"host": "127.0.0.1", "port": 0, "reload_interval_s": 0, "default_timeout_s": 300},
        "providers": [{"name": "replay", "kind": "openai", "base_url": base_url, "request_timeout_s": 240}],
        "models": registry,
        "routes": [{"name": name, **route} for name, route in routes(list(models)).items()],
        "telemetry": {
            "traces": "none",
            "metrics": "none",
            "prometheus": {"enabled": False},
            "request_log": False,
        },
    }


@contextmanager
def serving(config_path: Path) -> Iterator[str]:
    """`python -m sidecar serve` in its own process; yields its address once it listens."""
    log_path = config_path.with_suffix(".log")
    args = [sys.executable, "-m", "sidecar", "--log-level", "warning", "serve", "--config", str(config_path)]
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, env=dict(os.environ)
        )
        try:
            assert proc.stdout is not None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                found = re.search(r"listening on (\S+:\d+)", line)
                if found:
                    yield found.group(1)
                    return
                if not line and proc.poll() is not None:
                    tail = log_path.read_text()[-2000:]
                    raise RuntimeError(f"the sidecar exited ({proc.returncode}) before listening: {tail}")
            raise RuntimeError("the sidecar did not start within 60 s")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


# --- driving it ----------------------------------------------------------------------------------


def request(prompt: Prompt, route: str) -> pb.GenerateRequest:
    messages = [pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=prompt.question)])]
    if prompt.context:
        messages.insert(0, pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text=prompt.context)]))
    hints = pb.RoutingHints(route=route, task_type=TASK_TYPES.get(prompt.task, ""))
    return pb.GenerateRequest(messages=messages, hints=hints)


async def drive(address: str, jobs: Sequence[tuple[str, Prompt]], concurrency: int) -> list[Served]:
    """Send every (route, prompt), in order, from `concurrency` workers sharing one queue."""
    out: list[Served] = []
    queue = iter(jobs)
    loop = asyncio.get_running_loop()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)

        async def worker() -> None:
            for route, prompt in queue:
                started = loop.time()
                try:
                    r = await stub.Generate(request(prompt, route), timeout=REQUEST_TIMEOUT_S)
                except grpc.aio.AioRpcError as exc:
                    out.append(Served(route, prompt.sample_id, error=f"{exc.code().name}: {exc.details()}"))
                    continue
                out.append(
                    Served(
                        route=route,
                        sample_id=prompt.sample_id,
                        model=r.model,
                        text=r.output.text,
                        latency_s=loop.time() - started,
                        cost_usd_nanos=r.total_cost_usd_nanos,
                        tokens=r.usage.input_tokens + r.usage.output_tokens,
                        billed=tuple(a.model for a in r.attempts if a.outcome == pb.ATTEMPT_OUTCOME_SUCCESS),
                        escalated=any(a.escalated for a in r.attempts),
                    )
                )

        async with asyncio.TaskGroup() as tasks:
            for _ in range(concurrency):
                tasks.create_task(worker())
    return out


async def _measure(
    prompts: Sequence[Prompt],
    models: Mapping[str, Mapping[str, Any]],
    replay: ReplaySettings,
    *,
    concurrency: int,
    time_scale: float,
) -> tuple[dict[str, list[Served]], ReplayBook, float]:
    """Start the simulator (in process) and the sidecar (a process), send every job, stop both."""
    names = list(routes(list(models)))
    simulator = await start_simulator(simulator_config(models, replay, time_scale))
    try:
        book = simulator.state.replay
        assert book is not None
        with tempfile.TemporaryDirectory(prefix="turnout-money-") as tmp:
            config = Path(tmp) / "turnout.yaml"
            config.write_text(yaml.safe_dump(sidecar_config(models, simulator.base_url), sort_keys=False))
            with serving(config) as address:
                jobs = [(route, p) for p in prompts for route in names]  # interleaved: same moments
                started = time.monotonic()
                served = await drive(address, jobs, concurrency)
                elapsed = time.monotonic() - started
    finally:
        await simulator.close()
    by_route: dict[str, list[Served]] = {name: [] for name in names}
    for s in served:
        by_route[s.route].append(s)
    return by_route, book, elapsed


def run(
    quick: bool,
    out_dir: Path | None = None,
    *,
    data: Path | None = None,
    models_file: Path = MODELS_FILE,
    time_scale: float = 1.0,
    concurrency: int | None = None,
) -> dict[str, Any]:
    """Measure every route; with `out_dir`, also write money.png there. `data` defaults to the
    shared RouterBench subset; recorded answers come from the `original/` folder beside it."""
    data = data if data is not None else ROUTERBENCH
    if not data.is_file():
        return {"skipped": SKIPPED}
    original = data.parent / "original"
    models = load_models(models_file)
    loaded = load_prompts(data, original, list(models))
    prompts = stratified_sample(loaded.prompts, QUICK_SAMPLE, SEED) if quick else list(loaded.prompts)
    responses = tuple(sorted(original.glob("*_test.csv"))) if original.is_dir() else ()
    replay = ReplaySettings(dataset=data, split="test", responses=responses)
    concurrency = concurrency or 32
    by_route, book, elapsed = asyncio.run(
        _measure(prompts, models, replay, concurrency=concurrency, time_scale=time_scale)
    )
    by_id = {p.sample_id: p for p in prompts}
    figures = {name: summarize(served, by_id, book) for name, served in by_route.items()}
    results: dict[str, Any] = {
        "data": {**loaded.facts, "sent": len(prompts), "tasks": dict(Counter(p.task for p in prompts))},
        "answers": "recorded text" if responses else "marker",
        "quick": quick,
        "concurrency": concurrency,
        "time_scale": time_scale,
        "elapsed_s": round(elapsed, 1),
        "frontier_model": FRONTIER,
        "cheap_model": CHEAP,
        "prices_per_mtok": {name: m["price"] for name, m in models.items()},
        "routes": figures,
        "vs_frontier": {n: compare(f, figures["frontier"]) for n, f in figures.items() if n != "frontier"},
        "offline_frontier": offline_frontier(prompts, book, FRONTIER, models[FRONTIER]["price"]),
        "single_models_offline": offline_single_models(prompts, FRONTIER),
        "oracles_offline": offline_oracles(prompts, FRONTIER, CHEAP),
        "target": {"cost_reduction": TARGET_COST_REDUCTION, "accuracy_points": TARGET_ACCURACY_POINTS},
        "cascade_signals": {
            "format_check": list(FORMAT_CHECK),
            "low_confidence_logprob": LOW_CONFIDENCE_LOGPROB,
        },
    }
    if out_dir is not None:
        results["plot"] = plot(results, out_dir / "money.png")
    return results


# --- the report ----------------------------------------------------------------------------------


def _usd(x: float) -> str:
    return f"${x:.6f}" if x < 0.01 else f"${x:.4f}"


def _row(name: str, f: Mapping[str, Any], v: Mapping[str, Any] | None) -> str:
    shares = ", ".join(f"{m.rsplit('/', 1)[-1]} {s:.0%}" for m, s in list(f["model_share"].items())[:3])
    if f["escalated_share"]:
        shares += f"; {f['escalated_share']:.0%} escalated"
    cells = [
        f"**{name}**",
        f"{f['accuracy']:.1%}",
        "-" if v is None else f"{v['accuracy_delta_points']:+.1f} pts",
        _usd(f["cost_per_request_usd"]),
        _usd(f["cost_per_1k_tokens_usd"]),
        "-" if v is None else f"{-v['cost_reduction']:+.0%}",
        "-" if v is None else f"{-v['recorded_cost_reduction']:+.0%}",
        f"{f['p50_ms'] / 1000:.2f} s",
        f"{f['p95_ms'] / 1000:.2f} s",
        shares,
        "-" if v is None else ("**met**" if v["target_met"] else "not met"),
    ]
    return "| " + " | ".join(cells) + " |"


def report(results: Mapping[str, Any]) -> list[str]:
    """The Markdown section for benchmarks/results/REPORT.md."""
    title = "## The money table: frontier alone vs routed, on real outcomes"
    if "skipped" in results:
        return [title, "", f"skipped: {results['skipped']}", ""]
    d = results["data"]
    figures = results["routes"]
    versus = results["vs_frontier"]
    frontier = figures["frontier"]
    off = results["offline_frontier"]
    oracle = results["oracles_offline"]
    tasks = ", ".join(f"{t} {n}" for t, n in sorted(d["tasks"].items()))
    verified = sum(f["answers_verified"] for f in figures.values())
    sent = sum(f["requests"] for f in figures.values())
    errors = sum(f["errors"] for f in figures.values())
    lines = [
        title,
        "",
        f"RouterBench test split, deduplicated against train: {d['prompts']} prompts "
        f"({d['dropped_in_train']} in train, {d['dropped_repeated']} repeated and "
        f"{d['dropped_unscored']} without every model's score left out). {d['sent']} sent per route"
        + (" (quick: a stratified sample)" if results["quick"] else "")
        + f": {tasks}. Each answer is the {results['answers']} of the model that answered, replayed by "
        f"the simulator behind `turnout serve`, over gRPC Generate (concurrency {results['concurrency']}, "
        f"{results['elapsed_s']} s in all). Frontier: {results['frontier_model']}; cheap: "
        f"{results['cheap_model']}. Prices and latency profiles: approximate public figures of the time "
        "(benchmarks/replay/models.yaml).",
        "",
        "| route | accuracy | vs frontier | cost / request | cost / 1k tokens | cost vs frontier "
        "| recorded cost vs frontier | P50 | P95 | answered by | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *(_row(name, f, versus.get(name)) for name, f in figures.items()),
        "",
        f"Target (cost at least {TARGET_COST_REDUCTION:.0%} lower than the frontier alone, accuracy within "
        f"{TARGET_ACCURACY_POINTS:g} points): {verdict(versus)}",
        "",
        f"Cross-check with the data alone (frontier): accuracy {off['accuracy']:.1%} from its recorded "
        f"scores, {frontier['accuracy']:.1%} measured. Billed {_usd(frontier['total_cost_usd'])}, against "
        f"{_usd(off['expected_cost_usd'])} expected (registry price x the simulator's token count) and "
        f"{_usd(off['recorded_cost_usd'])} recorded by RouterBench. {verified} of {sent} answers matched the "
        f"recording of the model that answered, with {errors} errors.",
        "",
        f"Headroom, offline with the answer key (no router can do this): the cheap model unless it is "
        f"wrong and the frontier right, {oracle['pair']['accuracy']:.1%} at "
        f"{oracle['pair']['recorded_cost_vs_frontier']:.0%} of the frontier's recorded cost; the cheapest "
        f"model that is right, {oracle['all_models']['accuracy']:.1%} at "
        f"{oracle['all_models']['recorded_cost_vs_frontier']:.0%}.",
        "",
        "Cost per 1k tokens = every billed attempt's cost / (input + output tokens of the answers delivered) "
        'x 1000. "Recorded cost" prices the same routing decisions with RouterBench\'s recorded per-call '
        "costs instead of the registry's prices. Latency is measured at the client. The models' latency "
        "profiles are approximate public figures, so read P50 and P95 as indicative.",
        "",
        "What the cascade sees: only the cheap model's answer. It escalates when a format check fails "
        f"(the answer is neither a bare choice letter nor code) or when the mean token logprob is below "
        f"{LOW_CONFIDENCE_LOGPROB}. RouterBench recorded no logprobs, so the simulator draws them from each "
        "model's profile, independently of correctness. The confidence trigger is therefore a random "
        "escalation, and this row is a lower bound for a cascade with a calibrated signal.",
        "",
    ]
    if results.get("plot"):
        lines += [f"![accuracy vs cost and latency per route]({results['plot']})", ""]
    return lines


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, help="write money.json, money.md and money.png here")
    args = parser.parse_args()
    outcome = run(args.quick, args.out)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "money.json").write_text(json.dumps(outcome, indent=2) + "\n")
        (args.out / "money.md").write_text("\n".join(report(outcome)) + "\n")
    print("\n".join(report(outcome)))
