"""The race engine on virtual time: fallback, hedging, retries, final failures, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.plan import Candidate
from sidecar.execution.race import FailureVerdict, Launch, Race, RaceLost
from tests.execution.virtual import now, run_virtual
from tests.factories import model

A, B, C = (Candidate(model(n)) for n in "abc")


class Script:
    """Each candidate's attempts in turn: (seconds until it ends, the error or None for success)."""

    def __init__(self, plan: dict[str, list[tuple[float, FailureClass | None]]]) -> None:
        self.plan = {k: list(v) for k, v in plan.items()}
        self.log: list[tuple[float, str, str]] = []  # (time, event, who)
        self.cancelled: list[str] = []

    async def start(self, launch: Launch) -> str:
        name = launch.candidate.model.name
        role = "hedge" if launch.hedged else ("retry" if launch.retry_of else "start")
        self.log.append((now(), role, name))
        delay, failure = self.plan[name].pop(0)
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        if failure is not None:
            raise ProviderError(failure, f"{name} failed", retry_after_s=2.0)
        return f"answer from {name}"


def race(script: Script, candidates=(A, B, C), *, hedge=None, may_hedge=True, verdict=None) -> Race[str]:
    counter = iter(range(1, 100))
    return Race(
        list(candidates),
        script.start,
        verdict or (lambda launch, error: FailureVerdict(final=not error.failure_class.tries_next_candidate)),
        hedge_delay=lambda c: hedge,
        may_hedge=lambda c: may_hedge,
        clock=now,
        numbering=lambda: next(counter),
    )


def run(r: Race[str]) -> tuple[Launch, str, float]:
    async def main() -> tuple[Launch, str, float]:
        launch, answer = await r.run()
        return launch, answer, now()

    return run_virtual(main())


def test_first_candidate_answers_alone():
    s = Script({"a": [(1.0, None)]})
    launch, answer, t = run(race(s))
    assert (answer, t, launch.number) == ("answer from a", 1.0, 1)
    assert s.log == [(0.0, "start", "a")]


def test_failure_starts_the_next_candidate_at_once():
    s = Script({"a": [(1.0, FailureClass.SERVER_ERROR)], "b": [(0.5, None)]})
    _, answer, t = run(race(s))
    assert answer == "answer from b"
    assert s.log == [(0.0, "start", "a"), (1.0, "start", "b")]
    assert t == 1.5


def test_slowness_starts_a_hedge_and_the_first_answer_wins():
    s = Script({"a": [(10.0, None)], "b": [(1.0, None)]})
    launch, answer, t = run(race(s, hedge=2.0))
    assert (answer, t, launch.hedged) == ("answer from b", 3.0, True)
    assert s.log == [(0.0, "start", "a"), (2.0, "hedge", "b")]
    assert s.cancelled == ["a"]  # the loser is cancelled (its HTTP request closed)


def test_no_hedge_without_budget():
    s = Script({"a": [(10.0, None)], "b": [(1.0, None)]})
    _, answer, t = run(race(s, hedge=2.0, may_hedge=False))
    assert (answer, t) == ("answer from a", 10.0)


def test_retry_after_backoff_competes_with_fallback():
    s = Script({"a": [(1.0, FailureClass.RATE_LIMITED), (0.5, None)], "b": [(5.0, None)]})

    def verdict(launch, error):
        return FailureVerdict(retry_in_s=error.retry_after_s if launch.tries == 1 else None)

    launch, answer, t = run(race(s, candidates=(A, B), verdict=verdict))
    assert s.log == [(0.0, "start", "a"), (1.0, "start", "b"), (3.0, "retry", "a")]
    assert (answer, t, launch.retry_of, launch.tries) == ("answer from a", 3.5, 1, 2)
    assert s.cancelled == ["b"]


def test_a_final_failure_ends_the_race_at_once():
    s = Script({"a": [(1.0, FailureClass.BAD_REQUEST)], "b": [(1.0, None)]})
    with pytest.raises(RaceLost) as info:
        run(race(s))
    assert [e.failure_class for e in info.value.errors] == [FailureClass.BAD_REQUEST]
    assert s.log == [(0.0, "start", "a")]


