"""Circuit breakers on virtual time: what counts, failing fast, the single half-open probe, on_change."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.execution.breaker import ENDPOINT_FAILURES, Alternatives, BreakerSet
from tests.execution.virtual import now, run_virtual

CALLER_SIDE = (
    FailureClass.BAD_REQUEST,
    FailureClass.CONTENT_FILTERED,
    FailureClass.CONTEXT_TOO_LONG,
    FailureClass.INVALID_OUTPUT,
    FailureClass.AUTH,
    FailureClass.NOT_ADMITTED,
    FailureClass.CIRCUIT_OPEN,
)


def breakers(changes: list[tuple[str, str]] | None = None, *, fail_max: int = 3) -> BreakerSet:
    """A BreakerSet on the loop's (virtual) clock, logging every state change into `changes`."""
    log = changes if changes is not None else []
    return BreakerSet(
        fail_max=fail_max, reset_timeout_s=30.0, clock=now, on_change=lambda k, s: log.append((k, s))
    )


async def call(
    b: BreakerSet,
    key: str = "m",
    *,
    error: BaseException | None = None,
    hold_s: float = 0.0,
    until: asyncio.Event | None = None,
) -> str:
    """One guarded call: holds for `hold_s` / until `until` is set, then raises `error` or succeeds."""
    async with b.guard(key):
        await asyncio.sleep(hold_s)
        if until is not None:
            await until.wait()
        if error is not None:
            raise error
    return "ok"


async def fail(b: BreakerSet, key: str = "m", n: int = 1) -> None:
    for _ in range(n):
        with pytest.raises(ProviderError):
            await call(b, key, error=ProviderError(FailureClass.SERVER_ERROR, "boom"))


async def refused_at_once(b: BreakerSet, key: str = "m") -> ProviderError:
    """Assert that a call is refused with CIRCUIT_OPEN without running and without any wait."""
    start = now()
    ran = False
    with pytest.raises(ProviderError) as info:
        async with b.guard(key):
            ran = True
    assert info.value.failure_class is FailureClass.CIRCUIT_OPEN
    assert not ran
    assert now() == start
    return info.value


def endpoint_errors() -> list[BaseException]:
    return [ProviderError(c, "x") for c in sorted(ENDPOINT_FAILURES)] + [TimeoutError()]


@pytest.mark.parametrize("error", endpoint_errors(), ids=repr)
def test_endpoint_failures_open_it_after_fail_max(error: BaseException) -> None:
    async def scenario() -> None:
        changes: list[tuple[str, str]] = []
        b = breakers(changes)
        for i in range(3):
            assert b.state("m") == "closed"
            with pytest.raises(type(error)) as info:
                await call(b, error=error)
            assert info.value is error, f"call {i}: the error must propagate unchanged"
        assert b.state("m") == "open"
        assert b.is_open("m")
        assert changes == [("m", "open")]

    run_virtual(scenario())


def test_rate_limited_counts() -> None:
    assert FailureClass.RATE_LIMITED in ENDPOINT_FAILURES


def test_per_attempt_timeout_inside_the_guard_counts() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        with pytest.raises(TimeoutError):
            async with b.guard("m"), asyncio.timeout(1.0):
                await asyncio.sleep(5.0)
        assert b.state("m") == "open"

    run_virtual(scenario())


@pytest.mark.parametrize("cls", CALLER_SIDE, ids=str)
def test_caller_side_failures_do_not_count(cls: FailureClass) -> None:
    async def scenario() -> None:
        changes: list[tuple[str, str]] = []
        b = breakers(changes, fail_max=1)
        for _ in range(5):
            error = ProviderError(cls, "x")
            with pytest.raises(ProviderError) as info:
                await call(b, error=error)
            assert info.value is error
        assert b.state("m") == "closed"
        assert changes == []

    run_virtual(scenario())


def test_other_exceptions_do_not_count_and_propagate() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        error = KeyError("a bug of ours")
        with pytest.raises(KeyError) as info:
            await call(b, error=error)
        assert info.value is error
        assert b.state("m") == "closed"

    run_virtual(scenario())


