"""The money bench's figures: per route from what the client received, and offline from the data.

Accuracy is the recorded score of the model that answered. The answer's text is checked against
the recording of that model (`answers_verified`), so a wrong model or a mangled answer shows up.
An error counts as a wrong answer and costs nothing. Cost per 1k tokens is every billed attempt's
cost over the input + output tokens of the answers delivered, so a cascade's discarded first answer
counts as cost and not as tokens. "Recorded cost" prices the same routing decisions (every billed
attempt) with RouterBench's recorded per-call costs instead of the registry's prices.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from turnout_simulator.replay import ReplayBook
from turnout_simulator.tokens import CHARS_PER_TOKEN, estimate_prompt

from benchmarks.replay.data import Prompt
from sidecar.offline.evaluation.dataset import normalize_prompt

TARGET_COST_REDUCTION = 0.60
TARGET_ACCURACY_POINTS = 2.0


@dataclass(frozen=True, slots=True)
class Served:
    """One answer as the client received it (or the error it got)."""

    route: str
    sample_id: str
    model: str = ""
    text: str = ""
    latency_s: float = 0.0
    cost_usd_nanos: int = 0  # every billed attempt
    tokens: int = 0  # input + output of the answer delivered
    billed: tuple[str, ...] = ()  # the models of the billed (successful) attempts
    escalated: bool = False
    error: str = ""


def _pct(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def expected_text(book: ReplayBook, prompt: Prompt, model: str) -> str | None:
    """What the simulator replays for `model` on this prompt (the recorded text or the marker)."""
    outcomes = book.outcomes.get(normalize_prompt(prompt.question))
    outcome = outcomes.get(model) if outcomes is not None else None
    return outcome.answer_text if outcome is not None else None


def summarize(served: Sequence[Served], prompts: Mapping[str, Prompt], book: ReplayBook) -> dict[str, Any]:
    """One route's figures."""
    answered = [s for s in served if not s.error]
    n = len(served)
    correct = sum(prompts[s.sample_id].scores[s.model] for s in answered)
    verified = sum(s.text == expected_text(book, prompts[s.sample_id], s.model) for s in answered)
    cost = sum(s.cost_usd_nanos for s in answered) / 1e9
    tokens = sum(s.tokens for s in answered)
    recorded = sum(prompts[s.sample_id].recorded_cost[m] for s in answered for m in s.billed)
    latencies = sorted(s.latency_s for s in answered)
    shares = Counter(s.model for s in answered)
    return {
        "requests": n,
        "errors": n - len(answered),
        "error_examples": sorted({s.error for s in served if s.error})[:3],
        "answers_verified": verified,
        "accuracy": round(correct / n, 4) if n else math.nan,
        "total_cost_usd": round(cost, 9),
        "cost_per_request_usd": round(cost / n, 9) if n else math.nan,
        "tokens_delivered": tokens,
        "cost_per_1k_tokens_usd": round(cost / tokens * 1000, 9) if tokens else math.nan,
        "recorded_cost_usd": round(recorded, 6),
        "p50_ms": round(_pct(latencies, 0.50) * 1000, 1),
        "p95_ms": round(_pct(latencies, 0.95) * 1000, 1),
        "p99_ms": round(_pct(latencies, 0.99) * 1000, 1),
        "model_share": {m: round(c / n, 4) for m, c in shares.most_common()},
        "escalated_share": round(sum(s.escalated for s in answered) / n, 4) if n else 0.0,
    }


def compare(route: Mapping[str, Any], frontier: Mapping[str, Any]) -> dict[str, Any]:
    """A route against the frontier alone on the same prompts, and whether it meets the target."""
    cut = 1 - route["total_cost_usd"] / frontier["total_cost_usd"]
    delta = (route["accuracy"] - frontier["accuracy"]) * 100
    per_1k = 1 - route["cost_per_1k_tokens_usd"] / frontier["cost_per_1k_tokens_usd"]
    return {
        "cost_reduction": round(cut, 4),
        "cost_per_1k_reduction": round(per_1k, 4),
        "recorded_cost_reduction": round(1 - route["recorded_cost_usd"] / frontier["recorded_cost_usd"], 4),
        "accuracy_delta_points": round(delta, 2),
        "p95_ratio": round(route["p95_ms"] / frontier["p95_ms"], 3),
        "target_met": cut >= TARGET_COST_REDUCTION and delta >= -TARGET_ACCURACY_POINTS,
    }


