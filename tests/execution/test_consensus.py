"""Consensus cascades: the agreement kinds, the plan the strategy makes, and the executor's vote.

The executor's promises: agreeing voters' answer is returned and every voter's call is paid for; a
rejected vote is never returned, even when every model it escalates to fails.
"""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from pydantic import ValidationError

from sidecar.config.routes import RouteSettings
from sidecar.domain.errors import AllCandidatesFailed
from sidecar.domain.outcome import AttemptOutcome, FailureClass, ProviderError
from sidecar.domain.plan import Candidate, Consensus, Plan, Stage
from sidecar.domain.request import GenerationParams
from sidecar.domain.response import Completion, FinishReason, StreamChunk, TokenLogprob, TopLogprob, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.execution.agreement import choice, json_value, number, tally, text
from sidecar.execution.executor import Executor
from sidecar.policy.build import build_engine
from sidecar.policy.health import HealthTracker
from sidecar.policy.specs import ConsensusSpec, RouteSpec
from sidecar.providers.base import MockAdapter, ProviderCall
from sidecar.registry.registry import Registry
from tests.factories import chat, model, provider

# --- agreement ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("B", "B"),
        ("(C)", "C"),
        ("A) house", "A"),
        ("D.", "D"),
        ("The answer is B.", "B"),
        ("I do not know", None),
        ("Okay, let me think", None),
        ("", None),
    ],
)
def test_choice_reads_the_letter_or_nothing(answer, expected):
    assert choice(answer) == expected


def test_number_takes_the_last_number_as_a_value():
    assert number("3 apples and 4 pears make 1,250 grams") == "1250"
    assert number("2.50") == number("so 2.5") == "2.5"
    assert number("no digits here") is None


def test_text_and_json_ignore_what_does_not_change_the_meaning():
    assert text("  Paris.\n") == text("paris") == "paris"
    assert text(" \n ") is None
    assert json_value('{"b": 1, "a": [1, 2]}') == json_value('```json\n{"a":[1,2],"b":1}\n```')
    assert json_value("not json") is None


def test_tally_accepts_the_first_voter_of_the_agreeing_group_and_explains():
    v = tally([("m1", "B"), ("m2", "(B)")], "choice", 2)
    assert (v.accepted, v.reason) == (0, "2 of 2 agreed on 'B'")
    v = tally([("m1", "A"), ("m2", "C"), ("m3", "C")], "choice", 2)
    assert (v.accepted, v.reason) == (1, "2 of 3 agreed on 'C'")


def test_tally_rejects_disagreement_failures_and_non_answers():
    v = tally([("m1", "A"), ("m2", "C")], "choice", 2)
    assert v.accepted is None
    assert v.reason == "fewer than 2 agreed: 'A' (m1) vs 'C' (m2)"
    v = tally([("m1", "B"), ("m2", None), ("m3", "I cannot help")], "choice", 2)
    assert v.accepted is None
    assert v.reason == "fewer than 2 agreed: 'B' (m1) vs no answer (m2) vs no choice (m3)"


# --- the plan -------------------------------------------------------------------------------------

REGISTRY = Registry(
    models=(
        model("nano", price_in=0.1, price_out=0.4, quality=0.6),
        model("mini", price_in=0.15, price_out=0.6, quality=0.75),
        model("big", price_in=2.5, price_out=10, quality=0.9),
        model("mid", price_in=1.0, price_out=4, quality=0.8),
    ),
    providers={"p1": provider("p1")},
)


def plan_for(spec: ConsensusSpec, models: tuple[str, ...]) -> Plan:
    route = RouteSpec("r", models, (spec,))
    return build_engine({"r": route}, "r", REGISTRY, HealthTracker(), None, None).plan(chat())


def test_the_cheapest_vote_and_the_best_answers_when_they_disagree():
    plan = plan_for(ConsensusSpec(voters=2, need=2, agree="choice"), ("big", "mid", "mini", "nano"))
    assert [[c.model.name for c in s.candidates] for s in plan.stages] == [["nano", "mini"], ["big", "mid"]]
    assert plan.stages[0].consensus == Consensus(2, "choice")
    assert plan.stages[1].consensus is None
    assert any(
        str(r) == "consensus: 2 of nano + mini must agree on the choice, else big" for r in plan.reasons
    )