def test_skip_drops_queued_candidates_that_would_fail_alike():
    s = Script({"a": [(1.0, FailureClass.CONTEXT_TOO_LONG)], "c": [(1.0, None)]})

    def verdict(launch, error):
        return FailureVerdict(skip=lambda c: c.model.name == "b")

    _, answer, _ = run(race(s, verdict=verdict))
    assert answer == "answer from c"
    assert [who for _, _, who in s.log] == ["a", "c"]


def test_every_candidate_failing_lists_every_error_in_order():
    fail = FailureClass.OVERLOADED
    s = Script({"a": [(1.0, fail)], "b": [(2.0, fail)], "c": [(0.5, fail)]})
    with pytest.raises(RaceLost) as info:
        run(race(s))
    assert [str(e) for e in info.value.errors] == [f"overloaded: {n} failed" for n in "abc"]


def test_cancelling_the_race_cancels_every_attempt():
    s = Script({"a": [(10.0, None)], "b": [(10.0, None)], "c": [(10.0, None)]})

    async def main() -> None:
        task = asyncio.ensure_future(race(s, hedge=1.0).run())
        await asyncio.sleep(5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run_virtual(main())
    assert sorted(s.cancelled) == ["a", "b", "c"]  # hedged at t=1 and t=2, all cancelled at t=5


def test_a_held_retry_goes_before_any_fallback():
    s = Script({"a": [(1.0, FailureClass.INVALID_OUTPUT), (1.0, None)], "b": [(0.1, None)]})

    def verdict(launch, error):
        return (
            FailureVerdict(retry_in_s=0.0, retry_variant="stricter", hold=True)
            if launch.tries == 1
            else FailureVerdict()
        )

    launch, answer, t = run(race(s, candidates=(A, B), verdict=verdict))
    assert s.log == [(0.0, "start", "a"), (1.0, "retry", "a")]
    assert (answer, t, launch.variant, launch.retry_of) == ("answer from a", 2.0, "stricter", 1)


def test_a_failed_retry_starts_no_second_fallback():
    s = Script(
        {"a": [(1.0, FailureClass.SERVER_ERROR), (0.5, FailureClass.SERVER_ERROR)], "b": [(5.0, None)]}
    )

    def verdict(launch, error):
        return FailureVerdict(retry_in_s=0.5 if launch.tries == 1 else None)

    _, answer, t = run(race(s, verdict=verdict))  # c is queued, but only b's failure may start it
    assert s.log == [(0.0, "start", "a"), (1.0, "start", "b"), (1.5, "retry", "a")]
    assert (answer, t) == ("answer from b", 6.0)


def test_answers_in_the_same_wake_up_go_to_the_earliest_started_and_the_others_are_released():
    # a answers at t=3, and so do the hedges b (started at 1) and c (at 2): one wake-up, three
    # answers. The earliest-started wins whatever order the set of done tasks comes in.
    for _ in range(20):
        s = Script({"a": [(3.0, None)], "b": [(2.0, None)], "c": [(1.0, None)]})
        released: list[tuple[int, str]] = []

        async def discard(launch: Launch, answer: str, released=released) -> None:
            released.append((launch.number, answer))

        r = race(s, hedge=1.0)
        r._discard = discard
        launch, answer, t = run(r)
        assert (launch.number, answer, t) == (1, "answer from a", 3.0)
        assert sorted(released) == [(2, "answer from b"), (3, "answer from c")]
        assert s.cancelled == []


def test_an_answer_beats_a_final_failure_in_the_same_wake_up():
    for _ in range(20):
        s = Script({"a": [(3.0, FailureClass.BAD_REQUEST)], "b": [(1.0, None)]})
        launch, answer, t = run(race(s, candidates=(A, B), hedge=2.0))
        assert (launch.number, answer, t) == (2, "answer from b", 3.0)