def offline_frontier(
    prompts: Sequence[Prompt], book: ReplayBook, frontier: str, price: Mapping[str, float]
) -> dict[str, Any]:
    """The frontier's figures from the data alone: its recorded scores and costs, and what the
    sidecar should bill for the replayed answers (registry price x the simulator's token count,
    rounded per call to the nano-dollar as the sidecar does)."""
    expected_nanos = 0
    for p in prompts:
        tokens_in = estimate_prompt(p.messages())
        tokens_out = math.ceil(len(expected_text(book, p, frontier) or "") / CHARS_PER_TOKEN)
        total = tokens_in * round(price["input"] * 1e9) + tokens_out * round(price["output"] * 1e9)
        expected_nanos += (total + 500_000) // 1_000_000
    return {
        "accuracy": round(sum(p.scores[frontier] for p in prompts) / len(prompts), 4),
        "recorded_cost_usd": round(sum(p.recorded_cost[frontier] for p in prompts), 6),
        "expected_cost_usd": round(expected_nanos / 1e9, 6),
    }


def offline_single_models(prompts: Sequence[Prompt], frontier: str) -> dict[str, dict[str, float]]:
    """Every model alone, from the data: accuracy, and recorded cost relative to the frontier's."""
    base = sum(p.recorded_cost[frontier] for p in prompts)
    models = prompts[0].scores if prompts else {}
    return {
        m: {
            "accuracy": round(sum(p.scores[m] for p in prompts) / len(prompts), 4),
            "recorded_cost_vs_frontier": round(sum(p.recorded_cost[m] for p in prompts) / base, 4),
        }
        for m in models
    }


def offline_oracles(prompts: Sequence[Prompt], frontier: str, cheap: str) -> dict[str, dict[str, float]]:
    """The headroom, from the data with the answer key (no router can do this): `pair` sends a prompt
    to the frontier only when the cheap model is wrong and the frontier right; `all_models` sends it
    to the cheapest model (by recorded cost) that answers it right, else to the cheapest model."""
    base = sum(p.recorded_cost[frontier] for p in prompts)
    pair = [frontier if p.scores[cheap] < p.scores[frontier] else cheap for p in prompts]
    best = [_cheapest_right(p) for p in prompts]
    return {
        name: {
            "accuracy": round(
                sum(p.scores[m] for p, m in zip(prompts, chosen, strict=True)) / len(prompts), 4
            ),
            "recorded_cost_vs_frontier": round(
                sum(p.recorded_cost[m] for p, m in zip(prompts, chosen, strict=True)) / base, 4
            ),
        }
        for name, chosen in (("pair", pair), ("all_models", best))
    }


def _cheapest_right(prompt: Prompt) -> str:
    """The model with the best score on this prompt, the cheapest (by recorded cost) among ties."""
    return min(prompt.scores, key=lambda m: (-prompt.scores[m], prompt.recorded_cost[m]))


def verdict(versus: Mapping[str, Mapping[str, Any]]) -> str:
    """One sentence: which routes meet the target, and the best each side of it."""
    met = [n for n, v in versus.items() if v["target_met"]]
    if met:
        return f"met by {', '.join(met)}."
    close = [n for n, v in versus.items() if v["accuracy_delta_points"] >= -TARGET_ACCURACY_POINTS]
    cheap = [n for n, v in versus.items() if v["cost_reduction"] >= TARGET_COST_REDUCTION]
    parts = ["not met by any route."]
    if close:
        n = max(close, key=lambda n: versus[n]["cost_reduction"])
        parts.append(f"Within {TARGET_ACCURACY_POINTS:g} points, the cheapest is {n} ({_cut(versus[n])}).")
    else:
        n = max(versus, key=lambda n: versus[n]["accuracy_delta_points"])
        parts.append(
            f"No route stays within {TARGET_ACCURACY_POINTS:g} points; "
            f"the closest is {n} ({_cut(versus[n])})."
        )
    if cheap:
        n = max(cheap, key=lambda n: versus[n]["accuracy_delta_points"])
        parts.append(
            f"At least {TARGET_COST_REDUCTION:.0%} cheaper, the most accurate is {n} ({_cut(versus[n])})."
        )
    return " ".join(parts)


def _cut(v: Mapping[str, Any]) -> str:
    return f"{v['cost_reduction']:.0%} cheaper, {v['accuracy_delta_points']:+.1f} points"
