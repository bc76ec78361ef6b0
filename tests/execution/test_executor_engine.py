"""The executor on virtual time: cascades, invalid-output retries, context escalation, breakers,
admission, hedging, deadlines and stream continuation, with scripted adapters."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sidecar.domain.errors import AllCandidatesFailed, DeadlineExceeded, ResourceExhausted, StreamInterrupted
from sidecar.domain.outcome import AttemptOutcome, FailureClass, ProviderError
from sidecar.domain.plan import Candidate, ExecutionPolicy, Plan, Stage
from sidecar.domain.request import Priority, ResponseFormat, ResponseFormatKind
from sidecar.domain.response import Completion, FinishReason, StreamChunk, Usage
from sidecar.domain.result import ExecutionResult
from sidecar.execution.admission import Admission, Limits
from sidecar.execution.breaker import BreakerSet
from sidecar.execution.budget import Budget
from sidecar.execution.executor import Executor, Resilience
from sidecar.providers.base import MockAdapter, ProviderCall
from tests.execution.virtual import now, run_virtual
from tests.factories import SeenAttempts, chat, model, provider

SMALL, BIG = model("small", context=8_000), model("big", context=128_000)


DEFAULT = ExecutionPolicy()


def plan(*stages: tuple, policy: ExecutionPolicy = DEFAULT, escalate=frozenset()) -> Plan:
    last = len(stages) - 1
    return Plan(
        "r",
        "test",
        tuple(
            Stage(tuple(Candidate(m) for m in s), escalate if i < last else frozenset())
            for i, s in enumerate(stages)
        ),
        execution=policy,
    )


def answer(text: str = "ok", finish=FinishReason.STOP, **extra) -> Completion:
    return Completion(text, finish, Usage(10, 5), **extra)


def executor(behaviour, *, delay_s=0.0, resilience=None) -> tuple[Executor, MockAdapter]:
    adapter = MockAdapter(behaviour, delay_s=delay_s)
    x = Executor({"p1": adapter}, {"p1": provider("p1")}, resilience=resilience, clock=now)
    return x, adapter


def run(x: Executor, p: Plan, request=None, deadline=60.0) -> ExecutionResult:
    return run_virtual(x.run(p, request or chat(), deadline))


def by_model(answers: dict[str, Completion | ProviderError]):
    return lambda call: answers[call.model.name]


def test_cascade_escalates_on_length_and_marks_the_attempt():
    x, _ = executor(by_model({"small": answer("cut", FinishReason.LENGTH), "big": answer("full")}))
    result = run(x, plan((SMALL,), (BIG,), escalate=frozenset({"length"})))
    assert result.completion.text == "full"
    assert [(a.model, a.escalated) for a in result.attempts] == [("small", "length"), ("big", "")]
    assert result.total_cost_usd_nanos > result.cost_usd_nanos  # the passed-over answer was billed too


@pytest.mark.parametrize(
    ("small", "policy", "reason"),
    [
        (answer("", refusal="I can't help with that."), ExecutionPolicy(), "refusal"),
        (
            answer("Sorry, I cannot assist."),
            ExecutionPolicy(refusal_patterns=(r"\bcannot assist\b",)),
            "refusal",
        ),
        (  # matches none of the expected answers (here: a bare choice letter, in any case)
            answer("The answer is B."),
            ExecutionPolicy(expected_patterns=(r"^\s*[a-e]\s*$",)),
            "refusal",
        ),
        (answer("maybe", mean_logprob=-2.5), ExecutionPolicy(low_confidence_logprob=-1.0), "low_confidence"),
    ],
)
def test_cascade_escalates_on_refusal_and_low_confidence(small, policy, reason):
    x, adapter = executor(by_model({"small": small, "big": answer("sure")}))
    result = run(x, plan((SMALL,), (BIG,), policy=policy, escalate=frozenset({"refusal", "low_confidence"})))
    assert result.completion.text == "sure"
    assert result.attempts[0].escalated == reason
    assert adapter.calls[0].want_logprobs is (policy.low_confidence_logprob is not None)


def test_an_answer_matching_an_expected_pattern_stands():
    policy = ExecutionPolicy(expected_patterns=(r"^\s*[a-e]\s*$", "```"))
    x, _ = executor(by_model({"small": answer(" b\n"), "big": answer("sure")}))
    result = run(x, plan((SMALL,), (BIG,), policy=policy, escalate=frozenset({"refusal"})))
    assert (result.completion.text, result.attempts[0].escalated) == (" b\n", "")


def test_the_last_stage_answers_even_if_it_would_escalate():
    x, _ = executor(by_model({"big": answer("cut", FinishReason.LENGTH)}))
    assert run(x, plan((BIG,), escalate=frozenset({"length"}))).completion.text == "cut"


REJECTED = {
    "length": answer("cut", FinishReason.LENGTH),
    "refusal": answer("I'm sorry, I can't help with that."),
    "expected_patterns": answer("no letter here"),
}
STRICT = ExecutionPolicy(max_retries=0, expected_patterns=(r"\b[A-D]\b",))


@pytest.mark.parametrize("why", sorted(REJECTED))
@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_a_rejected_answer_is_never_returned_even_when_every_later_stage_fails(why, stream):
    down = ProviderError(FailureClass.SERVER_ERROR, "down", status=500)
    x, _ = executor(by_model({"small": REJECTED[why], "big": down}))
    p = plan((SMALL,), (BIG,), policy=STRICT, escalate=frozenset({"length", "refusal"}))
    with pytest.raises(AllCandidatesFailed) as info:
        collect(x, p) if stream else run(x, p)
    small, big = info.value.attempts
    reason = "refusal" if why == "expected_patterns" else why  # an unexpected form reads as a refusal
    assert (small.model, small.outcome, small.escalated) == ("small", AttemptOutcome.SUCCESS, reason)
    assert (big.model, big.failure_class) == ("big", FailureClass.SERVER_ERROR)
    assert small.cost_usd_nanos == SMALL.price.cost_usd_nanos(Usage(10, 5)) > 0  # paid for, though rejected
    assert f"small: rejected ({reason})" in str(info.value)
    assert "big: server_error" in str(info.value)


def test_a_stream_sends_nothing_of_a_rejected_answer_and_streams_the_next_stage():
    x, adapter = executor(by_model({"small": answer("cut", FinishReason.LENGTH), "big": answer("whole")}))
    text, result = collect(x, plan((SMALL,), (BIG,), escalate=frozenset({"length"})))
    assert (text, result.completion.text, result.candidate.model.name) == ("whole", "whole", "big")
    assert [(a.model, a.escalated) for a in result.attempts] == [("small", "length"), ("big", "")]
    assert result.total_cost_usd_nanos == sum(a.cost_usd_nanos for a in result.attempts) > 0
    assert [c.model.name for c in adapter.calls] == ["small", "big"]


def test_a_stream_sends_a_checked_answer_once_it_is_accepted():
    x, _ = executor(by_model({"small": answer("fine"), "big": answer("unused")}))
    text, result = collect(x, plan((SMALL,), (BIG,), escalate=frozenset({"length"})))
    assert (text, result.candidate.model.name, result.completion.finish_reason) == (
        "fine",
        "small",
        FinishReason.STOP,
    )


SCHEMA = {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["spam", "ham"]}}}
JSON_REQUEST = dataclasses.replace(
    chat(), response_format=ResponseFormat(ResponseFormatKind.JSON_SCHEMA, "o", SCHEMA)
)


def test_invalid_output_retry_tells_the_model_what_was_wrong():
    def behaviour(call: ProviderCall) -> Completion:
        told = "rejected" in call.request.messages[-1].text
        return answer('{"label": "spam"}' if told else '{"label": "eggs"}')

    x, adapter = executor(behaviour)
    result = run(x, plan((SMALL,), policy=ExecutionPolicy(invalid_output="retry")), JSON_REQUEST)
    assert result.parsed_json == {"label": "spam"}
    assert [(a.number, a.failure_class, a.retry_of) for a in result.attempts] == [
        (1, FailureClass.INVALID_OUTPUT, 0),
        (2, None, 1),
    ]
    note = adapter.calls[1].request.messages[-1].text
    assert '"eggs" is not one of "spam" or "ham"' in note


def test_invalid_output_everywhere_lists_the_violations():
    x, _ = executor(lambda call: answer('{"label": "eggs"}'))
    with pytest.raises(AllCandidatesFailed) as info:
        run(x, plan((SMALL, BIG)), JSON_REQUEST)
    assert str(info.value).count('is not one of "spam" or "ham"') == 2


def test_context_too_long_goes_to_a_larger_window():
    tiny = model("tiny", context=4_000)
    err = ProviderError(FailureClass.CONTEXT_TOO_LONG, "too long", status=400)
    x, adapter = executor(by_model({"small": err, "tiny": answer("no"), "big": answer("yes")}))
    result = run(x, plan((SMALL, tiny, BIG)))
    assert result.completion.text == "yes"
    assert [c.model.name for c in adapter.calls] == ["small", "big"]  # tiny (smaller) was skipped


def test_an_open_breaker_skips_at_once():
    breakers = BreakerSet(fail_max=1, reset_timeout_s=30, clock=now)
    resilience = Resilience(breakers, Budget(clock=now), Budget(clock=now), Admission({}))
    err = ProviderError(FailureClass.SERVER_ERROR, "down", status=500)
    x, _ = executor(by_model({"small": err, "big": answer("yes")}), delay_s=1.0, resilience=resilience)
    p = plan((SMALL, BIG), policy=ExecutionPolicy(max_retries=0))

    async def twice() -> tuple[ExecutionResult, float]:
        await x.run(p, chat(), 60)
        started = now()
        second = await x.run(p, chat(), 60)
        return second, now() - started

    second, took = run_virtual(twice())
    first = second.attempts[0]
    assert (first.model, first.failure_class) == ("small", FailureClass.CIRCUIT_OPEN)
    assert first.latency_s == 0
    assert took == 1.0  # only big's one second: the open breaker cost nothing


def all_open_then_recovered(stream: bool):
    """small then big fail and open their breakers; the endpoint recovers; one more request."""
    breakers = BreakerSet(fail_max=1, reset_timeout_s=30, clock=now)
    resilience = Resilience(breakers, Budget(clock=now), Budget(clock=now), Admission({}))
    down = ProviderError(FailureClass.CONNECTION, "connection refused")
    up = {"yes": False}
    x, _ = executor(lambda call: answer(call.model.name) if up["yes"] else down, resilience=resilience)
    policy = ExecutionPolicy(max_retries=0)

    async def scenario() -> tuple[ExecutionResult, float]:
        with pytest.raises(AllCandidatesFailed):
            await x.run(plan((SMALL, BIG), policy=policy), chat(), 60)
        up["yes"] = True
        await asyncio.sleep(1.0)
        started = now()
        if stream:
            events = [e async for e in x.stream(plan((BIG, SMALL), policy=policy), chat(), 60)]
            result = events[-1]
            assert isinstance(result, ExecutionResult)
        else:
            result = await x.run(plan((BIG, SMALL), policy=policy), chat(), 60)
        return result, now() - started

    result, took = run_virtual(scenario())
    return result, took, breakers


@pytest.mark.parametrize("stream", [False, True], ids=["unary", "stream"])
def test_every_breaker_open_the_one_open_longest_is_tried_at_once(stream):
    result, took, breakers = all_open_then_recovered(stream)
    assert result.completion.text == "small"
    assert [(a.model, a.outcome, a.failure_class) for a in result.attempts] == [
        ("big", AttemptOutcome.FAILURE, FailureClass.CIRCUIT_OPEN),  # not open as long: refused
        ("small", AttemptOutcome.SUCCESS, None),  # open longest: probed 29 s early, and it closes
    ]
    assert took == 0
    assert (breakers.state("small"), breakers.state("big")) == ("closed", "open")


def test_panic_is_one_try_per_race_not_each_candidate_in_turn_nor_its_retries():
    breakers = BreakerSet(fail_max=1, reset_timeout_s=30, clock=now)
    resilience = Resilience(breakers, Budget(clock=now), Budget(clock=now), Admission({}))
    down = ProviderError(FailureClass.CONNECTION, "connection refused")
    x, adapter = executor(lambda call: down, resilience=resilience)
    p = plan((SMALL, BIG), policy=ExecutionPolicy(max_retries=1, backoff_base_s=0.1))

    async def twice() -> AllCandidatesFailed:
        with pytest.raises(AllCandidatesFailed):
            await x.run(p, chat(), 60)  # opens both (small first)
        await asyncio.sleep(1.0)
        sent = len(adapter.calls)
        with pytest.raises(AllCandidatesFailed) as info:
            await x.run(p, chat(), 60)  # still down
        assert len(adapter.calls) == sent + 1  # one panic probe went out, nothing else
        return info.value

    error = run_virtual(twice())
    outcomes = [(a.model, a.failure_class, a.retry_of) for a in error.attempts]
    assert outcomes[:2] == [("small", FailureClass.CONNECTION, 0), ("big", FailureClass.CIRCUIT_OPEN, 0)]
    assert all(c is FailureClass.CIRCUIT_OPEN for _, c, _ in outcomes[2:])  # retries: refused at once


def test_no_capacity_is_resource_exhausted_with_retry_info():
    admission = Admission({"p1": Limits(max_concurrency=1)}, max_wait_s=0.5)
    resilience = Resilience(BreakerSet(clock=now), Budget(clock=now), Budget(clock=now), admission)
    x, _ = executor(lambda call: answer(), delay_s=5.0, resilience=resilience)
    p = plan((SMALL,), policy=ExecutionPolicy(max_retries=0))

    async def crowd() -> list[object]:
        return await asyncio.gather(x.run(p, chat(), 60), x.run(p, chat(), 60), return_exceptions=True)

    ok, refused = run_virtual(crowd())
    assert isinstance(ok, ExecutionResult)
    assert isinstance(refused, ResourceExhausted)
    assert refused.retry_after_s == 0.5
    assert "no capacity" in str(refused)


def test_hedging_records_the_hedge_and_cancels_the_loser():
    delays = {"small": 10.0, "big": 1.0}

    class Slow(MockAdapter):
        async def complete(self, call):
            self.calls.append(call)
            await asyncio.sleep(delays[call.model.name])
            return answer(call.model.name)

    adapter = Slow(lambda call: answer())
    seen = SeenAttempts()
    x = Executor({"p1": adapter}, {"p1": provider("p1")}, clock=now)
    policy = ExecutionPolicy(hedging=True, hedge_delay_s=2.0)
    result = run_virtual(x.run(plan((SMALL, BIG), policy=policy), chat(), 60.0, seen))
    assert result.completion.text == "big"
    outcomes = {(a.model, a.outcome, a.hedged) for a in result.attempts}
    assert outcomes == {("small", AttemptOutcome.CANCELLED, False), ("big", AttemptOutcome.SUCCESS, True)}
    assert len(seen.records) == 2


def test_the_deadline_ends_the_request_with_every_attempt():
    x, _ = executor(lambda call: answer(), delay_s=100.0)
    with pytest.raises(DeadlineExceeded) as info:
        run(x, plan((SMALL, BIG)), deadline=5.0)
    assert info.value.attempts[0].failure_class is FailureClass.TIMEOUT


class BreaksAfterTokens(MockAdapter):
    async def stream(self, call):
        self.calls.append(call)
        if call.model.name == "small":
            yield StreamChunk(text="Once upon ")
            yield StreamChunk(text="a time")
            raise ProviderError(FailureClass.STREAM_INTERRUPTED, "connection reset")
        assert call.request.messages[-2].text == "Once upon a time"  # the partial answer as context
        yield StreamChunk(text=", the end.")
        yield StreamChunk(finish_reason=FinishReason.STOP, usage=Usage(20, 4))


def collect(x: Executor, p: Plan) -> tuple[str, ExecutionResult]:
    async def main() -> tuple[str, ExecutionResult]:
        text, result = "", None
        async for event in x.stream(p, chat(), 60.0):
            if isinstance(event, StreamChunk):
                text += event.text
            elif isinstance(event, ExecutionResult):
                result = event
        assert result is not None
        return text, result

    return run_virtual(main())


def test_a_broken_stream_continues_on_another_model():
    x = Executor({"p1": BreaksAfterTokens(lambda c: answer())}, {"p1": provider("p1")}, clock=now)
    text, result = collect(x, plan((SMALL, BIG), policy=ExecutionPolicy(stream_failover="continue")))
    assert text == "Once upon a time, the end."
    assert result.completion.text == text
    assert [(a.model, a.outcome) for a in result.attempts] == [
        ("small", AttemptOutcome.FAILURE),
        ("big", AttemptOutcome.SUCCESS),
    ]


def test_a_broken_stream_ends_with_a_clear_error_by_default():
    x = Executor({"p1": BreaksAfterTokens(lambda c: answer())}, {"p1": provider("p1")}, clock=now)
    with pytest.raises(StreamInterrupted) as info:
        collect(x, plan((SMALL, BIG)))
    assert info.value.delivered_chars == len("Once upon a time")


class Timed(MockAdapter):
    """Each model answers (or, for streams, sends its first token) after its own delay."""

    def __init__(self, delays: dict[str, float]) -> None:
        super().__init__(lambda call: answer(call.model.name))
        self.delays = delays

    async def complete(self, call):
        self.calls.append(call)
        await asyncio.sleep(self.delays[call.model.name])
        return answer(call.model.name)


# small answers at t=3; the hedge on big starts at t=2 and answers at t=3 too: one wake-up.
SAME_WAKE_UP = {"small": 3.0, "big": 1.0}
HEDGE_AT_2 = ExecutionPolicy(hedging=True, hedge_delay_s=2.0, max_retries=0)


def test_answers_in_the_same_wake_up_one_winner_recorded_and_the_other_cancelled():
    for _ in range(10):  # the order of a set of done tasks varies from run to run
        seen = SeenAttempts()
        adapters, providers = {"p1": Timed(SAME_WAKE_UP)}, {"p1": provider("p1")}
        x = Executor(adapters, providers, clock=now)
        result = run_virtual(x.run(plan((SMALL, BIG), policy=HEDGE_AT_2), chat(), 60.0, seen))
        assert (result.winner, result.completion.text) == (1, "small")  # the earlier-started attempt
        small, big = result.attempts
        assert (small.number, small.outcome) == (1, AttemptOutcome.SUCCESS)
        assert (big.number, big.outcome, big.hedged) == (2, AttemptOutcome.CANCELLED, True)
        assert big.usage == Usage(10, 5)  # it answered: billed, though not used
        assert big.cost_usd_nanos > 0
        assert result.total_cost_usd_nanos == small.cost_usd_nanos + big.cost_usd_nanos
        # The call's observer (health, telemetry) sees the same outcomes, each end with its start.
        assert sorted((r.number, r.outcome) for r in seen.records) == [(1, small.outcome), (2, big.outcome)]
        assert [e.start.number for e in seen.ended] == [e.record.number for e in seen.ended]
        assert sorted(s.number for s in seen.starts) == [1, 2]


def test_streams_reaching_a_first_token_in_the_same_wake_up_relay_the_earlier_started():
    for _ in range(10):
        x = Executor({"p1": Timed(SAME_WAKE_UP)}, {"p1": provider("p1")}, clock=now)
        text, result = collect(x, plan((SMALL, BIG), policy=HEDGE_AT_2))
        assert (text, result.winner) == ("small", 1)
        assert [(a.number, a.outcome) for a in result.attempts] == [
            (1, AttemptOutcome.SUCCESS),
            (2, AttemptOutcome.CANCELLED),
        ]
        assert result.attempts[1].latency_s == 1.0  # recorded when it lost, not when the stream ended


def test_priority_is_passed_to_admission():
    admission = Admission({"p1": Limits(max_concurrency=1)}, max_wait_s=100)
    resilience = Resilience(BreakerSet(clock=now), Budget(clock=now), Budget(clock=now), admission)
    order = []
    x, _ = executor(lambda call: answer(call.request.request_id), delay_s=1.0, resilience=resilience)
    p = plan((SMALL,))

    async def main() -> None:
        async def one(rid: str, priority: Priority, at: float) -> None:
            await asyncio.sleep(at)
            request = dataclasses.replace(
                chat(), request_id=rid, hints=dataclasses.replace(chat().hints, priority=priority)
            )
            order.append((await x.run(p, request, 100)).completion.text)

        await asyncio.gather(
            one("first", Priority.NORMAL, 0),
            one("batch", Priority.BATCH, 0.1),
            one("vip", Priority.CRITICAL, 0.2),
        )

    run_virtual(main())
    assert order == ["first", "vip", "batch"]
