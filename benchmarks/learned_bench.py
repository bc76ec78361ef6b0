"""Learned-router inference latency in process: p50 / p99 microseconds per prompt, over real prompts.

Prompts are the deduplicated RouterBench test split (../shared/data) when present, else a small
built-in mix. Timed: the `learned` classifier's predict (features + pair head, what a
`classifier` route pays), predict_success for three models (what `predicted_success` pays), and,
to justify pure Python at run time, the same pair-head sum done with numpy over feature indices.
GC stays on, as in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.stats import summary_us
from sidecar.domain.request import ChatRequest, Message, Role, TextPart
from sidecar.policy.learned import PAIR_HEAD, LearnedClassifier, load

GOAL_P99_US = 200  # issue 7: predict p99 per typical prompt

_FALLBACK = [
    "What is the capital of France?",
    "Write a Python function that returns the n-th Fibonacci number using memoization.",
    "Rachel touches the cool looking bulletproof vest of Kayla due to _ being on an investigation.\n"
    'A) Kayla\nB) Rachel\nPrint only a single choice from "A" or "B" without explanation. Answer:',
    "Explain step by step why the sum of two odd numbers is always even, then give a formal proof.",
    "Summarise the following meeting notes in three bullet points: "
    + "the team discussed the roadmap. " * 20,
]


def _prompts() -> tuple[list[str], str]:
    try:
        from sidecar.offline.training.data import ROUTERBENCH, read_file, split

        if ROUTERBENCH.is_file():
            return [e.question for e in split(read_file(ROUTERBENCH)).test], "routerbench test split"
    except ImportError:  # pragma: no cover - the data module is stdlib only; defensive
        pass
    return list(_FALLBACK), "built-in sample"


def _time(fn: Callable[[Any], object], items: list[Any], calls: int) -> dict[str, float]:
    for x in items[: min(len(items), 200)]:  # warm up
        fn(x)
    samples = []
    for i in range(calls):
        x = items[i % len(items)]
        t0 = time.perf_counter_ns()
        fn(x)
        samples.append((time.perf_counter_ns() - t0) / 1000)
    return summary_us(samples)


def run(quick: bool) -> dict[str, Any]:
    prompts, source = _prompts()
    calls = 3_000 if quick else 30_000
    router = load()
    classifier = LearnedClassifier(router)
    requests = [ChatRequest(messages=(Message(Role.USER, (TextPart(p),)),)) for p in prompts]
    three = [
        router.weak,
        router.strong,
        *(m for m in router.models if m not in (router.weak, router.strong)),
    ][:3]
    results: dict[str, Any] = {
        "artifact": router.name,
        "prompts": len(prompts),
        "prompt_source": source,
        "median_prompt_chars": sorted(len(p) for p in prompts)[len(prompts) // 2],
        "predict": _time(classifier.predict, requests, calls),
        # what a `classifier: learned` route pays: the score and the familiarity check
        "assess_with_familiarity": _time(classifier.assess, requests, calls),
        "predict_success_3_models": _time(lambda r: classifier.success(r, three), requests, calls),
        "features_only": _time(router.features, prompts, calls),
    }
    try:
        import numpy as np
    except ImportError:
        return results
    head = router.heads[PAIR_HEAD]
    index = {f: i for i, f in enumerate(head.weights)}
    weights = np.asarray(list(head.weights.values()), dtype=np.float64)

    def with_numpy(text: str) -> float:
        feats = router.features(text)
        idx = np.fromiter((index[f] for f in feats if f in index), dtype=np.intp)
        return float(head.bias + weights[idx].sum() / (len(feats) or 1) ** 0.5)

    results["predict_numpy_sum_for_comparison"] = _time(with_numpy, prompts, calls)
    return results


if __name__ == "__main__":
    import json

    print(json.dumps(run(quick=True), indent=1))
