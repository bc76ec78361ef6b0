"""Budgets over in-process counters: charging, refusing past a hard limit, settling real costs."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

import pytest

from sidecar.domain.errors import BudgetExceeded, NoCandidate
from sidecar.domain.model import USD_NANOS
from sidecar.domain.observe import AttemptEnded, RpcStarted
from sidecar.domain.outcome import AttemptCause, AttemptOutcome, AttemptRecord, AttemptStart
from sidecar.domain.plan import Candidate, PerDecision, Plan, Stage
from sidecar.domain.request import ChatRequest
from sidecar.limits.budgets import BudgetBook, BudgetSpec, Scope, SoftAction
from sidecar.limits.counters import LocalCounters
from sidecar.limits.policy import LimitedPolicy
from sidecar.limits.windows import Period, Window
from tests.factories import chat, model

NOON = datetime(2026, 12, 4, 12, 0, tzinfo=UTC).timestamp()
CHEAP, FRONTIER = model("cheap", quality=0.5), model("frontier", quality=0.9)


def day_budget(usd: float, **fields: object) -> BudgetSpec:
    spec = BudgetSpec("daily", int(usd * USD_NANOS), Window(Period.DAY))
    return dataclasses.replace(spec, **fields)  # type: ignore[arg-type]


def plan(estimate_usd: float, route: str = "default") -> Plan:
    candidate = Candidate(CHEAP, int(estimate_usd * USD_NANOS))
    return Plan(route=route, strategy="test", stages=(Stage((candidate,)),))


def book(*budgets: BudgetSpec, counters: LocalCounters | None = None) -> BudgetBook:
    return BudgetBook(budgets, counters or LocalCounters(), "default", clock=lambda: NOON)


def team(name: str) -> ChatRequest:
    return dataclasses.replace(chat(), labels={"team": name}, tenant_id="acme")


def attempt(b: BudgetBook, request: ChatRequest, cost_usd: float, model_name: str = "cheap") -> None:
    """One attempt's end as the call's observer reports it to the book."""
    start = AttemptStart(1, model(model_name), None, request, AttemptCause.PRIMARY)
    record = AttemptRecord(
        1, model_name, "p1", AttemptOutcome.SUCCESS, 0.1, cost_usd_nanos=int(cost_usd * 1e9)
    )
    b.rpc_started(RpcStarted("Generate")).attempt_ended(AttemptEnded(start, record, None))


async def test_a_hard_budget_refuses_once_spent_and_says_when_it_resets() -> None:
    b = book(day_budget(1.0))
    request = team("search")
    await b.admit(request, plan(0.6))
    await b.admit(request, plan(0.6))  # 0.6 < 1.0: let in, and it crosses the limit
    with pytest.raises(BudgetExceeded) as refused:
        await b.admit(request, plan(0.01))
    error = refused.value
    assert error.reason == "BUDGET_EXCEEDED"
    assert error.metadata == {"budget": "daily", "scope": "", "resets_at": "2026-12-05T00:00:00+00:00"}
    assert error.retry_after_s == 12 * 3600
    assert "$1.20 of $1.00 per day" in error.message


async def test_the_estimate_is_given_back_and_the_real_cost_of_every_attempt_kept() -> None:
    counters = LocalCounters()
    b = book(day_budget(10.0), counters=counters)
    request = team("search")
    hold = await b.admit(request, plan(0.5))
    attempt(b, request, 0.3)  # a failed-over first attempt, billed
    attempt(b, request, 0.4)  # the answer
    hold.release()
    hold.release()  # once only
    assert [u.spent_usd_nanos for u in await b.report()] == [700_000_000]


async def test_each_scope_counts_apart_and_requests_outside_a_scope_are_not_counted() -> None:
    b = book(day_budget(1.0, scope=Scope.LABEL, label="team"), counters=LocalCounters())
    await b.admit(team("search"), plan(0.9))
    await b.admit(team("search"), plan(0.9))
    with pytest.raises(BudgetExceeded) as refused:
        await b.admit(team("search"), plan(0.1))
    assert refused.value.scope == "team=search"
    await b.admit(team("ads"), plan(0.9))  # another team's budget is untouched
    assert (await b.admit(chat(), plan(5.0))).amount == 0  # no team label: no team budget applies


async def test_a_model_budget_counts_the_attempts_at_that_model() -> None:
    b = book(day_budget(1.0, scope=Scope.MODEL))
    request = team("x")
    attempt(b, request, 2.0, model_name="frontier")
    await b.admit(request, plan(0.1))  # the plan's first candidate is "cheap": its budget is free
    assert {u.scope: u.spent_usd_nanos for u in await b.report()} == {"model=cheap": 100_000_000}


async def test_a_soft_limit_logs_once_per_window_and_never_refuses(caplog: pytest.LogCaptureFixture) -> None:
    b = book(day_budget(1.0, hard=False, soft_at=0.5))
    caplog.set_level(logging.WARNING, logger="sidecar.limits.budgets")
    for _ in range(5):
        await b.admit(team("x"), plan(0.4))
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["budget 'daily': 80% of $1.00 per day used (soft limit 50%)"]


class _Engine:
    """Plans the best model the request does not deny."""

    def plan(self, request: ChatRequest) -> Plan:
        for m in (FRONTIER, CHEAP):
            if m.name not in request.hints.denied_models:
                return Plan("default", "test", (Stage((Candidate(m, 0),)),))
        raise NoCandidate("default", ())


async def test_past_a_soft_limit_the_policy_keeps_to_cheaper_models_and_says_why() -> None:
    b = book(day_budget(1.0, hard=False, soft_at=0.9, on_soft=SoftAction.CHEAPER, cheaper_max_quality=0.6))
    policy = LimitedPolicy(_Engine(), [CHEAP, FRONTIER], "default", budgets=b)
    request = team("x")
    assert policy.plan(request).stages[0].candidates[0].model is FRONTIER
    await b.admit(request, plan(0.95))
    narrowed = policy.plan(request)
    assert narrowed.stages[0].candidates[0].model is CHEAP
    assert str(narrowed.reasons[-1]) == (
        "budget: daily 95% of its day limit used, models above quality 0.6 excluded"
    )
    pinned = dataclasses.replace(request, hints=dataclasses.replace(request.hints, pinned_model="frontier"))
    assert policy.plan(pinned).reasons == ()  # a pinned model is the caller's explicit choice


async def test_when_no_cheaper_model_serves_the_usual_plan_stands() -> None:
    b = book(day_budget(1.0, hard=False, soft_at=0.5, on_soft=SoftAction.CHEAPER, cheaper_max_quality=0.1))
    policy = LimitedPolicy(_Engine(), [CHEAP, FRONTIER], "default", budgets=b)
    await b.admit(team("x"), plan(0.6))
    chosen = policy.plan(team("x"))
    assert chosen.stages[0].candidates[0].model is FRONTIER
    assert "the usual choice stands" in str(chosen.reasons[-1])


@pytest.mark.parametrize(
    ("window", "now", "resets"),
    [
        (Window(Period.HOUR), "2026-12-04T12:30:00+00:00", "2026-12-04T13:00:00+00:00"),
        (Window(Period.DAY, "Europe/Berlin"), "2026-12-04T22:30:00+00:00", "2026-12-04T23:00:00+00:00"),
        (Window(Period.MONTH), "2026-12-04T12:00:00+00:00", "2027-01-01T00:00:00+00:00"),
        # A DST change: the Berlin day of 2026-03-29 has 23 hours.
        (Window(Period.DAY, "Europe/Berlin"), "2026-03-29T12:00:00+00:00", "2026-03-29T22:00:00+00:00"),
        (Window(Period.ROLLING, rolling_s=3600), "2026-12-04T12:02:00+00:00", "2026-12-04T12:05:00+00:00"),
    ],
)
def test_windows_reset_on_the_calendar_of_their_time_zone(window: Window, now: str, resets: str) -> None:
    span = window.span(datetime.fromisoformat(now).timestamp())
    assert datetime.fromtimestamp(span.resets_at, UTC).isoformat() == resets
    assert span.ttl_s > span.resets_at - datetime.fromisoformat(now).timestamp()


def test_a_rolling_window_reads_the_buckets_of_the_last_window() -> None:
    window = Window(Period.ROLLING, rolling_s=1200)
    first, later = window.span(10_000.0), window.span(10_000.0 + 100)
    assert len(first.buckets) == 12
    assert later.buckets[1:] == first.buckets[:-1]  # one bucket (100 s) on, the oldest left


async def test_a_narrowed_plan_from_the_decision_cache_is_a_decision_of_its_own() -> None:
    cached = Plan("default", "test", (Stage((Candidate(CHEAP, 0),)),))

    class _Cache:
        def plan(self, request: ChatRequest) -> Plan:
            return dataclasses.replace(cached, cache_hit=True)  # the same decision, as the cache's

    b = book(day_budget(1.0, hard=False, soft_at=0.5, on_soft=SoftAction.CHEAPER, cheaper_max_quality=0.6))
    policy = LimitedPolicy(_Cache(), [CHEAP, FRONTIER], "default", budgets=b)
    rendered: PerDecision[str] = PerDecision()
    rendered.put(cached, "rendered without any budget note")
    await b.admit(team("x"), plan(0.6))
    first = policy.plan(team("x"))
    await b.admit(team("x"), plan(0.2))
    second = policy.plan(team("x"))
    assert rendered.get(first) is None
    assert rendered.get(second) is None
    assert len({id(cached.decision), id(first.decision), id(second.decision)}) == 3
    assert "60%" in str(first.reasons[-1])
    assert "80%" in str(second.reasons[-1])
    assert rendered.get(cached) == "rendered without any budget note"
    assert cached.reasons == ()


def test_a_kept_span_gives_way_at_the_windows_edge() -> None:
    day = Window(Period.DAY, "Europe/Berlin")
    midnight = datetime.fromisoformat("2026-12-05T00:00:00+01:00").timestamp()
    before, again, after = day.span(midnight - 1), day.span(midnight - 2), day.span(midnight)
    assert again is before  # the same window: the span kept
    assert before.buckets != after.buckets
    assert (before.resets_at, after.since) == (midnight, midnight)
    assert day.span(midnight - 1).buckets == before.buckets  # an earlier moment again: recomputed
