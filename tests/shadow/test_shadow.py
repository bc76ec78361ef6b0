"""Shadow evaluation: comparisons, the runner (sampling, spend cap, alert), config, and end to end."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import yaml
from turnout_simulator.server import Simulator

from sidecar.config import ConfigError, parse_config
from sidecar.domain.observe import QUIET, Answered
from sidecar.domain.plan import Candidate, Plan, Stage
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Completion, FinishReason, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.domain.shadow import Compare, ShadowSpec
from sidecar.execution.executor import Executor
from sidecar.providers.base import MockAdapter, ProviderCall
from sidecar.registry.registry import Registry
from sidecar.shadow.compare import exact_match, json_match, judge_verdict
from sidecar.shadow.runner import ShadowBook, ShadowRunner
from tests.conftest import EXAMPLE_CONFIG, point_at_simulator
from tests.factories import SeenAttempts, chat, model, provider
from tests.server.helpers import generate_request
from tests.telemetry.conftest import Lines, access_log, observed_sidecar

__all__ = ["access_log"]  # the fixture, shared with the telemetry tests

CHEAP, REF, JUDGE = (
    model("cheap", price_in=0.1, price_out=0.4),
    model("ref", price_in=5, price_out=15),
    model("judge"),
)
REGISTRY = Registry(models=(CHEAP, REF, JUDGE), providers={"p1": provider()})
PLAN = Plan(route="support", strategy="rules", stages=(Stage((Candidate(CHEAP),)),))


def answer(text: str) -> Completion:
    return Completion(text=text, finish_reason=FinishReason.STOP, usage=Usage(100, 20), response_model="x")


class Seen:
    def __init__(self) -> None:
        self.compared: list[tuple[str, bool, int]] = []
        self.skipped: list[tuple[str, str]] = []

    def shadow_compared(self, route: str, agreed: bool, cost_usd_nanos: int) -> None:
        self.compared.append((route, agreed, cost_usd_nanos))

    def shadow_skipped(self, route: str, reason: str) -> None:
        self.skipped.append((route, reason))


def runner(
    behaviour: Any, delay_s: float = 0.0, **spec: Any
) -> tuple[ShadowRunner, ShadowBook, Seen, MockAdapter]:
    adapter = MockAdapter(behaviour, delay_s=delay_s)
    executor = Executor({"p1": adapter}, {"p1": provider()})
    book, seen = ShadowBook(), Seen()
    settings = {
        "route": "support",
        "reference_model": "ref",
        "share": 1.0,
        "min_samples": 5,
        "window": 10,
    } | spec
    shadow = ShadowRunner({"support": ShadowSpec(**settings)}, REGISTRY, executor, book, observers=[seen])
    return shadow, book, seen, adapter


async def answered_by(shadow: ShadowRunner, text: str, model_name: str = "cheap") -> None:
    """What the pipeline does after answering: hand over the answer, and (here) wait for the shadow."""
    m = REGISTRY.get(model_name)
    assert m is not None
    plan = Plan(route="support", strategy="rules", stages=(Stage((Candidate(m),)),))
    executor = Executor({"p1": MockAdapter(lambda call: answer(text))}, {"p1": provider()})
    result = await executor.run(
        plan, chat("what is the refund window?"), asyncio.get_running_loop().time() + 5
    )
    shadow.answered(answered(chat("what is the refund window?"), plan, result))


def answered(request: ChatRequest, plan: Plan, result: ExecutionResult) -> Answered:
    """The event the pipeline reports to the call's observer once it has an answer."""
    c = result
    return Answered(request, plan, c.completion, c.candidate, c.attempts, c.winner, QUIET)


async def settle(book: ShadowBook) -> None:
    while book.tasks:
        await asyncio.gather(*book.tasks, return_exceptions=True)


def test_exact_and_json_comparisons_ignore_what_does_not_matter():
    assert exact_match("Positive.", "  positive ")
    assert exact_match('"billing"', "Billing")
    assert not exact_match("positive", "negative")
    assert json_match('{"a": 1, "b": [1, 2]}', '```json\n{"b": [1, 2], "a": 1}\n```')
    assert not json_match('{"a": 1}', '{"a": 2}')
    assert not json_match("not json", "not json")  # agreement needs JSON on both sides
    assert judge_verdict("AGREE") is True
    assert judge_verdict("I DISAGREE.") is False
    assert judge_verdict("maybe") is None


async def test_agreement_is_tracked_per_route_and_a_drop_raises_the_alert_once(caplog):
    replies = iter(["30 days"] * 5 + ["14 days"] * 5 + ["30 days"] * 10)
    shadow, book, seen, adapter = runner(lambda call: answer(next(replies)))
    with caplog.at_level(logging.INFO, logger="sidecar.shadow.runner"):
        for _ in range(5):
            await answered_by(shadow, "30 days.")
            await settle(book)
        assert shadow.agreements()["support"].agreement == 1.0
        assert not shadow.agreements()["support"].alerting
        for _ in range(5):
            await answered_by(shadow, "30 days")
            await settle(book)
        state = shadow.agreements()["support"]
        assert (state.agreement, state.samples, state.alerting) == (0.5, 10, True)
        for _ in range(10):  # the window slides past the disagreements
            await answered_by(shadow, "30 days")
            await settle(book)
    assert not shadow.agreements()["support"].alerting
    alerts = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(alerts) == 1
    # It fires as the agreement first crosses 80%: 5 agreed, 2 did not.
    assert "route support agrees with ref on only 71.4% of the last 7 answers" in alerts[0].getMessage()
    assert any("back to" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)
    assert [c[1] for c in seen.compared[:10]] == [True] * 5 + [False] * 5
    assert all(cost > 0 for _, _, cost in seen.compared)
    assert all(call.model.name == "ref" for call in adapter.calls)