def test_cancellations_do_not_count() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        for _ in range(5):
            task = asyncio.create_task(call(b, hold_s=10.0))  # a hedge that loses
            await asyncio.sleep(1.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert b.state("m") == "closed"

    run_virtual(scenario())


def test_only_consecutive_failures_count_and_neutral_outcomes_do_not_reset() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=2)
        await fail(b)
        assert await call(b) == "ok"  # a success resets the count
        await fail(b)
        assert b.state("m") == "closed"
        with pytest.raises(ProviderError):  # neutral: neither resets nor counts
            await call(b, error=ProviderError(FailureClass.BAD_REQUEST, "x"))
        await fail(b)
        assert b.state("m") == "open"

    run_virtual(scenario())


def test_open_refuses_at_once_and_says_for_how_long() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        await fail(b)
        await asyncio.sleep(12.5)
        error = await refused_at_once(b)
        assert error.message == "circuit breaker open for m (for another 17.5 s)"
        assert error.retry_after_s == pytest.approx(17.5)
        assert b.is_open("m")

    run_virtual(scenario())


def test_half_open_admits_one_probe_and_success_closes() -> None:
    async def scenario() -> None:
        changes: list[tuple[str, str]] = []
        b = breakers(changes, fail_max=1)
        await fail(b)
        await asyncio.sleep(30.0)  # the timer half-opens it: no caller needed
        assert b.state("m") == "half_open"
        assert not b.is_open("m")
        release = asyncio.Event()
        probe = asyncio.create_task(call(b, until=release))
        await asyncio.sleep(1.0)
        for _ in range(3):
            error = await refused_at_once(b)
            assert error.message == "circuit breaker open for m (a probe is in flight)"
        release.set()
        assert await probe == "ok"
        assert b.state("m") == "closed"
        assert await call(b) == "ok"
        assert changes == [("m", "open"), ("m", "half_open"), ("m", "closed")]

    run_virtual(scenario())


def test_failed_probe_reopens_for_a_full_reset_timeout() -> None:
    async def scenario() -> None:
        changes: list[tuple[str, str]] = []
        b = breakers(changes, fail_max=3)
        await fail(b, n=3)
        await asyncio.sleep(30.0)
        await fail(b)  # the probe: one failure is enough
        assert b.state("m") == "open"
        error = await refused_at_once(b)
        assert error.retry_after_s == pytest.approx(30.0)
        await asyncio.sleep(30.0)
        assert b.state("m") == "half_open"
        assert await call(b) == "ok"
        assert changes == [
            ("m", "open"),
            ("m", "half_open"),
            ("m", "open"),
            ("m", "half_open"),
            ("m", "closed"),
        ]

    run_virtual(scenario())


def test_a_cancelled_probe_frees_the_slot_without_deciding() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        await fail(b)
        await asyncio.sleep(30.0)
        probe = asyncio.create_task(call(b, hold_s=10.0))
        await asyncio.sleep(1.0)
        await refused_at_once(b)
        probe.cancel()
        with pytest.raises(asyncio.CancelledError):
            await probe
        assert b.state("m") == "half_open"
        assert await call(b) == "ok"  # the next caller is the probe
        assert b.state("m") == "closed"

    run_virtual(scenario())


def test_the_injected_clock_drives_the_probe_not_the_loop() -> None:
    async def scenario() -> None:
        t = [0.0]
        b = BreakerSet(fail_max=1, reset_timeout_s=30.0, clock=lambda: t[0])
        await fail(b)
        t[0] = 29.9
        assert b.is_open("m")
        await refused_at_once(b)
        await asyncio.sleep(60.0)  # the loop's timer fires, but the injected clock is behind
        assert b.state("m") == "open"
        t[0] = 30.0
        assert not b.is_open("m")  # due for a probe, though still open until someone calls
        assert b.state("m") == "open"
        assert await call(b) == "ok"  # the caller half-opens it and is the probe
        assert b.state("m") == "closed"

    run_virtual(scenario())


def test_calls_in_flight_when_it_trips_do_not_count_afterwards() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        release = asyncio.Event()
        late_ok = asyncio.create_task(call(b, until=release))
        late_bad = asyncio.create_task(
            call(b, until=release, error=ProviderError(FailureClass.SERVER_ERROR, "x"))
        )
        await asyncio.sleep(1.0)
        await fail(b)
        assert b.state("m") == "open"
        await asyncio.sleep(5.0)
        release.set()
        assert await late_ok == "ok"  # a success from before the trip does not close it
        with pytest.raises(ProviderError):
            await late_bad
        assert b.state("m") == "open"
        error = await refused_at_once(b)
        assert error.retry_after_s == pytest.approx(25.0)  # nor did the late failure re-open it

    run_virtual(scenario())


