"""`make bench` / `make bench-quick`: run every benchmark section, write JSON and a Markdown report.

Results go to benchmarks/results/ (results.json, REPORT.md), stamped with the machine, the
versions and the commit. Sections compare side by side in one run, as ratios, because absolute
times drift on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import (
    hedge_bench,
    http_floor,
    instructions_bench,
    learned_bench,
    limits_bench,
    money_bench,
    policy_bench,
    proxy_bench,
    rpc_bench,
    soak,
)
from benchmarks.workload import TELEMETRY_GOAL_RATIO

RESULTS = Path(__file__).resolve().parent / "results"


def _machine() -> dict[str, Any]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=False)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
    }


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _summary(results: dict[str, Any]) -> list[str]:
    """One table of the targets the benchmarks measure, each with its figure and verdict; the
    sections below hold the detail. A section that did not run leaves its rows out."""
    rows: list[tuple[str, str, str]] = []
    p = results.get("policy")
    if p:
        full = p["full_uncached"]
        rows.append(
            (
                "decision time in process (microseconds, not milliseconds)",
                f"full route over {p['models']} models p50 {full['p50_us']} µs, p99 {full['p99_us']} µs",
                _verdict(full["p99_us"] < 1000),
            )
        )
    le = results.get("learned")
    if le:
        x = le["predict"]
        rows.append(
            (
                f"learned router inference p99 <= {learned_bench.GOAL_P99_US} µs",
                f"p50 {x['p50_us']} µs, p99 {x['p99_us']} µs",
                _verdict(x["p99_us"] <= learned_bench.GOAL_P99_US),
            )
        )
    t = (results.get("rpc") or {}).get("telemetry")
    if t:
        for name, on_off in t["rps_on_over_off"].items():
            ratios = ", ".join(f"{level[1:]}: {v}" for level, v in on_off.items())
            variant = name.removeprefix("+telemetry, ").removeprefix("+")
            rows.append(
                (
                    f"Route throughput with telemetry {variant} >= {TELEMETRY_GOAL_RATIO} x off",
                    f"ratio by concurrency {ratios}",
                    _verdict(min(on_off.values()) >= TELEMETRY_GOAL_RATIO),
                )
            )
    c = (results.get("proxy") or {}).get("comparison", {})
    if "added_at_goal_rate" in c:
        a = c["added_at_goal_rate"]
        if "skipped" in a:
            measured = f"not measured: Turnout {a['skipped']}"
            h = a.get("highest_measured")
            if h:
                measured += f"; at {h['rate']:g} req/s p50 {h['added_p50_ms']:+} ms"
                measured += f", p99 {h['added_p99_ms']:+} ms"
        else:
            share = a.get("share_of_best")
            measured = f"p50 {a['added_p50_ms']:+} ms, p99 {a['added_p99_ms']:+} ms"
            measured += f" (at {share:.0%} of Turnout's best closed-loop rate)" if share else ""
        rows.append(
            (
                f"added latency over direct at {a['rate']} req/s: "
                f"p50 <= {proxy_bench.GOAL_ADDED_P50_MS:g} ms, p99 <= {proxy_bench.GOAL_ADDED_P99_MS:g} ms",
                measured,
                _verdict(a["met"]),
            )
        )
    for key, what in proxy_bench.TELEMETRY_RUNS.items():
        if key in c:
            t = c[key]
            ratios = ", ".join(f"{level[1:]}: {v}" for level, v in t["rps"].items())
            cpu = t["cpu_ms_per_request"]
            rows.append(
                (
                    f"Generate throughput with telemetry on ({what}) >= {TELEMETRY_GOAL_RATIO} x off",
                    f"ratio by concurrency {ratios}; CPU {cpu['on']} vs {cpu['off']} ms per request",
                    _verdict(t["met"]),
                )
            )
    for key, path in (("vs_litellm_1w", ""), ("http_vs_litellm_1w", "HTTP front door: ")):
        if key not in c:
            continue
        v = c[key]
        ratio = proxy_bench.GOAL_ADDED_RATIO
        streams = f" (streams {v['throughput_stream']}x)" if "throughput_stream" in v else ""
        rows.append(
            (
                f"{path}throughput >= {proxy_bench.GOAL_THROUGHPUT_RATIO:g}x LiteLLM's "
                "(one worker / process each)",
                f"{v['throughput']}x{streams}",
                _verdict(v["throughput"] >= proxy_bench.GOAL_THROUGHPUT_RATIO),
            )
        )
        rows.append(
            (
                f"{path}added latency at concurrency 1 <= 1/{1 / ratio:g} of LiteLLM's",
                f"p50 {v['added_p50_c1']}, p99 {v['added_p99_c1']} of LiteLLM's",
                _verdict(max(v["added_p50_c1"], v["added_p99_c1"]) <= ratio),
            )
        )
    if "http_vs_portkey" in c:
        v = c["http_vs_portkey"]
        rows.append(
            (
                "HTTP front door against Portkey's gateway (no goal set)",
                f"throughput {v['throughput']}x; added latency at concurrency 1 p50 {v['added_p50_c1']}, "
                f"p99 {v['added_p99_c1']} of Portkey's",
                "reported",
            )
        )
    if "turnout_idle_rss" in c:
        measured = f"{c['turnout_idle_rss']['mb']} MB (the overhead bench's 2-model config)"
        verdict = _verdict(c["turnout_idle_rss"]["met"])
        mem = (results.get("rpc") or {}).get("sidecar_memory_mb")
        if mem:
            idle = mem["idle"]["VmRSS"]
            measured += f"; {idle} MB with the 50-model config, OpenAI tokenizers loaded"
            verdict += f"; with tokenizers {_verdict(idle <= proxy_bench.GOAL_IDLE_RSS_MB)}"
        rows.append((f"sidecar RSS idle <= {proxy_bench.GOAL_IDLE_RSS_MB:g} MB", measured, verdict))
    h = results.get("hedging")
    if h:
        extra = h["with_hedging"]["extra_requests_share"]
        rows.append(
            (
                f"hedging: p99 >= {hedge_bench.TARGET_P99_REDUCTION:.0%} lower for "
                f"<= {hedge_bench.TARGET_EXTRA_SHARE:.0%} extra requests",
                f"p99 {h['p99_reduction']:.0%} lower for {extra:.1%} extra",
                _verdict(h["target_met"]),
            )
        )
    money = results.get("money") or {}
    if "vs_frontier" in money:
        goal = money["target"]
        cells = "; ".join(
            f"{name} {v['cost_reduction']:.0%} cheaper, {v['accuracy_delta_points']:+.1f} pts"
            for name, v in money["vs_frontier"].items()
        )
        rows.append(
            (
                f"routed vs frontier alone on real outcomes: cost >= {goal['cost_reduction']:.0%} lower, "
                f"accuracy within {goal['accuracy_points']:g} points",
                cells,
                _verdict(any(v["target_met"] for v in money["vs_frontier"].values())),
            )
        )
    if not rows:
        return []
    return [
        "## Summary: the targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *(f"| {a} | {b} | {v} |" for a, b, v in rows),
        "",
        *_machine_speed(results),
    ]


# What the issues quote for this kind of machine: a minimal grpc.aio echo server's calls/s.
REFERENCE_ECHO_RPS = {"c1": 2400, "c64": 8000}


def _machine_speed(results: dict[str, Any]) -> list[str]:
    """How fast this run's machine was against the one the issues' absolute figures come from:
    the echo ceiling measured in the same run against the echo figures the issues quote. The
    absolute targets (added milliseconds, LiteLLM's req/s) scale with it; ratios measured side by
    side in one run do not."""
    echo = ((results.get("rpc") or {}).get("results") or {}).get("echo (ceiling)")
    if not echo or not all(level in echo for level in REFERENCE_ECHO_RPS):
        return []
    here = {level: echo[level]["rps"] for level in REFERENCE_ECHO_RPS}
    slower = sum(REFERENCE_ECHO_RPS[k] / here[k] for k in here) / len(here)
    text = (
        f"Machine speed in this run: a minimal grpc.aio echo server (benchmarks/echo_server.py, driven "
        f"by benchmarks/loadgen.py) did {here['c1']:g} calls/s at concurrency 1 and {here['c64']:g} at 64, "
        f"against the about {REFERENCE_ECHO_RPS['c1']} and {REFERENCE_ECHO_RPS['c64']} the issues quote "
        f"for this kind of machine: about {slower:.1f}x slower (part of it may be the load generator: "
        "the issues do not say which client they used). Absolute figures (added milliseconds, "
        "LiteLLM's requests/s against its reference) scale with the machine; the ratios measured side "
        "by side in one run do not."
    )
    lp = ((results.get("proxy") or {}).get("comparison") or {}).get("litellm_vs_reference")
    if lp:
        quoted = lp["reference"]["rps_per_worker"]
        text += (
            f" LiteLLM with one worker did {lp['rps_per_worker']:g} req/s here against the about {quoted} "
            f"quoted, {quoted / lp['rps_per_worker']:.1f}x fewer: the same order of slow-down."
        )
    return [text, ""]


def _instructions_section(x: dict[str, Any] | None) -> list[str]:
    """Instructions per Route call in process (benchmarks/instructions_bench.py)."""
    if not x:
        return []
    title = "## Instructions per Route call in process, telemetry on vs off (valgrind)"
    if "skipped" in x:
        return [title, "", f"Skipped: {x['skipped']}", ""]
    low, high = x["calls"]
    lines = [
        title,
        "",
        "Counted by cachegrind over the Route handler called in process (parse, check, route "
        "through the decision cache, respond; telemetry drained every "
        f"{x['drain_every']} calls, spans encoded for OTLP but not sent), the difference of runs "
        f"with {low} and {high} calls. It does "
        "not drift (two runs agree within ~1%); gRPC's C core and asyncio's network work are not in "
        "it, so the on/off ratio is larger than the throughput's.",
        "",
    ]
    if "measured_at" in x:
        at = x["measured_at"]
        lines += [f"Measured separately: {at['date']}, commit {at['commit']}.", ""]
    lines += ["| telemetry | instructions per call | over off | added by telemetry |", "|---|---:|---:|---:|"]
    for name, count in x["instructions_per_call"].items():
        over = x["over_off"].get(name)
        added = x["telemetry_instructions"].get(name)
        lines.append(
            f"| {name} | {count:,} | {over if over is not None else '1'} | "
            f"{f'{added:+,}' if added is not None else ''} |"
        )
    return [*lines, ""]


def _measured_apart(results: dict[str, Any]) -> list[str]:
    """Sections run again on their own after the full run (stamped `measured_at`), and when."""
    apart = [
        f"{name} ({x['measured_at']['date']}, commit {x['measured_at']['commit']})"
        for name, x in results.items()
        if isinstance(x, dict) and "measured_at" in x
    ]
    return [f"Measured again on their own: {'; '.join(apart)}.", ""] if apart else []


def _report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Turnout benchmark report",
        "",
        f"{m['date']}, commit {m['commit']}, Python {m['python']}, {m['cores']} cores ({m['cpu']}), "
        f"{'quick' if results['quick'] else 'full'} mode. "
        "Produced by `make bench`; raw figures in results.json.",
        "",
        *_measured_apart(results),
        *_summary(results),
    ]
    p = results.get("policy")
    if p:
        lines += [
            f"## Decision time in process ({p['route']}, {p['models']} models, "
            f"{p['requests']} request kinds)",
            "",
            "| case | p50 µs | p90 µs | p99 µs | mean µs |",
            "|---|---:|---:|---:|---:|",
        ]
        rows = {"full route, uncached": p["full_uncached"], "full route, decision cache": p["full_cached"]}
        rows.update(p["per_strategy"])
        for name, r in rows.items():
            lines.append(f"| {name} | {r['p50_us']} | {r['p90_us']} | {r['p99_us']} | {r['mean_us']} |")
        lines += [
            "",
            "p50 relative to the capability check alone: "
            + ", ".join(f"{k} {v}x" for k, v in p["per_strategy_ratio_to_baseline_p50"].items()),
            "",
        ]
    le = results.get("learned")
    if le:
        lines += [
            f"## Learned router inference in process ({le['artifact']}; {le['prompts']} prompts from "
            f"{le['prompt_source']}, median {le['median_prompt_chars']} characters)",
            "",
            "| operation | p50 µs | p90 µs | p99 µs | mean µs |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in (
            "predict",
            "predict_success_3_models",
            "features_only",
            "predict_numpy_sum_for_comparison",
        ):
            x = le.get(name)
            if x:
                cells = [name.replace("_", " "), x["p50_us"], x["p90_us"], x["p99_us"], x["mean_us"]]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        verdict = "met" if le["predict"]["p99_us"] <= learned_bench.GOAL_P99_US else "not met"
        goal = f"predict p99 <= {learned_bench.GOAL_P99_US} µs per typical prompt"
        lines += ["", f"Target ({goal}): {verdict}.", ""]
    r = results.get("rpc")
    if r and "skipped" not in r:
        lines += [
            f"## Route over gRPC on loopback ({r['load_generator']}, {r['calls_per_point']} calls per point)",
            "",
            "| target | concurrency | calls/s | p50 ms | p99 ms | errors | calls/s vs echo |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for target, points in r["results"].items():
            for level, x in points.items():
                ratio = r["rps_ratio_to_echo"].get(target, {}).get(level, 1.0)
                cells = [target, level[1:], x["rps"], x["p50_ms"], x["p99_ms"], x["errors"], ratio]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        t = r.get("telemetry")
        if t:
            lines += [
                "",
                f"Telemetry on vs off ({t['on']}; the sink took {t['trace_exports']} span batches, "
                f"{t['trace_export_mb']} MB, without decoding them): "
                f"calls/s with it on over calls/s of sidecar+cache, target at least {TELEMETRY_GOAL_RATIO}. "
                + (f"Measured by {t['method']}. " if "method" in t else "")
                + "The rounds of the table above give a noisier figure of the same (by rounds).",
                "",
                "| variant | 1 | 16 | 64 | target | quartiles at 64 | by rounds (1 / 16 / 64) |",
                "|---|---:|---:|---:|---|---|---|",
            ]
            for name, on_off in t["rps_on_over_off"].items():
                verdict = "met" if min(on_off.values()) >= TELEMETRY_GOAL_RATIO else "not met"
                q = (t.get("quartiles") or {}).get(name, {}).get("c64")
                rounds = (t.get("by_rounds") or {}).get(name)
                cells = [
                    name,
                    *(on_off[level] for level in ("c1", "c16", "c64")),
                    verdict,
                    f"{q[0]}-{q[1]}" if q else "-",
                    " / ".join(str(rounds[level]) for level in ("c1", "c16", "c64")) if rounds else "-",
                ]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        ps = r.get("per_strategy_c1")
        if ps:
            in_process = (results.get("policy") or {}).get("per_strategy", {}) | {
                "full route, uncached": (results.get("policy") or {}).get("full_uncached", {})
            }
            lines += [
                "",
                "Decision time per strategy over the Route RPC (concurrency 1, "
                f"{r['per_strategy_calls']} calls each, rounds alternating with the echo; the 50 models "
                "of the in-process table, the request of the table above, decision cache off, telemetry "
                "off): p50 over the echo's is what the sidecar adds to a call with that route.",
                "",
                "| route | p50 ms | p99 ms | p50 over echo µs | in process p50 µs | errors |",
                "|---|---:|---:|---:|---:|---:|",
            ]
            for label, x in ps.items():
                over = "-" if x["p50_over_echo_us"] is None else x["p50_over_echo_us"]
                local = in_process.get(label, {}).get("p50_us", "-")
                cells = [label, x["p50_ms"], x["p99_ms"], over, local, x["errors"]]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        mem = r["sidecar_memory_mb"]
        lines += [
            "",
            f"Sidecar memory (50-model config, tokenizers loaded): idle RSS {mem['idle']['VmRSS']} MB; "
            f"after the load RSS {mem['after_load']['VmRSS']} MB, peak {mem['after_load']['VmHWM']} MB.",
            "",
        ]
    elif r:
        lines += ["## Route over gRPC", "", f"Skipped: {r['skipped']}", ""]
    lines += _instructions_section(results.get("instructions"))
    h = results.get("hedging")
    if h:
        prof = h["profile"]
        lines += [
            "## Hedging against a heavy tail (Generate through the sidecar; "
            f"{prof['tail_probability']:.0%} of answers {prof['tail_multiplier']:g}x slower; "
            f"{h['requests_per_route']} requests per route, alternating; concurrency {h['concurrency']})",
            "",
            "| route | hedge delay s | requests | p50 ms | p95 ms | p99 ms | mean ms "
            "| extra requests | hedges won |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        delays = {"without_hedging": "-", "with_hedging": h["hedge_delay_s"]}
        delays["with_later_hedging"] = h.get("late_hedge_delay_s", "-")
        for name, delay in delays.items():
            x = h.get(name)
            if x is None:
                continue
            cells = [name.replace("_", " "), delay, x["requests"], x["p50_ms"], x["p95_ms"], x["p99_ms"]]
            cells += [x["mean_ms"], f"{x['extra_requests_share']:.1%}", x.get("hedge_wins", "-")]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        verdict = "met" if h.get("target_met") else "not met"
        lines += [
            "",
            f"p99 {h['p99_reduction']:.0%} lower, p95 {h['p95_reduction']:.0%} lower with hedging at the "
            f"warm-up p90 of the first choice's latency; target (p99 at least 40% lower for at most 10% "
            f"extra requests): {verdict}.",
        ]
        late = h.get("with_later_hedging")
        if late is not None:
            lines.append(
                f"Hedging later ({h['late_hedge_delay_s']} s): {late['extra_requests_share']:.1%} extra "
                f"requests, p99 {h['late_p99_reduction']:.0%} lower."
            )
        live = h.get("live_p95_s")
        if live is not None:
            where = "inside the tail, too late to help" if live > 2 * h["hedge_delay_s"] else "near the p90"
            lines.append(f"The default hedge delay, the live p95, was {live} s after the warm-up: {where}.")
        lines.append("")
    if results.get("limits"):
        lines += limits_bench.report(results["limits"])
    if results.get("proxy"):
        lines += proxy_bench.report(results["proxy"])
    if results.get("http_floor"):
        lines += http_floor.report(results["http_floor"])
    if results.get("money"):
        lines += money_bench.report(results["money"])
    lines += soak.report(results.get("soak"))
    return "\n".join(lines)


def _floor(quick: bool) -> dict[str, Any]:
    return http_floor.run(rounds=2 if quick else 8, calls=60 if quick else 300)


# The sections `--only` reruns on their own, in the mode (quick or full) of the results they join.
_ALONE: dict[str, Callable[[bool], dict[str, Any]]] = {
    "instructions": instructions_bench.run,
    "proxy": proxy_bench.run,
    "http_floor": _floor,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, to keep the harness working in CI")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: rewrite OUT/REPORT.md from OUT/results.json (after a change to the report)",
    )
    parser.add_argument(
        "--only",
        choices=sorted(_ALONE),
        help="run this section alone and merge it into OUT/results.json (stamped with when and where)",
    )
    args = parser.parse_args()
    results_file = args.out / "results.json"
    if (args.only or args.render) and not results_file.is_file():
        flag = "--only" if args.only else "--render"
        parser.error(f"{flag}: {results_file} not found; run the benchmarks first")
    if args.only:
        merged = json.loads(results_file.read_text())
        merged[args.only] = {**_ALONE[args.only](merged["quick"]), "measured_at": _machine()}
        results_file.write_text(json.dumps(merged, indent=2) + "\n")
        (args.out / "REPORT.md").write_text(_report(merged) + "\n")
        print(f"wrote {args.only} into {results_file} and {args.out / 'REPORT.md'}")
        return
    if args.render:
        results = json.loads(results_file.read_text())
        if results.get("proxy"):  # derived figures follow the current comparison code
            results["proxy"]["comparison"] = proxy_bench._compare(results["proxy"])
            results_file.write_text(json.dumps(results, indent=2) + "\n")
        (args.out / "REPORT.md").write_text(_report(results) + "\n")
        print(f"wrote {args.out / 'REPORT.md'} (and the comparisons in results.json)")
        return
    results: dict[str, Any] = {"machine": _machine(), "quick": args.quick}
    print("benchmark: decision time in process ...", flush=True)
    results["policy"] = policy_bench.run(args.quick)
    print("benchmark: learned router inference ...", flush=True)
    results["learned"] = learned_bench.run(args.quick)
    print("benchmark: Route over gRPC ...", flush=True)
    results["rpc"] = rpc_bench.run(args.quick)
    print("benchmark: instructions per Route call in process (valgrind) ...", flush=True)
    results["instructions"] = instructions_bench.run(args.quick)
    print("benchmark: overhead and throughput, direct vs Turnout vs LiteLLM ...", flush=True)
    results["proxy"] = proxy_bench.run(args.quick)
    print("benchmark: HTTP added latency at concurrency 1 against its floor ...", flush=True)
    results["http_floor"] = _floor(args.quick)
    print("benchmark: hedging against a heavy tail ...", flush=True)
    results["hedging"] = hedge_bench.run(args.quick)
    print("benchmark: Generate with budgets off, in process, on Redis ...", flush=True)
    results["limits"] = limits_bench.run(args.quick)
    print("benchmark: the money table on real outcomes (replay) ...", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results["money"] = money_bench.run(args.quick, out_dir=args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    if results_file.is_file():  # `make soak` runs apart (10 min); its last runs stay, stamped when
        results["soak"] = json.loads(results_file.read_text()).get("soak") or {}
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = _report(results)
    (args.out / "REPORT.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
