"""Which rows train which output: the pair label for the router's strong/weak pair, and proxies.

Only ~3,300 training prompts label the target pair itself (RouterBench, AlpacaEval, arena-bench).
The other sources label other strong/weak pairs of their own; they teach the shape of "a weaker
model is enough here" on kinds of prompts the target pair never saw (BBH reasoning, open QA,
math, code), at a lower weight so that they do not override the target pair where both exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sidecar.offline.training.data import Example

PROXY_PAIRS: Mapping[str, tuple[str, str]] = {
    # source -> (strong, weak): that source's best-labelled large model against a smaller one
    "openllm_v2_bbh": ("Qwen/Qwen2.5-72B-Instruct", "mistralai/mixtral-8x7b-chat"),
    "llmrouter_nim9": ("nim/llama-3.1-nemotron-51b-instruct", "nim/mistral-7b-instruct-v0.3"),
    "routerarena": ("gemini-2.0-flash-001", "claude-3-haiku-20240307"),
}


@dataclass(frozen=True, slots=True)
class Labelled:
    example: Example
    label: bool
    weight: float
    target: bool  # labelled by the target pair itself (not a proxy)
    strong: str = ""  # the pair the label compares (empty for success labels)
    weak: str = ""


def pair_rows(examples: Sequence[Example], strong: str, weak: str, proxy_weight: float) -> list[Labelled]:
    out = []
    for e in examples:
        y = e.weak_suffices(strong, weak)
        if y is not None:
            out.append(Labelled(e, y, 1.0, True, strong, weak))
        elif proxy_weight > 0 and e.source in PROXY_PAIRS:
            proxy = PROXY_PAIRS[e.source]
            y = e.weak_suffices(*proxy)
            if y is not None:
                out.append(Labelled(e, y, proxy_weight, False, *proxy))
    return out


def success_rows(examples: Sequence[Example], model: str) -> list[Labelled]:
    out = []
    for e in examples:
        y = e.success(model)
        if y is not None:
            out.append(Labelled(e, y, 1.0, True))
    return out