def test_keys_are_isolated() -> None:
    async def scenario() -> None:
        changes: list[tuple[str, str]] = []
        b = breakers(changes, fail_max=1)
        await fail(b, "a")
        assert (b.state("a"), b.state("b"), b.state("never-used")) == ("open", "closed", "closed")
        await refused_at_once(b, "a")
        assert await call(b, "b") == "ok"
        assert not b.is_open("b")
        assert changes == [("a", "open")]

    run_virtual(scenario())


def test_on_change_sees_the_new_state_and_cannot_break_the_call(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        seen: list[tuple[str, str]] = []

        def on_change(key: str, state: str) -> None:
            seen.append((state, b.state(key)))
            raise RuntimeError("observer bug")

        b = BreakerSet(fail_max=1, reset_timeout_s=30.0, clock=now, on_change=on_change)
        error = ProviderError(FailureClass.OVERLOADED, "x")
        with pytest.raises(ProviderError) as info:
            await call(b, error=error)
        assert info.value is error
        await asyncio.sleep(30.0)
        assert await call(b) == "ok"
        assert seen == [("open", "open"), ("half_open", "half_open"), ("closed", "closed")]

    with caplog.at_level(logging.ERROR, logger="sidecar.execution.breaker"):
        run_virtual(scenario())
    failed = [r.getMessage() for r in caplog.records if r.name == "sidecar.execution.breaker"]
    assert failed == [f"on_change('m', '{s}') failed" for s in ("open", "half_open", "closed")]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"fail_max": 0}, "fail_max"), ({"reset_timeout_s": -1}, "reset"), ({"probe_after_s": -1}, "probe")],
)
def test_rejects_nonsense_settings(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BreakerSet(**kwargs)  # type: ignore[arg-type]


def test_a_deferred_guard_counts_the_outcome_settled_later() -> None:
    """Streams: the guarded block ends at the first token; a cut after it still counts."""

    async def main() -> list[tuple[str, str]]:
        changes: list[tuple[str, str]] = []
        b = breakers(changes)
        cut = ProviderError(FailureClass.STREAM_INTERRUPTED, "connection reset")
        for _ in range(3):
            guard = b.deferred_guard("m")
            async with guard:
                pass  # the first token arrived: no outcome yet
            guard.settle(cut)
            guard.settle(None)  # settling twice changes nothing
        await refused_at_once(b)
        return changes

    assert run_virtual(main()) == [("m", "open")]


def test_a_deferred_probe_stays_in_flight_until_settled() -> None:
    async def main() -> None:
        b = breakers()
        await fail(b, n=3)
        await asyncio.sleep(30)  # due for a probe
        probe = b.deferred_guard("m")
        async with probe:
            pass
        error = await refused_at_once(b)  # the stream is still running: no second probe
        assert "a probe is in flight" in error.message
        probe.settle(None)
        assert b.state("m") == "closed"
        assert await call(b) == "ok"

    run_virtual(main())


def test_a_deferred_guard_that_never_entered_settles_to_nothing() -> None:
    async def main() -> None:
        b = breakers()
        await fail(b, n=3)
        guard = b.deferred_guard("m")
        with pytest.raises(ProviderError):
            async with guard:
                pass
        guard.settle(ProviderError(FailureClass.SERVER_ERROR, "x"))  # no endpoint call: no effect

    run_virtual(main())


# --- backoff: probe soon after opening, less often while the probes keep failing -------------------


def test_the_first_probe_comes_after_probe_after_s_and_each_failed_probe_doubles_the_wait() -> None:
    async def scenario() -> list[float]:
        b = BreakerSet(fail_max=1, reset_timeout_s=30.0, probe_after_s=2.0, clock=now)
        await fail(b)
        waits = []
        for _ in range(6):
            waits.append((await refused_at_once(b)).retry_after_s)
            await asyncio.sleep(waits[-1])
            assert b.state("m") == "half_open"  # the timer half-opened it just then
            await fail(b)  # the probe fails: open again
        assert (await refused_at_once(b)).retry_after_s == pytest.approx(30.0)
        return waits

    assert run_virtual(scenario()) == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_a_probe_that_closes_it_starts_the_backoff_over() -> None:
    async def scenario() -> None:
        b = BreakerSet(fail_max=1, reset_timeout_s=30.0, probe_after_s=2.0, clock=now)
        await fail(b)
        await asyncio.sleep(2.0)
        await fail(b)  # failed probe: 4 s next
        await asyncio.sleep(4.0)
        assert await call(b) == "ok"
        assert b.state("m") == "closed"
        await fail(b)  # opens from closed: 2 s again
        assert (await refused_at_once(b)).retry_after_s == pytest.approx(2.0)

    run_virtual(scenario())


def test_probe_after_s_is_capped_by_reset_timeout_s() -> None:
    async def scenario() -> None:
        b = BreakerSet(fail_max=1, reset_timeout_s=1.0, probe_after_s=5.0, clock=now)
        await fail(b)
        assert (await refused_at_once(b)).retry_after_s == pytest.approx(1.0)

    run_virtual(scenario())


# --- panic: every alternative open -> the one open longest is probed at once ------------------------


def test_when_every_alternative_is_open_the_one_open_longest_is_let_through_as_the_probe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "sidecar.execution.breaker")

    async def scenario() -> None:
        b = breakers(fail_max=1)
        await fail(b, "a")
        await asyncio.sleep(1.0)
        await fail(b, "b")
        among = Alternatives(("b", "a"))
        assert b.open_longest(among.keys) == "a"
        with pytest.raises(ProviderError) as refused:  # b is not the one open longest
            async with b.guard("b", among):
                pass
        assert refused.value.failure_class is FailureClass.CIRCUIT_OPEN
        release = asyncio.Event()
        started = now()
        probe = asyncio.create_task(guarded(b, "a", among, release))
        await asyncio.sleep(0)
        assert b.state("a") == "half_open"  # 29 s early
        with pytest.raises(ProviderError, match="a probe is in flight"):  # another race: one probe
            async with b.guard("a", Alternatives(("b", "a"))):
                pass
        assert b.open_longest(among.keys) is None  # a probe is out: it decides, no second panic
        release.set()
        await probe
        assert (b.state("a"), b.state("b"), now() - started) == ("closed", "open", 0.0)
        assert b.open_longest(among.keys) is None  # a is closed: nothing to panic about

    run_virtual(scenario())
    [line] = [r.getMessage() for r in caplog.records if r.name == "sidecar.execution.breaker"]
    assert line == "all breakers open (b, a): trying a, open longest, as an early probe"


