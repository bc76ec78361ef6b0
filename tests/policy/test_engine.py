"""The routing engine and each strategy, table-driven, through build_engine as a route would use them."""

from __future__ import annotations

import dataclasses

import pytest

from sidecar.domain.errors import InvalidRequest, NoCandidate, NotFound
from sidecar.domain.outcome import AttemptOutcome, AttemptRecord
from sidecar.domain.request import (
    Capability,
    GenerationParams,
    ImagePart,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    Tool,
)
from sidecar.policy.build import build_engine
from sidecar.policy.cache import DecisionCache
from sidecar.policy.classifier import LengthClassifier
from sidecar.policy.health import HealthTracker
from sidecar.policy.specs import (
    CapabilitySpec,
    CascadeSpec,
    ClassifierSpec,
    RouteSpec,
    Rule,
    RulesSpec,
    ScoringSpec,
    SlaSpec,
    TierSpec,
)
from sidecar.policy.tokens import count_request, counter_for
from sidecar.registry.registry import Registry
from tests.factories import chat, model, provider

TEXT_ONLY = frozenset({Capability.STREAMING})
REGISTRY = Registry(
    models=(
        model("nano", price_in=0.1, price_out=0.4, quality=0.6),
        model("mini", price_in=0.15, price_out=0.6, quality=0.75, provider="p2"),
        model("big", price_in=2.5, price_out=10, context=128_000, quality=0.9),
        model("textonly", price_in=0.05, price_out=0.08, caps=TEXT_ONLY, context=4096),
    ),
    providers={"p1": provider("p1"), "p2": provider("p2")},
)
RULES = RulesSpec(
    rules=(
        Rule("simple", ("nano", "mini"), task_types=frozenset({"classify"})),
        Rule("vip", ("big",), tiers=frozenset({"enterprise"})),
        Rule("tagged", ("textonly", "mini"), tags=frozenset({"cheap"})),
        Rule("labelled", ("big", "mini"), labels=(("team", "search"),)),
    )
)


def engine(*strategies, models=("mini", "big"), health=None, cache=None, classifiers=None, name="default"):
    routes = {
        name: RouteSpec(name, models, tuple(strategies)),
        "strict": RouteSpec(
            "strict",
            ("mini",),
            (
                RulesSpec(
                    (Rule("triage", ("nano",), task_types=frozenset({"triage"}), tiers=frozenset({"pro"})),),
                    strict=True,
                ),
            ),
        ),
    }
    return build_engine(routes, name, REGISTRY, health or HealthTracker(), cache, classifiers)


def names(plan):
    return [c.model.name for c in plan.candidates]


def notes(plan, model_name):
    (c,) = [c for c in plan.considered if c.model == model_name]
    return c.kept, [str(n) for n in c.notes]


# --- rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hints", "labels", "expected", "reason_part"),
    [
        ({}, {}, ["mini", "big"], "no rule matched"),
        ({"task_type": "classify"}, {}, ["nano", "mini"], "rule 'simple' matched"),
        ({"user_tier": "enterprise"}, {}, ["big"], "rule 'vip' matched"),
        ({"tags": frozenset({"cheap", "x"})}, {}, ["textonly", "mini"], "rule 'tagged' matched"),
        ({}, {"team": "search"}, ["big", "mini"], "label team=search"),
        ({"task_type": "unknown-task"}, {}, ["mini", "big"], "task type 'unknown-task' matches no rule"),
        ({"user_tier": "gold"}, {}, ["mini", "big"], "tier 'gold' matches no rule"),
        ({"pinned_model": "big"}, {}, ["big"], "pinned to big"),
        ({"task_type": "classify", "denied_models": frozenset({"nano"})}, {}, ["mini"], "rule 'simple'"),
        ({"allowed_providers": frozenset({"p2"})}, {}, ["mini"], "no rule matched"),
        ({"quality_floor": 0.8}, {}, ["big"], "no rule matched"),
    ],
)
def test_rules_choose_and_explain(hints, labels, expected, reason_part):
    plan = engine(RULES).plan(dataclasses.replace(chat(**hints), labels=labels))
    assert names(plan) == expected
    assert any(reason_part in str(r) for r in plan.reasons), plan.reasons
    assert plan.route == "default"
    assert plan.strategy == "rules"
    assert plan.estimated_input_tokens > 0


