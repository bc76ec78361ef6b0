"""Admission control on virtual time: slots, priority order, wait bounds, cancellation and rates."""

from __future__ import annotations

import asyncio
import math

import pytest

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import Priority
from sidecar.execution.admission import Admission, Limits
from tests.execution.virtual import now, run_virtual

FAR = math.inf


async def enter(
    admission: Admission,
    log: list[tuple[str, float]],
    name: str,
    *,
    model: str = "m",
    priority: Priority = Priority.NORMAL,
    tokens: int = 0,
    deadline: float = FAR,
    hold_s: float = 0.0,
    until: asyncio.Event | None = None,
) -> None:
    """Get admitted, note the time, then hold the place for `hold_s` or until `until` is set."""
    async with admission.admit("p", model, priority=priority, tokens=tokens, deadline=deadline):
        log.append((name, now()))
        await asyncio.sleep(hold_s)
        if until is not None:
            await until.wait()


async def admitted_at_once(admission: Admission, model: str = "m") -> bool:
    log: list[tuple[str, float]] = []
    start = now()
    await asyncio.wait_for(enter(admission, log, "probe", model=model), timeout=0.001)
    return log == [("probe", start)]


def test_no_limits_admits_everyone_at_once() -> None:
    async def scenario() -> None:
        for admission in (Admission({}), Admission({"p": Limits()}, {"m": Limits()})):
            log: list[tuple[str, float]] = []
            async with asyncio.TaskGroup() as tg:
                for i in range(50):
                    tg.create_task(enter(admission, log, str(i), hold_s=1.0))
            assert len(log) == 50
            assert {t for _, t in log} == {log[0][1]}  # nobody waited
            assert admission.depth("p") == 0

    run_virtual(scenario())


def test_concurrency_limit_queues_and_releases() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=2)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            for name in "abcde":
                tg.create_task(enter(admission, log, name, hold_s=1.0))
        assert log == [("a", 0), ("b", 0), ("c", 1), ("d", 1), ("e", 2)]
        assert await admitted_at_once(admission)

    run_virtual(scenario())


def test_waiters_are_served_by_priority_then_fifo() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        release = asyncio.Event()
        arrivals = [
            ("batch", Priority.BATCH),
            ("normal-1", Priority.NORMAL),
            ("interactive", Priority.INTERACTIVE),
            ("normal-2", Priority.NORMAL),
            ("critical", Priority.CRITICAL),
            ("normal-3", Priority.NORMAL),
        ]
        async with asyncio.TaskGroup() as tg:
            tg.create_task(enter(admission, log, "holder", until=release))
            await asyncio.sleep(0)
            for name, priority in arrivals:
                tg.create_task(enter(admission, log, name, priority=priority, hold_s=1.0))
                await asyncio.sleep(0)  # queue them in this order
            assert admission.depth("p") == len(arrivals)
            release.set()
        served = [name for name, _ in log]
        assert served == ["holder", "critical", "interactive", "normal-1", "normal-2", "normal-3", "batch"]

    run_virtual(scenario())


def test_model_limit_applies_to_its_model_only() -> None:
    async def scenario() -> None:
        admission = Admission({}, {"small": Limits(max_concurrency=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(enter(admission, log, "s1", model="small", hold_s=1.0))
            tg.create_task(enter(admission, log, "s2", model="small", hold_s=1.0))
            tg.create_task(enter(admission, log, "big", model="big", hold_s=1.0))
        assert sorted(log, key=lambda e: (e[1], e[0])) == [("big", 0), ("s1", 0), ("s2", 1)]

    run_virtual(scenario())


def test_max_wait_gives_not_admitted_with_retry_after() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1)}, max_wait_s=2.0)
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(enter(admission, log, "holder", hold_s=10.0))
            await asyncio.sleep(0)
            with pytest.raises(ProviderError) as caught:
                await enter(admission, log, "late")
            assert now() == pytest.approx(2.0)
            assert caught.value.failure_class is FailureClass.NOT_ADMITTED
            assert caught.value.message == "p/m: no capacity within 2.00 s (1 waiting)"
            assert caught.value.retry_after_s == 2.0
            assert admission.depth("p") == 0
        assert await admitted_at_once(admission)

    run_virtual(scenario())