def test_too_few_models_for_a_vote_and_an_escalation_skip_it_and_say_so():
    plan = plan_for(ConsensusSpec(voters=2), ("mini", "nano"))
    assert all(s.consensus is None for s in plan.stages)
    assert any("consensus: 2 models left" in str(r) for r in plan.reasons)


def test_config_checks_need_room_and_a_single_stage_setter():
    ok = RouteSettings.model_validate(
        {
            "name": "r",
            "models": ["a", "b", "c"],
            "strategies": [{"consensus": {"voters": 2, "agree": "number"}}],
        }
    )
    assert ok.strategies[0].kind == "consensus"
    bad = [
        {"consensus": {"voters": 2, "need": 3}},
        {"consensus": {"agree": "vibes"}},
    ]
    for strategy in bad:
        with pytest.raises(ValidationError):
            RouteSettings.model_validate({"name": "r", "models": ["a", "b", "c"], "strategies": [strategy]})
    with pytest.raises(ValidationError, match="use one of them"):
        RouteSettings.model_validate(
            {"name": "r", "models": ["a", "b"], "strategies": ["cascade", "consensus"]}
        )
    with pytest.raises(ValidationError, match="no room"):
        RouteSettings.model_validate(
            {"name": "r", "models": ["a", "b", "c"], "max_candidates": 2, "strategies": ["consensus"]}
        )


# --- the vote -------------------------------------------------------------------------------------

CHEAP1, CHEAP2, STRONG = model("cheap1"), model("cheap2"), model("strong", price_in=10, price_out=30)
VOTE = Plan(
    route="r",
    strategy="consensus",
    stages=(
        Stage((Candidate(CHEAP1), Candidate(CHEAP2)), frozenset({"refusal"}), Consensus(2, "choice")),
        Stage((Candidate(STRONG),)),
    ),
)


def answering(answers: dict[str, str | FailureClass]):
    def behaviour(call: ProviderCall) -> Completion | ProviderError:
        a = answers[call.model.name]
        if isinstance(a, FailureClass):
            return ProviderError(a, f"{call.model.name} failed", status=500)
        return Completion(
            text=a, finish_reason=FinishReason.STOP, usage=Usage(input_tokens=100, output_tokens=5)
        )

    return behaviour


async def run(answers: dict[str, str | FailureClass]):
    adapter = MockAdapter(answering(answers))
    ex = Executor({"p1": adapter}, {"p1": provider("p1")})
    return adapter, await ex.run(VOTE, chat(), time.monotonic() + 30)


async def test_agreeing_voters_answer_and_both_calls_are_paid_for():
    adapter, result = await run({"cheap1": "B", "cheap2": "(B)", "strong": "C"})
    assert result.candidate.model.name == "cheap1"
    assert result.completion.text == "B"
    assert result.agreement == "2 of 2 agreed on 'B'"
    assert sorted(c.model.name for c in adapter.calls) == ["cheap1", "cheap2"]
    assert len(result.attempts) == 2
    assert all(a.cost_usd_nanos > 0 for a in result.attempts)
    assert result.total_cost_usd_nanos == sum(a.cost_usd_nanos for a in result.attempts)
    assert result.total_cost_usd_nanos > result.cost_usd_nanos


async def test_disagreement_escalates_and_says_why_on_every_rejected_attempt():
    _, result = await run({"cheap1": "A", "cheap2": "C", "strong": "B"})
    assert result.candidate.model.name == "strong"
    assert result.completion.text == "B"
    rejected = [a for a in result.attempts if a.model != "strong"]
    assert [a.escalated for a in rejected] == ["fewer than 2 agreed: 'A' (cheap1) vs 'C' (cheap2)"] * 2
    assert len(result.attempts) == 3
    assert result.total_cost_usd_nanos == sum(a.cost_usd_nanos for a in result.attempts)
    assert all(a.cost_usd_nanos > 0 for a in result.attempts)


async def test_a_refusal_is_no_vote():
    _, result = await run({"cheap1": "B", "cheap2": "I'm sorry, I can't help with that. B", "strong": "A"})
    assert result.candidate.model.name == "strong"