@pytest.mark.parametrize(
    ("match", "text", "chosen"),
    [
        ({"keywords": ("refund",)}, "I want a REFUND now", "nano"),
        ({"keywords": ("refund",)}, "hello there", "mini"),
        ({"regex": (r"\border #\d+",)}, "where is order #123?", "nano"),
        ({"has_code": True}, "fix this:\n```\nprint(1)\n```", "nano"),
        ({"has_code": False}, "fix this:\n```\nprint(1)\n```", "mini"),
        ({"max_input_tokens": 50}, "short question", "nano"),
        ({"min_input_tokens": 50}, "short question", "mini"),
    ],
)
def test_content_heuristics(match, text, chosen):
    spec = RulesSpec((Rule("content", ("nano",), **match),), content_heuristics=True)
    e = engine(spec)
    plan = e.plan(chat(text))
    assert plan.choice.model.name == chosen
    assert all(text not in str(r) for r in plan.reasons), "content is never echoed into reasons"


def test_strict_route_rejects_unknown_task_type_and_tier():
    with pytest.raises(InvalidRequest) as info:
        engine().plan(chat(route="strict", task_type="poetry", user_tier="gold"))
    assert [v.field for v in info.value.violations] == ["hints.task_type", "hints.user_tier"]
    assert (
        engine().plan(chat(route="strict", task_type="triage", user_tier="pro")).choice.model.name == "nano"
    )


def test_unknown_pinned_model_and_route_are_not_found():
    with pytest.raises(NotFound) as info:
        engine().plan(chat(pinned_model="gpt-99"))
    assert (info.value.reason, info.value.field) == ("MODEL_NOT_FOUND", "hints.pinned_model")
    with pytest.raises(NotFound) as info:
        engine().plan(chat(route="nope"))
    assert info.value.reason == "ROUTE_NOT_FOUND"
    assert "default, strict" in str(info.value)


# --- capability and context ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tools": (Tool("lookup", parameters={"type": "object"}),)}, "lacks tools"),
        ({"response_format": ResponseFormat(ResponseFormatKind.JSON_OBJECT)}, "lacks json"),
        (
            {"messages": (Message(Role.USER, (TextPart("see"), ImagePart(url="https://x/y.png"))),)},
            "lacks vision",
        ),
    ],
)
def test_capability_filter_names_what_is_missing(change, reason):
    plan = engine(CapabilitySpec(), models=("textonly", "mini")).plan(dataclasses.replace(chat(), **change))
    assert names(plan) == ["mini"]
    assert notes(plan, "textonly") == (False, [reason])


def test_required_capabilities_hint():
    plan = engine(models=("textonly", "mini")).plan(chat(required_capabilities=frozenset({Capability.TOOLS})))
    assert names(plan) == ["mini"]


def test_max_output_limit():
    request = dataclasses.replace(chat(pinned_model="mini"), params=GenerationParams(max_output_tokens=5000))
    with pytest.raises(NoCandidate) as info:
        engine().plan(request)
    assert info.value.rejections[0].reason == "max output 4,096 < 5,000 requested"


def sized(low: int, high: int) -> str:
    """A prompt whose counted size (by the test models' tokenizer) lies in (low, high)."""
    counter = counter_for(REGISTRY.models[0])
    text = "word "
    while count_request(chat(text), counter) <= low:
        text *= 2
    while count_request(chat(text), counter) >= high:
        text = text[: int(len(text) * 0.9)]
    assert low < count_request(chat(text), counter) < high
    return text