async def test_the_caller_never_waits_for_the_shadow_and_stop_cancels_it():
    shadow, book, seen, _ = runner(lambda call: answer("late"), delay_s=10)
    started = asyncio.get_running_loop().time()
    await answered_by(shadow, "now")
    assert asyncio.get_running_loop().time() - started < 1
    assert len(book.tasks) == 1
    await asyncio.sleep(0)
    await book.close()
    assert not book.tasks
    assert seen.compared == []


async def test_the_hourly_spend_cap_skips_shadows_beyond_it():
    # Each shadow of 100 input + 20 output tokens at the reference's $5/$15 per Mtok costs $0.0008.
    shadow, book, seen, _ = runner(lambda call: answer("x"), max_usd_per_hour=0.002)
    for _ in range(4):
        await answered_by(shadow, "x")
        await settle(book)
    assert len(seen.compared) == 2
    assert seen.skipped == [("support", "budget")] * 2


async def test_no_shadow_when_the_reference_model_answered_or_the_route_is_not_shadowed():
    shadow, book, _, adapter = runner(lambda call: answer("x"))
    await answered_by(shadow, "x", model_name="ref")
    other = Plan(route="elsewhere", strategy="rules", stages=PLAN.stages)
    executor = Executor({"p1": MockAdapter(lambda call: answer("x"))}, {"p1": provider()})
    result = await executor.run(other, chat(), asyncio.get_running_loop().time() + 5)
    shadow.answered(answered(chat(), other, result))
    await settle(book)
    assert adapter.calls == []


async def test_a_judge_model_decides_when_asked():
    def behaviour(call: ProviderCall) -> Completion:
        if call.model.name == "judge":
            prompt = call.request.messages[-1].text
            return answer(
                "AGREE" if "Answer A:\nThirty days" in prompt and "30 days" in prompt else "DISAGREE"
            )
        return answer("30 days")

    shadow, book, seen, adapter = runner(behaviour, compare=Compare.JUDGE, judge_model="judge")
    await answered_by(shadow, "Thirty days")
    await settle(book)
    assert [c[1] for c in seen.compared] == [True]
    assert [call.model.name for call in adapter.calls] == ["ref", "judge"]
    assert all(call.request.hints.priority.name == "BATCH" for call in adapter.calls)


async def test_a_shadows_attempts_are_reported_to_the_call_it_shadows():
    """Its provider calls are real ones: the answered call's observer (health, telemetry) sees them."""
    shadow, book, _, _ = runner(lambda call: answer("30 days"), compare=Compare.JUDGE, judge_model="judge")
    executor = Executor({"p1": MockAdapter(lambda call: answer("30 days"))}, {"p1": provider()})
    request = chat("what is the refund window?")
    result = await executor.run(PLAN, request, asyncio.get_running_loop().time() + 5)
    call = SeenAttempts()
    c = result
    shadow.answered(Answered(request, PLAN, c.completion, c.candidate, c.attempts, c.winner, call))
    await settle(book)
    assert [(r.model, r.outcome.value) for r in call.records] == [("ref", "success"), ("judge", "success")]
    assert [e.start.model.name for e in call.ended] == ["ref", "judge"]


def test_config_names_unknown_routes_models_and_a_judge_without_a_model():
    raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    raw["shadow"] = [
        {"route": "nowhere", "reference_model": "gpt-5"},
        {"route": "default", "reference_model": "gpt-4o", "compare": "judge"},
    ]
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, source="t.yaml", env={})
    message = str(raised.value)
    assert "shadow[1]" in message
    assert "judge needs judge_model" in message
    raw["shadow"][1]["judge_model"] = "gpt-4o-mini"
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, source="t.yaml", env={})
    message = str(raised.value)
    assert "shadow[0] (nowhere).route: unknown route 'nowhere'" in message
    assert "shadow[0] (nowhere).reference_model: unknown model 'gpt-5'" in message


async def test_end_to_end_agreement_is_exported_as_a_metric(
    simulator: Simulator, access_log: Lines, monkeypatch
):
    from tests.telemetry import conftest as tc

    def with_shadow(base_url: str, **server: Any) -> Any:
        raw = yaml.safe_load(EXAMPLE_CONFIG.read_text())
        point_at_simulator(raw, base_url.removesuffix("/v1"))
        raw["shadow"] = [{"route": "default", "reference_model": "gpt-4o", "share": 1.0, "min_samples": 2}]
        return parse_config(raw, source=str(EXAMPLE_CONFIG), env={})

    monkeypatch.setattr(tc, "example_config", with_shadow)
    async with observed_sidecar(simulator, access_log) as o:
        for i in range(3):
            await o.stub.Generate(generate_request(f"say something {i}"))
        runtime = o.sidecar.runtime()
        assert runtime.shadow is not None
        await settle(o.sidecar._shared.shadow)  # type: ignore[union-attr]
        m = o.metrics()
        # The simulator's models answer differently: the shadow sees disagreement.
        assert sum(p.value for p in m["turnout.shadow.comparisons"]) == 3
        (agreement,) = m["turnout.shadow.agreement"]
        assert agreement.attributes == {"turnout.route": "default"}
        assert agreement.value == 0.0
        (alert,) = m["turnout.shadow.alert"]
        assert alert.value == 1
        attempts = {p.attributes["turnout.model"] for p in m["turnout.attempts"]}
        assert "gpt-4o" in attempts  # shadow calls are real calls: in spend and health