async def guarded(b: BreakerSet, key: str, among: Alternatives, release: asyncio.Event) -> None:
    async with b.guard(key, among):
        await release.wait()


def test_one_panic_probe_per_race_and_the_next_race_tries_another() -> None:
    async def scenario() -> None:
        b = BreakerSet(fail_max=1, reset_timeout_s=30.0, probe_after_s=2.0, clock=now)
        await fail(b, "a")
        await fail(b, "b")
        race = Alternatives(("a", "b"))
        assert b.open_longest(race.keys) == "a"
        with pytest.raises(ProviderError):  # a's early probe: the endpoint is still down
            async with b.guard("a", race):
                raise ProviderError(FailureClass.CONNECTION, "refused")
        assert b.state("a") == "open"
        assert (await refused_at_once(b, "a")).retry_after_s == pytest.approx(4.0)  # backed off
        assert b.open_longest(race.keys) == "b"  # a just reopened: b is now open longest ...
        with pytest.raises(ProviderError, match="circuit breaker open for b"):  # ... but not in this race
            async with b.guard("b", race):
                pass
        async with b.guard("b", Alternatives(("a", "b"))):  # the next race tries it
            pass
        assert b.state("b") == "closed"

    run_virtual(scenario())


def test_no_panic_while_an_alternative_can_take_the_call() -> None:
    async def scenario() -> None:
        b = breakers(fail_max=1)
        await fail(b, "a")
        assert b.open_longest(("a", "b")) is None  # b was never used: closed
        await refused_at_once(b, "a")
        assert await call(b, "b") == "ok"

    run_virtual(scenario())