def test_context_window_rejection_says_how_much_is_needed():
    plan = engine(CapabilitySpec(), models=("textonly", "mini")).plan(chat(sized(4096, 8192 - 256)))
    kept, why = notes(plan, "textonly")
    assert not kept
    assert why[0].startswith("context 4,096 < ")
    assert why[0].endswith(" needed")
    assert names(plan) == ["mini"]


def test_over_every_window_says_by_how_many_tokens():
    with pytest.raises(NoCandidate) as info:
        engine(CapabilitySpec()).plan(chat("word " * 200_000))
    assert {r.model for r in info.value.rejections} == {"mini", "big"}
    assert "exceeds the largest context window by" in str(info.value)


def long_conversation(turns: int, words: int) -> tuple[Message, ...]:
    messages = [Message(Role.SYSTEM, (TextPart("You are helpful."),))]
    for i in range(turns):
        messages.append(Message(Role.USER, (TextPart(f"question {i} " + "word " * words),)))
        messages.append(Message(Role.ASSISTANT, (TextPart(f"answer {i} " + "word " * words),)))
    messages.append(Message(Role.USER, (TextPart("and finally?"),)))
    return tuple(messages)


@pytest.mark.parametrize("strategy", ["drop_oldest", "trim_middle"])
def test_truncation_when_nothing_fits(strategy):
    request = dataclasses.replace(chat(), messages=long_conversation(turns=40, words=200))
    plan = engine(CapabilitySpec(on_overflow=strategy), models=("textonly", "mini")).plan(request)
    assert plan.truncation is not None
    assert plan.truncation.strategy == strategy
    assert plan.truncation.removed_tokens > 0
    assert plan.truncation.messages[0].role is Role.SYSTEM
    assert plan.truncation.messages[-1].text == "and finally?"
    assert any(f"{strategy} removed" in str(r) for r in plan.reasons)
    assert names(plan) == ["mini"]


def test_reject_is_the_default_overflow_policy():
    request = dataclasses.replace(chat(), messages=long_conversation(turns=40, words=200))
    with pytest.raises(NoCandidate):
        engine(CapabilitySpec(), models=("textonly", "mini")).plan(request)


# --- SLA and tiers ------------------------------------------------------------------------------


def feed(health: HealthTracker, name: str, latency_s: float, n: int = 30, failures: int = 0) -> None:
    for i in range(n):
        failed = i < failures
        health.observe(
            AttemptRecord(
                1, name, "p1", AttemptOutcome.FAILURE if failed else AttemptOutcome.SUCCESS, latency_s
            )
        )


def test_sla_latency_budget_uses_live_p95():
    health = HealthTracker()
    feed(health, "mini", 2.1)
    sla = SlaSpec({"pro": TierSpec(latency_budget_s=1.5)})
    plan = engine(sla, health=health).plan(chat(user_tier="pro"))
    assert names(plan) == ["big"]
    assert notes(plan, "mini") == (False, ["p95 2.10 s > budget 1.50 s"])


def test_sla_uses_the_prior_without_samples_and_the_tighter_request_budget():
    sla = SlaSpec({"default": TierSpec(latency_budget_s=10)})
    assert names(engine(sla).plan(chat(latency_budget_s=1.5))) == ["mini", "big"]  # typical latency is 1.0 s
    with pytest.raises(NoCandidate) as info:
        engine(sla).plan(chat(latency_budget_s=0.5))
    assert "mini: latency 1.00 s > budget 0.50 s" in str(info.value)


def test_sla_tiers_models_cost_and_floor():
    sla = SlaSpec(
        {"free": TierSpec(models=frozenset({"mini"})), "pro": TierSpec(max_cost_usd_nanos=1_000_000)},
        quality_floor=0.7,
    )
    e = engine(sla, models=("nano", "mini", "big"))
    assert names(e.plan(chat(user_tier="free"))) == ["mini"]
    plan = e.plan(chat(user_tier="pro"))
    assert names(plan) == ["mini"]
    assert notes(plan, "nano") == (False, ["quality 0.60 < route floor 0.70"])
    assert notes(plan, "big")[1][0].startswith("estimated cost $0.005")
    unknown = e.plan(chat(user_tier="platinum"))
    assert any("tier 'platinum' has no SLA" in str(r) for r in unknown.reasons)