def test_deadline_before_max_wait_bounds_the_wait() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1)}, max_wait_s=5.0)
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(enter(admission, log, "holder", hold_s=10.0))
            await asyncio.sleep(0)
            with pytest.raises(ProviderError, match=r"within 0\.50 s") as caught:
                await enter(admission, log, "late", deadline=0.5)
            assert now() == pytest.approx(0.5)
            assert caught.value.failure_class is FailureClass.NOT_ADMITTED
            assert caught.value.retry_after_s is not None
            # a deadline already past fails at once when there is a wait
            with pytest.raises(ProviderError, match=r"within 0\.00 s"):
                await enter(admission, log, "expired", deadline=now() - 1)
            assert now() == pytest.approx(0.5)
        assert [name for name, _ in log] == ["holder"]

    run_virtual(scenario())


def test_cancelled_waiter_leaves_the_queue_without_leaking_a_slot() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        release = asyncio.Event()
        holder = asyncio.create_task(enter(admission, log, "holder", until=release))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(enter(admission, log, "waiter"))
        await asyncio.sleep(1)
        assert admission.depth("p") == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert admission.depth("p") == 0
        release.set()
        await holder
        assert await admitted_at_once(admission)
        assert [name for name, _ in log] == ["holder"]  # the cancelled waiter never got in

    run_virtual(scenario())


def test_waiter_cancelled_just_as_it_is_handed_a_slot_passes_it_on() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        async with admission.admit("p", "m", priority=Priority.NORMAL, tokens=0, deadline=FAR):
            first = asyncio.create_task(enter(admission, log, "first"))
            second = asyncio.create_task(enter(admission, log, "second", hold_s=1.0))
            await asyncio.sleep(0)
        first.cancel()  # the slot was handed to `first`, which has not run yet
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        assert log == [("second", 0.0)]
        assert await admitted_at_once(admission)

    run_virtual(scenario())


def test_an_exception_in_the_block_releases_the_slot() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1)})
        with pytest.raises(RuntimeError):
            async with admission.admit("p", "m", priority=Priority.NORMAL, tokens=0, deadline=FAR):
                raise RuntimeError("provider blew up")
        assert await admitted_at_once(admission)

    run_virtual(scenario())


def test_requests_per_s_spaces_calls() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(requests_per_s=2)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            for name in "abcde":
                tg.create_task(enter(admission, log, name))
        # a burst of one second's worth (2), then one every 0.5 s
        assert [name for name, _ in log] == list("abcde")
        assert [t for _, t in log] == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])

    run_virtual(scenario())


def test_a_models_own_rate_spaces_its_calls_and_not_its_siblings() -> None:
    async def scenario() -> None:
        admission = Admission({}, {"slow": Limits(requests_per_s=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            for name in "abc":
                tg.create_task(enter(admission, log, name, model="slow"))
            tg.create_task(enter(admission, log, "other", model="fast"))
        times = dict(log)
        assert [times[n] for n in "abc"] == pytest.approx([0.0, 1.0, 2.0])
        assert times["other"] == pytest.approx(0.0)  # another model of the provider is not held

    run_virtual(scenario())


def test_a_shared_rate_runs_at_its_share_and_counts_what_was_asked() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(requests_per_s=4, tokens_per_min=6000)}, max_wait_s=10)
        admission.share_rates({"provider:p": 0.5}, default=1.0)  # 2/s, 50 tokens/s
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            for name in "abcde":
                tg.create_task(enter(admission, log, name))
        # a burst of one second's worth at the share (2), then one every 0.5 s
        assert [t for _, t in log] == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5])
        assert admission.take_demand() == {"provider:p": 5}
        assert admission.take_demand() == {"provider:p": 0}  # taken: counted anew
        admission.share_rates({}, default=1.0)  # back to the whole rate (4/s), from the next call on
        log.clear()
        await asyncio.sleep(10)  # the bucket drains
        async with asyncio.TaskGroup() as tg:
            for name in "abcde":
                tg.create_task(enter(admission, log, name))
        start = log[0][1]
        assert [t - start for _, t in log] == pytest.approx([0.0, 0.0, 0.0, 0.0, 0.25])

    run_virtual(scenario())


