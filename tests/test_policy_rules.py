"""The rules policy: rule matching, pinning, filters, explanations and the errors it raises."""

from __future__ import annotations

import dataclasses

import pytest

from sidecar.domain.errors import InvalidRequest, NoCandidate, NotFound
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
from sidecar.policy.rules import RouteSpec, Rule, RulesPolicy
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
ROUTES = {
    "default": RouteSpec(
        name="default",
        default_models=("mini", "big"),
        rules=(
            Rule("simple", ("nano", "mini"), task_types=frozenset({"classify"})),
            Rule("vip", ("big",), tiers=frozenset({"enterprise"})),
            Rule("tagged", ("textonly", "mini"), tags=frozenset({"cheap"})),
            Rule("labelled", ("big", "mini"), labels=(("team", "search"),)),
        ),
    ),
    "strict": RouteSpec(
        name="strict",
        default_models=("mini",),
        rules=(Rule("triage", ("nano",), task_types=frozenset({"triage"}), tiers=frozenset({"pro"})),),
        strict=True,
    ),
}
POLICY = RulesPolicy(ROUTES, "default", REGISTRY)


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
    request = dataclasses.replace(chat(**hints), labels=labels)
    plan = POLICY.plan(request)
    assert [c.model.name for c in plan.candidates] == expected
    assert any(reason_part in r for r in plan.reasons), plan.reasons
    assert plan.route == "default"
    assert plan.strategy == "rules"
    assert plan.decision_time_micros >= 0
    assert plan.estimated_input_tokens > 0


def test_every_dropped_model_has_a_reason():
    request = chat(task_type="classify", denied_models=frozenset({"nano"}))
    plan = POLICY.plan(request)
    assert [(r.model, r.reason) for r in plan.rejections] == [("nano", "denied by hints.denied_models")]


@pytest.mark.parametrize(
    ("change", "rejected_reason"),
    [
        ({"tools": (Tool("lookup", parameters={"type": "object"}),)}, "lacks tools"),
        ({"response_format": ResponseFormat(ResponseFormatKind.JSON_OBJECT)}, "lacks json"),
        (
            {"messages": (Message(Role.USER, (TextPart("see"), ImagePart(url="https://x/y.png"))),)},
            "lacks vision",
        ),
    ],
)
def test_capability_filter_names_what_is_missing(change, rejected_reason):
    request = dataclasses.replace(chat(tags=frozenset({"cheap"})), **change)
    plan = POLICY.plan(request)
    assert "textonly" not in [c.model.name for c in plan.candidates]
    assert any(r.model == "textonly" and rejected_reason in r.reason for r in plan.rejections), (
        plan.rejections
    )


def test_max_output_limit_is_checked():
    request = dataclasses.replace(chat(pinned_model="mini"), params=GenerationParams(max_output_tokens=5000))
    with pytest.raises(NoCandidate) as info:
        POLICY.plan(request)
    assert info.value.rejections[0].reason == "max output 4,096 < 5,000 requested"


def test_context_window_rejection_says_how_much_is_needed():
    request = chat("word " * 4000, tags=frozenset({"cheap"}))  # ~5.5k tokens: over 4,096, under 8,192
    plan = POLICY.plan(request)
    assert [c.model.name for c in plan.candidates] == ["mini"]
    reasons = {r.model: r.reason for r in plan.rejections}
    assert reasons["textonly"].startswith("context 4,096 < 5,")
    assert reasons["textonly"].endswith(" needed")


def test_max_cost_rejects_expensive_models():
    plan = POLICY.plan(chat("x" * 4000, max_cost_usd_nanos=500_000))  # $0.0005
    assert [c.model.name for c in plan.candidates] == ["mini"]
    assert "estimated cost" in plan.rejections[0].reason


def test_no_candidate_lists_every_rejection_and_the_shortfall():
    request = chat("word " * 200_000)  # ~275k tokens, over every window
    with pytest.raises(NoCandidate) as info:
        POLICY.plan(request)
    err = info.value
    assert {r.model for r in err.rejections} == {"mini", "big"}
    assert "exceeds the largest context window by" in str(err)
    assert err.metadata["route"] == "default"


def test_unknown_pinned_model_is_not_found():
    with pytest.raises(NotFound) as info:
        POLICY.plan(chat(pinned_model="gpt-99"))
    assert info.value.reason == "MODEL_NOT_FOUND"
    assert info.value.field == "hints.pinned_model"


def test_unknown_route_is_not_found_and_lists_known_routes():
    with pytest.raises(NotFound) as info:
        POLICY.plan(chat(route="nope"))
    assert info.value.reason == "ROUTE_NOT_FOUND"
    assert "default, strict" in str(info.value)


def test_strict_route_rejects_unknown_task_type_and_tier():
    with pytest.raises(InvalidRequest) as info:
        POLICY.plan(chat(route="strict", task_type="poetry", user_tier="gold"))
    fields = [v.field for v in info.value.violations]
    assert fields == ["hints.task_type", "hints.user_tier"]


def test_strict_route_accepts_known_values():
    plan = POLICY.plan(chat(route="strict", task_type="triage", user_tier="pro"))
    assert plan.choice.model.name == "nano"


def test_estimates_use_prices():
    plan = POLICY.plan(chat("x" * 400, pinned_model="big"))
    choice = plan.choice
    # ~111 input tokens at $2.5/M plus 512 assumed output tokens at $10/M
    assert 5_000_000 < choice.estimated_cost_usd_nanos < 5_500_000