# --- scoring, classifier, cascade ---------------------------------------------------------------


def test_scoring_ranks_and_explains():
    plan = engine(ScoringSpec(cost=1, latency=0, quality=0, errors=0), models=("big", "mini", "nano")).plan(
        chat()
    )
    assert names(plan) == ["nano", "mini", "big"]
    assert plan.candidates[0].score == pytest.approx(0.04, abs=0.01)
    assert notes(plan, "big")[1][0].startswith("score 1.000 (cost 1.00")


def test_scoring_demotes_errors_and_drops_open_breakers():
    health = HealthTracker()
    feed(health, "nano", 0.5, n=10, failures=10)
    health.set_breaker("mini", True)
    plan = engine(ScoringSpec(), models=("nano", "mini", "big"), health=health).plan(chat())
    assert notes(plan, "mini") == (False, ["breaker open"])
    assert names(plan) == ["big", "nano"]


def test_scoring_with_every_breaker_open_keeps_the_one_open_longest_and_says_so():
    health = HealthTracker()
    for name in ("mini", "nano", "big"):  # mini opened first
        health.set_breaker(name, True)
    health.set_breaker("mini", False)  # ... then was probed, failed, and opened again: now last
    health.set_breaker("mini", True)
    plan = engine(ScoringSpec(), models=("mini", "nano", "big"), health=health).plan(chat())
    assert names(plan) == ["nano"]
    assert notes(plan, "nano")[0] is True
    assert notes(plan, "nano")[1][0] == "breaker open longest: tried anyway"
    assert notes(plan, "mini") == (False, ["breaker open"])
    assert notes(plan, "big") == (False, ["breaker open"])
    assert "all breakers open: trying nano, open longest" in [str(r) for r in plan.reasons]


class Fixed:
    name = "fixed"

    def __init__(self, p: float) -> None:
        self.p = p

    def predict(self, request):
        return self.p


@pytest.mark.parametrize(("p", "expected"), [(0.9, ["nano", "mini", "big"]), (0.1, ["big", "mini", "nano"])])
def test_classifier_steers_cheap_or_strong_first(p, expected):
    e = engine(ClassifierSpec("fixed", 0.5), models=("mini", "big", "nano"), classifiers={"fixed": Fixed(p)})
    plan = e.plan(chat())
    assert names(plan) == expected
    assert plan.classifier_score == p


def test_builtin_length_classifier_prefers_cheap_for_short_prompts():
    e = engine(ClassifierSpec("length", 0.5), models=("big", "nano"))
    assert e.plan(chat("What is the capital of France?")).choice.model.name == "nano"
    assert e.plan(chat("Prove step by step that " + "x " * 3000)).choice.model.name == "big"


@pytest.mark.parametrize(
    ("text", "hard"),
    [
        ("Please REFACTOR this function", True),  # any case
        ("Explain it step by step.", True),
        ("```python\nx = 1\n```", True),
        ("My debugging session went well", False),  # a cue only as a whole word
        ("Approve the derivative", False),
        ("Summarise: " + "Growth was steady. " * 2000 + "Now derive the rate.", True),  # cue in the tail
        # mid-document: not read
        ("Summarise: " + "Growth was steady. " * 1000 + " prove it " + "Fine. " * 1000, False),
    ],
)
def test_length_classifier_reads_hard_cues_at_the_start_and_end_of_the_prompt(text, hard):
    classifier = LengthClassifier()
    neutral = "x" * len(text)  # the same length without cues
    ratio = classifier.predict(chat(text)) / classifier.predict(chat(neutral))
    assert ratio == pytest.approx(0.5 if hard else 1.0)