def test_rate_waiters_are_served_by_priority() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(requests_per_s=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        arrivals = [
            ("a", Priority.NORMAL),  # admitted at once
            ("head", Priority.NORMAL),  # at the limiter until t=1: already committed
            ("batch", Priority.BATCH),
            ("critical", Priority.CRITICAL),
        ]
        async with asyncio.TaskGroup() as tg:
            for name, priority in arrivals:
                tg.create_task(enter(admission, log, name, priority=priority))
                await asyncio.sleep(0)
        assert [name for name, _ in log] == ["a", "head", "critical", "batch"]
        assert [t for _, t in log] == pytest.approx([0.0, 1.0, 2.0, 3.0])

    run_virtual(scenario())


def test_tokens_per_min_throttles_large_requests() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(tokens_per_min=6000)}, max_wait_s=120)  # leaks 100 tokens/s
        log: list[tuple[str, float]] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(enter(admission, log, "small", tokens=1000))
            await asyncio.sleep(0)
            tg.create_task(enter(admission, log, "large", tokens=5000))
            await asyncio.sleep(0)
            tg.create_task(enter(admission, log, "next", tokens=3000))
        # small + large fill the bucket (6000); `next` waits until 3000 have leaked out
        assert log == [("small", 0.0), ("large", 0.0), ("next", pytest.approx(30.0))]

    run_virtual(scenario())


def test_a_request_larger_than_the_token_bucket_is_clamped_not_deadlocked() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(tokens_per_min=6000)}, max_wait_s=120)
        log: list[tuple[str, float]] = []
        await enter(admission, log, "huge", tokens=50_000)
        await enter(admission, log, "after", tokens=600)
        # the huge request filled the whole bucket: the next waits for 600 tokens to leak out
        assert log == [("huge", 0.0), ("after", pytest.approx(6.0))]

    run_virtual(scenario())


def test_a_waiter_stuck_behind_a_rate_limit_gives_its_slot_back() -> None:
    async def scenario() -> None:
        # one call per 10 s, one call at a time
        admission = Admission({"p": Limits(max_concurrency=1, requests_per_s=0.1)}, max_wait_s=20)
        log: list[tuple[str, float]] = []
        await enter(admission, log, "first")  # spends the rate budget until t=10
        second = asyncio.create_task(enter(admission, log, "second", deadline=2.0))
        await asyncio.sleep(0)
        third = asyncio.create_task(enter(admission, log, "third"))
        with pytest.raises(ProviderError) as caught:
            await second
        assert now() == pytest.approx(2.0)
        assert caught.value.failure_class is FailureClass.NOT_ADMITTED
        assert caught.value.message == "p/m: no capacity within 2.00 s (2 waiting)"
        assert caught.value.retry_after_s == pytest.approx(10.0)  # at most one request's spacing
        await third
        # `second` held the slot while it waited on the rate; it gave it back at t=2
        assert log == [("first", 0.0), ("third", pytest.approx(10.0))]
        assert admission.depth("p") == 0

    run_virtual(scenario())


def test_depth_counts_waiters_per_provider() -> None:
    async def scenario() -> None:
        admission = Admission({"p": Limits(max_concurrency=1), "q": Limits(max_concurrency=1)}, max_wait_s=10)
        log: list[tuple[str, float]] = []
        release = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            for name in ("holder", "w1", "w2", "w3"):
                tg.create_task(enter(admission, log, name, until=release))
            await asyncio.sleep(0)
            assert (admission.depth("p"), admission.depth("q"), admission.depth("unknown")) == (3, 0, 0)
            release.set()
        assert admission.depth("p") == 0

    run_virtual(scenario())


@pytest.mark.parametrize(
    "limits", [{"max_concurrency": 0}, {"requests_per_s": 0.0}, {"tokens_per_min": -1.0}]
)
def test_limits_reject_nonsense(limits: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Limits(**limits)  # type: ignore[arg-type]
