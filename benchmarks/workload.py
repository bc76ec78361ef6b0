"""A synthetic but realistic routing workload: 50 models from 5 providers, and typical requests.

Deterministic (seeded), so runs compare. Prices, windows and capabilities are spread like a real
multi-vendor registry: a few frontier models, many small ones, windows from 8k to 1M tokens.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from sidecar.config import Config, parse_config
from sidecar.domain.outcome import AttemptOutcome, AttemptRecord
from sidecar.domain.request import (
    ChatRequest,
    GenerationParams,
    ImagePart,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    RoutingHints,
    TextPart,
    Tool,
)
from sidecar.policy.health import HealthTracker
from sidecar.registry.registry import Registry

# Telemetry blocks for the benchmarks' sidecar configs: all off, and on as a pod would run it.
TELEMETRY_OFF = {"traces": "none", "metrics": "none", "prometheus": {"enabled": False}, "request_log": False}
# On: spans pushed over OTLP (sampled as by default: 10% of root requests, unless the run sets
# OTEL_TRACES_SAMPLER), metrics scraped from the Prometheus endpoint
# (`metrics: auto` does not also push them), the request log written.
TELEMETRY_ON = {
    "traces": "otlp",
    "metrics": "auto",
    "prometheus": {"enabled": True, "port": 0},
    "request_log": True,
}
# Issue 6: throughput with telemetry on at most 10% lower than the same sidecar with it off.
TELEMETRY_GOAL_RATIO = 0.9

N_MODELS = 50
PROVIDERS = ("openai", "anthropic", "google", "groq", "together")
FAMILIES = ("gpt-4o-mini", "claude-3-5-haiku", "gemini-2.5-flash", "llama-3.1-8b", "mixtral-8x7b")
WINDOWS = (8_192, 32_768, 128_000, 200_000, 1_048_576)


def config_dict(*, cache: bool = False, seed: int = 1) -> dict[str, Any]:
    """A config file's content: 50 models and one route of rules + capability + SLA + scoring."""
    rng = random.Random(seed)
    models = []
    for i in range(N_MODELS):
        caps = ["streaming"]
        caps += ["tools"] if rng.random() < 0.8 else []
        caps += ["json"] if rng.random() < 0.9 else []
        caps += ["vision"] if rng.random() < 0.5 else []
        price_in = round(10 ** rng.uniform(-1.5, 1.2), 3)
        window = rng.choice(WINDOWS)
        models.append(
            {
                "name": f"model-{i:02d}",
                "provider": PROVIDERS[i % len(PROVIDERS)],
                "upstream_model": f"{FAMILIES[i % len(FAMILIES)]}-{i}",
                "price": {"input": price_in, "output": price_in * 4},
                "context_window": window,
                "max_output_tokens": min(16_384, window // 2),
                "capabilities": caps,
                "quality": round(rng.uniform(0.4, 0.95), 2),
                "typical_latency_s": round(rng.uniform(0.3, 3.0), 2),
            }
        )
    names = [m["name"] for m in models]
    rules = [
        {"name": "simple", "match": {"task_types": ["classify", "extract"]}, "models": names[:20]},
        {"name": "code", "match": {"task_types": ["code"]}, "models": names[10:50]},
        {"name": "summaries", "match": {"task_types": ["summarize"]}, "models": names[5:35]},
        {"name": "vip", "match": {"tiers": ["enterprise"]}, "models": names[25:50]},
        {"name": "search", "match": {"labels": {"team": "search"}}, "models": names[::2]},
    ]
    sla = {
        "quality_floor": 0.45,
        "tiers": {
            "free": {"models": names[:30], "latency_budget_s": 3.0, "max_cost_usd": 0.005},
            "pro": {"latency_budget_s": 5.0, "max_cost_usd": 0.05},
            "enterprise": {"latency_budget_s": 8.0},
            "default": {"latency_budget_s": 5.0},
        },
    }
    return {
        "providers": [{"name": p, "kind": "openai", "base_url": "http://127.0.0.1:9/v1"} for p in PROVIDERS],
        "models": models,
        "routes": [
            {
                "name": "bench",
                "models": names,
                "strategies": [{"rules": {"rules": rules}}, "capability", {"sla": sla}, "scoring"],
            }
        ],
        "decision_cache": {"enabled": cache},
    }


def config(*, cache: bool = False) -> Config:
    return parse_config(config_dict(cache=cache), source="benchmark workload", env={})


def warmed_health(reg: Registry, seed: int = 2) -> HealthTracker:
    """Live statistics as after some traffic: 30 attempts per model, a few failures."""
    rng = random.Random(seed)
    health = HealthTracker()
    for m in reg.models:
        for _ in range(30):
            failed = rng.random() < 0.03
            latency = m.typical_latency_s * rng.lognormvariate(0, 0.3)
            outcome = AttemptOutcome.FAILURE if failed else AttemptOutcome.SUCCESS
            health.observe(AttemptRecord(1, m.name, m.provider, outcome, latency))
    return health


SYSTEM = (
    "You are a support assistant for an online store. Answer briefly and politely. Use the order "
    "tools when the customer asks about an order. Never promise refunds; escalate instead. "
) * 8  # ~1,500 characters, as typical system prompts are


def requests() -> list[ChatRequest]:
    """Eight typical requests, from a one-line classification to a long document with an image."""

    def msgs(*texts: str, system: bool = True) -> tuple[Message, ...]:
        out = [Message(Role.SYSTEM, (TextPart(SYSTEM),))] if system else []
        roles = [Role.USER, Role.ASSISTANT]
        out += [Message(roles[i % 2], (TextPart(t),)) for i, t in enumerate(texts)]
        return tuple(out)

    tool = Tool("lookup_order", "Find an order", {"type": "object", "properties": {"id": {"type": "string"}}})
    schema = {"type": "object", "properties": {"label": {"enum": ["spam", "ham"]}}, "required": ["label"]}
    base = ChatRequest(messages=msgs("hi"), request_id="bench")
    return [
        replace(
            base,
            messages=msgs("Is this spam? 'You won a prize!'", system=False),
            hints=RoutingHints(task_type="classify", user_tier="free"),
        ),
        replace(
            base,
            messages=msgs("Where is my order?", "Which order number?", "It's 12345, placed Monday."),
            hints=RoutingHints(user_tier="pro"),
            tools=(tool,),
        ),
        replace(
            base,
            messages=msgs("Refactor this function:\n```python\n" + "x = compute(x)\n" * 40 + "```"),
            hints=RoutingHints(task_type="code", user_tier="enterprise"),
        ),
        replace(
            base,
            messages=msgs("Label this message: 'cheap pills'", system=False),
            hints=RoutingHints(task_type="extract", user_tier="free"),
            response_format=ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "label", schema),
        ),
        replace(
            base,
            messages=msgs("Summarize:\n" + "The quarterly report shows growth. " * 600),
            hints=RoutingHints(task_type="summarize", user_tier="pro"),
            params=GenerationParams(max_output_tokens=800),
        ),
        replace(
            base,
            messages=(
                Message(
                    Role.USER,
                    (TextPart("What is in this picture?"), ImagePart(url="https://example.com/a.png")),
                ),
            ),
            hints=RoutingHints(user_tier="pro"),
        ),
        replace(
            base, messages=msgs("Tell me about your return policy."), hints=RoutingHints(user_tier="platinum")
        ),
        replace(base, messages=msgs("Find documents about routing"), labels={"team": "search"}),
    ]


def route_request_json() -> dict[str, Any]:
    """A Route request in protobuf JSON, for the RPC benchmark's load generator."""
    return {
        "messages": [
            {"role": "ROLE_SYSTEM", "content": [{"text": SYSTEM}]},
            {"role": "ROLE_USER", "content": [{"text": "Where is my order? It's 12345, placed Monday."}]},
        ],
        "hints": {"userTier": "pro"},
    }