def test_cascade_stages_cheapest_first_then_stronger():
    plan = engine(CascadeSpec(max_stages=3), models=("big", "mini", "nano")).plan(chat())
    assert [[c.model.name for c in s.candidates] for s in plan.stages] == [["nano"], ["mini"], ["big"]]
    assert "invalid_output" in plan.stages[0].escalate_on
    assert plan.stages[-1].escalate_on == frozenset()
    assert any("cascade: nano -> mini -> big" in str(r) for r in plan.reasons)


def test_cascade_skips_models_that_are_not_better():
    pool = ("nano", "textonly", "mini", "big")  # textonly is cheaper than nano but worse
    plan = engine(CascadeSpec(max_stages=2, min_quality_gain=0.1), models=pool).plan(chat())
    assert [s.candidates[0].model.name for s in plan.stages] == ["textonly", "nano"]
    assert [c.model.name for c in plan.stages[1].candidates] == ["nano", "mini", "big"]


def test_full_composition_explains_every_model():
    health = HealthTracker()
    feed(health, "big", 3.0)
    e = engine(
        RULES,
        CapabilitySpec(),
        SlaSpec({"pro": TierSpec(latency_budget_s=2.0)}),
        ScoringSpec(),
        CascadeSpec(),
        models=("textonly", "nano", "mini", "big"),
        health=health,
    )
    plan = e.plan(
        dataclasses.replace(chat(user_tier="pro"), tools=(Tool("t", parameters={"type": "object"}),))
    )
    assert plan.strategy == "rules>capability>sla>scoring>cascade"
    assert notes(plan, "textonly") == (False, ["lacks tools"])
    assert notes(plan, "big") == (False, ["p95 3.00 s > budget 2.00 s"])
    assert notes(plan, "nano")[0] is True
    assert notes(plan, "nano")[1][0].startswith("score ")
    assert [s.candidates[0].model.name for s in plan.stages] == ["nano", "mini"]
    assert {r.model for r in plan.rejections} == {"textonly", "big"}


# --- decision cache -----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cache_hits_expire_and_drop_on_health_change():
    clock, health = Clock(), HealthTracker()
    cache = DecisionCache(ttl_s=10, clock=clock)
    e = engine(RULES, ScoringSpec(), health=health, cache=cache)
    first = e.plan(chat("hello there"))
    again = e.plan(chat("hello there"))
    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert names(again) == names(first)
    assert e.plan(chat("hello therf")).cache_hit  # same hints, same length bucket
    clock.now = 11
    assert not e.plan(chat("hello there")).cache_hit  # expired
    assert e.plan(chat("hello there")).cache_hit
    feed(health, "mini", 0.5, n=5, failures=5)  # mini turns unhealthy: the version changes
    assert not e.plan(chat("hello there")).cache_hit


def test_cache_keys_on_hints_and_on_content_only_where_the_route_reads_it():
    cache = DecisionCache()
    e = engine(RULES, cache=cache)
    e.plan(chat("hello", task_type="classify"))
    assert not e.plan(chat("hello", task_type="chat")).cache_hit
    content = engine(
        RulesSpec((Rule("kw", ("nano",), keywords=("refund",)),), content_heuristics=True),
        cache=DecisionCache(),
    )
    assert content.plan(chat("refund please")).choice.model.name == "nano"
    other = content.plan(chat("return please"))  # same length, different content
    assert not other.cache_hit
    assert other.choice.model.name == "mini"


def test_cache_never_serves_a_plan_that_no_longer_fits():
    cache = DecisionCache()
    e = engine(CapabilitySpec(), models=("textonly", "mini"), cache=cache)
    text = sized(3000, 3400)
    near = e.plan(chat(text))  # textonly (4,096) fits, but not by a margin the cache can trust
    assert names(near) == ["textonly", "mini"]
    assert not e.plan(chat(text)).cache_hit
    e.plan(chat("short"))
    assert e.plan(chat("short")).cache_hit