async def test_a_failed_voter_is_no_vote_and_its_attempt_is_recorded():
    _, result = await run({"cheap1": "B", "cheap2": FailureClass.SERVER_ERROR, "strong": "A"})
    assert result.candidate.model.name == "strong"
    failed = [a.outcome for a in result.attempts if a.model == "cheap2"]  # tried, and retried once
    assert failed
    assert set(failed) == {AttemptOutcome.FAILURE}


async def test_a_rejected_vote_is_never_returned_even_when_every_escalation_fails():
    with pytest.raises(AllCandidatesFailed) as caught:
        await run({"cheap1": "A", "cheap2": "C", "strong": FailureClass.SERVER_ERROR})
    assert "strong" in str(caught.value)


@pytest.mark.parametrize(
    ("cheap2", "expected"), [("(B)", ("cheap1", "B", "2 of 2 agreed on 'B'")), ("A", ("strong", "C", ""))]
)
async def test_a_stream_votes_before_it_sends_anything(cheap2, expected):
    adapter = MockAdapter(answering({"cheap1": "B", "cheap2": cheap2, "strong": "C"}))
    ex = Executor({"p1": adapter}, {"p1": provider("p1")})
    chunks, result = [], None
    async for event in ex.stream(VOTE, chat(), time.monotonic() + 30):
        if isinstance(event, StreamChunk):
            chunks.append(event.text)
        elif isinstance(event, ExecutionResult):
            result = event
    assert result is not None
    assert (result.candidate.model.name, "".join(chunks), result.agreement) == expected
    assert len(result.attempts) == (2 if expected[0] == "cheap1" else 3)  # every vote is counted


# Every mix of answers and failures: the answer returned is one that enough voters agreed on, or
# the escalation's; never a rejected one; and the cost is every attempt's.
OUTCOMES = ["A", "B", "(B)", "I cannot help", FailureClass.SERVER_ERROR]


@pytest.mark.parametrize("first", OUTCOMES)
@pytest.mark.parametrize("second", OUTCOMES)
@pytest.mark.parametrize("strong", ["C", FailureClass.SERVER_ERROR])
async def test_every_mix_returns_an_agreed_or_escalated_answer_and_counts_every_cost(first, second, strong):
    answers = {"cheap1": first, "cheap2": second, "strong": strong}
    answered = {m for m, a in answers.items() if not isinstance(a, FailureClass)}
    letters = {choice(a) for m, a in answers.items() if m != "strong" and m in answered}
    agreed = {"cheap1", "cheap2"} <= answered and len(letters) == 1 and None not in letters
    if not agreed and strong is FailureClass.SERVER_ERROR:
        with pytest.raises(AllCandidatesFailed) as caught:
            await run(answers)
        answered_attempts = [a for a in caught.value.attempts if a.outcome is AttemptOutcome.SUCCESS]
        assert all(a.escalated for a in answered_attempts)  # rejected, not returned
        return
    _, result = await run(answers)
    expected = ("cheap1", first) if agreed else ("strong", strong)
    assert (result.candidate.model.name, result.completion.text) == expected
    assert result.total_cost_usd_nanos == sum(a.cost_usd_nanos for a in result.attempts)
    paid = {a.model for a in result.attempts if a.outcome is AttemptOutcome.SUCCESS}
    assert paid == answered - ({"strong"} if agreed else set())


async def test_a_voted_stream_sends_the_accepted_answers_token_logprobs():
    # The accepted answer goes out whole, as one chunk: its logprobs go with it, or a client that
    # asked for them would get none from a stream that voted.
    tokens = (TokenLogprob("B", -0.2, top=(TopLogprob("B", -0.2), TopLogprob("C", -1.9))),)

    def behaviour(call: ProviderCall) -> Completion:
        return Completion("B", FinishReason.STOP, Usage(10, 1), logprobs=tokens if call.logprobs else ())

    ex = Executor({"p1": MockAdapter(behaviour)}, {"p1": provider("p1")})
    request = replace(chat(), params=GenerationParams(logprobs=True, top_logprobs=2))
    chunks = [e async for e in ex.stream(VOTE, request, time.monotonic() + 30) if isinstance(e, StreamChunk)]
    assert [t for c in chunks for t in c.logprobs] == list(tokens)
