"""Circuit breakers per model endpoint: fail fast on an endpoint that keeps failing, probe it later.

pybreaker keeps the state machine (closed -> open -> half-open -> closed / open), the consecutive
failure counter and the listeners. It has no asyncio support and reads the wall clock, so three
parts are done here around it:

- **Outcomes are fed to pybreaker after the call.** The guarded call is awaited outside pybreaker;
  when it ends, its outcome is replayed through `CircuitBreaker.calling()` (a success, or a private
  marker exception for a failure). This keeps pybreaker's synchronous context manager from spanning
  an await, and it allows a third outcome pybreaker does not have: *neutral*. pybreaker counts an
  excluded exception as a success, which would let a cancelled hedge close a half-open breaker.
- **Time comes from the injected clock.** pybreaker compares `datetime.now()` with its
  `reset_timeout`; it gets a century instead, so it never half-opens by itself, and this module
  half-opens it when `clock() - opened_at >= reset_timeout_s`. Tests then run on virtual time.
- **Half-open admits exactly one probe.** pybreaker lets every call through while half-open;
  here the first caller is the probe and the others fail with CIRCUIT_OPEN at once.
- **The reset timeout backs off.** pybreaker could vary it through its public API (`reset_timeout`
  is settable and read when a call meets the open breaker; a listener is told the state it left),
  but its own timing is kept out here (the century above), so the wait before a probe is this
  module's: `probe_after_s` after the breaker opens, doubled after each failed probe up to
  `reset_timeout_s`, and `probe_after_s` again the next time it opens from closed. An outage of a
  few seconds then costs a few seconds, not `reset_timeout_s`, while a long one is probed ever
  less often.
- **Panic.** When every breaker among a call's alternatives (`Alternatives`: a race's
  candidates) is open, refusing all of them would fail a request that one of them might well
  serve by now. As Envoy's panic threshold does, the one open longest is let through at once as
  its half-open probe (still one probe at a time); the others still fail fast. Once per race,
  and not for a retry (the executor passes no alternatives then): "try the one most likely to
  have recovered", not each in turn (a failed probe reopens its breaker, which makes another the
  one open longest), so that an incident's requests still fail fast after their one try.

An open breaker also half-opens on a timer (on the running loop), not only when a caller comes:
the policy drops models whose breaker is open (`HealthTracker.breaker_open`, fed by `on_change`),
so without the timer no request would ever arrive to be the probe and the model would stay out.

What counts (see `_outcome`): endpoint trouble is a failure; a clean return is a success; anything
else is neutral. Neutral outcomes change nothing, except that a neutral probe frees the probe slot:
a cancellation (a lost hedge or an abandoned request says nothing about the endpoint), errors about
the request or the answer (they say nothing about the endpoint either, and some are raised before
any I/O, e.g. a request the codec cannot encode), and Turnout's own refusals. An outcome only counts
against the state its call was admitted under: a call that was in flight while the breaker tripped
cannot re-close it, nor count in a later closed period.

Single-threaded asyncio use only. Exceptions from the guarded block always propagate unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import pybreaker

from sidecar.domain.outcome import FailureClass, ProviderError

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

_STATE_NAMES = {
    pybreaker.STATE_CLOSED: CLOSED,
    pybreaker.STATE_OPEN: OPEN,
    pybreaker.STATE_HALF_OPEN: HALF_OPEN,
}
# pybreaker's own reset timeout: never reached, the clock-driven transition comes first. Not
# larger: pybreaker adds it to datetime.now(), which overflows past the year 9999.
_NEVER_S = 100 * 365 * 86400.0

# Trouble at the endpoint: these open the breaker. RATE_LIMITED counts: fail_max 429s in a row
# (each retried only after its Retry-After) mean the endpoint refuses our traffic right now, and
# every further call costs a round trip before the fallback and, with most providers, counts
# against the quota too. Failing fast to the next candidate for reset_timeout_s is what we want.
# Isolated 429s between successes do not open it: the counter is of consecutive failures.
ENDPOINT_FAILURES = frozenset(
    {
        FailureClass.SERVER_ERROR,
        FailureClass.OVERLOADED,
        FailureClass.TIMEOUT,
        FailureClass.CONNECTION,
        FailureClass.MALFORMED_RESPONSE,
        FailureClass.STREAM_INTERRUPTED,
        FailureClass.RATE_LIMITED,
    }
)


class _Outcome(enum.Enum):
    SUCCESS = enum.auto()
    FAILURE = enum.auto()
    NEUTRAL = enum.auto()


def _outcome(exc: BaseException | None) -> _Outcome:
    if exc is None:
        return _Outcome.SUCCESS
    if isinstance(exc, ProviderError):
        return _Outcome.FAILURE if exc.failure_class in ENDPOINT_FAILURES else _Outcome.NEUTRAL
    if isinstance(exc, TimeoutError):  # the per-attempt timeout (asyncio.timeout inside the guard)
        return _Outcome.FAILURE
    return _Outcome.NEUTRAL  # CancelledError, and bugs of ours, which say nothing about the endpoint


class _Failed(Exception):
    """Stands in for a failure when it is replayed to pybreaker (the real error is not re-raised)."""


class _Endpoint:
    __slots__ = ("cb", "epoch", "opened", "opened_at", "probing", "reset_s", "timer")

    def __init__(self, cb: pybreaker.CircuitBreaker, reset_s: float) -> None:
        self.cb = cb
        self.epoch = 0  # bumped on every state change
        self.opened_at = 0.0  # clock() when it last opened
        self.opened = 0  # the BreakerSet's count of openings then: orders openings at the same instant
        self.reset_s = reset_s  # how long it stays open this time before a probe
        self.probing = False  # a half-open probe is in flight
        self.timer: asyncio.TimerHandle | None = None  # the open -> half-open transition


class Alternatives:
    """The models a race may use, for panic mode; one panic probe per race (see the module doc)."""

    __slots__ = ("keys", "spent")

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = tuple(keys)
        self.spent = False


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: BreakerSet, key: str) -> None:
        self._owner = owner
        self._key = key

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        old = _STATE_NAMES[old_state.name] if old_state is not None else CLOSED
        self._owner._changed(self._key, old, _STATE_NAMES[new_state.name])


class BreakerSet:
    """One circuit breaker per key (a model name), created on first use."""

    def __init__(
        self,
        *,
        fail_max: int = 5,
        reset_timeout_s: float = 30.0,
        probe_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        """`probe_after_s`: the first probe's wait (None: `reset_timeout_s`, no backoff)."""
        if fail_max < 1:
            raise ValueError(f"fail_max must be at least 1, not {fail_max}")
        if reset_timeout_s < 0:
            raise ValueError(f"reset_timeout_s must not be negative, not {reset_timeout_s}")
        if probe_after_s is not None and probe_after_s < 0:
            raise ValueError(f"probe_after_s must not be negative, not {probe_after_s}")
        self._fail_max = fail_max
        self._reset_s = reset_timeout_s  # the longest wait before a probe
        self._first_s = reset_timeout_s if probe_after_s is None else min(probe_after_s, reset_timeout_s)
        self._clock = clock
        self._on_change = on_change
        self._endpoints: dict[str, _Endpoint] = {}
        self._openings = 0
        # State changes seen by the listener, reported once pybreaker has finished the transition
        # (mid-transition, its storage still holds the old state).
        self._pending: deque[tuple[str, str]] = deque()

    def guard(
        self, key: str, among: Alternatives | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Guard one call to `key`'s endpoint; raises CIRCUIT_OPEN on entry, without waiting, if open.

        `among`: the call's alternatives, `key` included; when all their breakers are open, the
        one open longest is let through as its probe (panic), once.
        """
        return _Guard(self, key, among)

    def deferred_guard(self, key: str, among: Alternatives | None = None) -> DeferredGuard:
        """A guard whose clean exit does not settle the call: `settle(error)` does, later.

        For streams: the block covers opening the stream up to its first token, but the stream's
        outcome is known only when it ends (a cut after the first token is an endpoint failure).
        Until then the call stays in flight, a half-open probe included.
        """
        return DeferredGuard(self, key, among)

    def state(self, key: str) -> str:
        """The state: closed, open or half_open. An open breaker due for a probe still reads open."""
        ep = self._endpoints.get(key)
        return CLOSED if ep is None else _STATE_NAMES[ep.cb.current_state]

    def states(self) -> dict[str, str]:
        """Every endpoint seen so far and its state (closed, open or half_open)."""
        return {key: _STATE_NAMES[ep.cb.current_state] for key, ep in self._endpoints.items()}

    def is_open(self, key: str) -> bool:
        """Open and not yet due for a probe: a call now would be refused."""
        ep = self._endpoints.get(key)
        return ep is not None and ep.cb.current_state == pybreaker.STATE_OPEN and self._remaining(ep) > 0

    def open_longest(self, keys: Sequence[str]) -> str | None:
        """When every key's breaker is open and none is due for a probe: the one open longest.

        None otherwise: some key can take a call (closed, or half-open with no probe in flight),
        or a probe is in flight and will decide.
        """
        oldest: tuple[int, str] | None = None
        for key in keys:
            ep = self._endpoints.get(key)
            if ep is None or not self.is_open(key):
                return None
            if oldest is None or ep.opened < oldest[0]:
                oldest = (ep.opened, key)
        return None if oldest is None else oldest[1]

    def trip(self, key: str) -> bool:
        """Open `key`'s breaker now if it is closed, as failures here would (another pod saw them:
        limits.store.share_health); its probe comes as after any opening. Whether it opened."""
        ep = self._endpoints.get(key)
        if ep is None:
            ep = self._endpoints[key] = self._new_endpoint(key)
        if ep.cb.current_state != pybreaker.STATE_CLOSED:
            return False
        ep.cb.open()
        self._flush()
        return True

    # --- the guard's two halves ---------------------------------------------------------------

    def _enter(self, key: str, among: Alternatives | None) -> tuple[_Endpoint, int, bool]:
        """Admit a call or raise CIRCUIT_OPEN; returns the endpoint, the epoch and whether it probes."""
        ep = self._endpoints.get(key)
        if ep is None:
            ep = self._endpoints[key] = self._new_endpoint(key)
        state = ep.cb.current_state
        if state == pybreaker.STATE_OPEN:
            remaining = self._remaining(ep)
            if remaining > 0 and among is not None and self._panics(key, among):
                log.info(
                    "all breakers open (%s): trying %s, open longest, as an early probe",
                    ", ".join(among.keys),
                    key,
                )
            elif remaining > 0:
                raise ProviderError(
                    FailureClass.CIRCUIT_OPEN,
                    f"circuit breaker open for {key} (for another {remaining:.1f} s)",
                    retry_after_s=remaining,
                )
            self._half_open(ep)
            state = pybreaker.STATE_HALF_OPEN
        if state == pybreaker.STATE_HALF_OPEN:
            if ep.probing:
                raise ProviderError(
                    FailureClass.CIRCUIT_OPEN, f"circuit breaker open for {key} (a probe is in flight)"
                )
            ep.probing = True
            return ep, ep.epoch, True
        return ep, ep.epoch, False

    def _exit(self, ep: _Endpoint, epoch: int, probe: bool, exc: BaseException | None) -> None:
        if probe:
            ep.probing = False  # a neutral probe frees the slot for the next caller
        outcome = _outcome(exc)
        if outcome is _Outcome.NEUTRAL or ep.epoch != epoch:
            return
        cb = ep.cb
        if outcome is _Outcome.SUCCESS and cb.current_state == pybreaker.STATE_CLOSED and not cb.fail_counter:
            # The common case: pybreaker would only zero a failure count that is zero already, but
            # through its lock, a generator and its listeners, on every answer's critical path.
            return
        try:
            with cb.calling():
                if outcome is _Outcome.FAILURE:
                    raise _Failed
        except _Failed:
            pass
        self._flush()

    def _panics(self, key: str, among: Alternatives) -> bool:
        if among.spent or self.open_longest(among.keys) != key:
            return False
        among.spent = True
        return True

    # --- transitions --------------------------------------------------------------------------

    def _new_endpoint(self, key: str) -> _Endpoint:
        cb = pybreaker.CircuitBreaker(
            fail_max=self._fail_max,
            reset_timeout=_NEVER_S,
            throw_new_error_on_trip=False,  # the caller sees its own error, not pybreaker's
            listeners=[_Listener(self, key)],
            name=key,
        )
        return _Endpoint(cb, self._first_s)

    def _remaining(self, ep: _Endpoint) -> float:
        return ep.opened_at + ep.reset_s - self._clock()

    def _half_open(self, ep: _Endpoint) -> None:
        ep.cb.half_open()
        self._flush()

    def _changed(self, key: str, old: str, state: str) -> None:
        """pybreaker's listener: called in the middle of a transition."""
        ep = self._endpoints[key]
        ep.epoch += 1
        ep.probing = False
        if ep.timer is not None:
            ep.timer.cancel()
            ep.timer = None
        if state == OPEN:
            # A failed probe doubles the wait before the next one; opening from closed starts over.
            ep.reset_s = min(2 * ep.reset_s, self._reset_s) if old == HALF_OPEN else self._first_s
            ep.opened_at = self._clock()
            self._openings += 1
            ep.opened = self._openings
            self._arm(key, ep, ep.reset_s)
        self._pending.append((key, state))

    def _arm(self, key: str, ep: _Endpoint, delay_s: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: the next caller half-opens it
            return
        ep.timer = loop.call_later(max(delay_s, 0.0), self._due, key, ep.epoch)

    def _due(self, key: str, epoch: int) -> None:
        ep = self._endpoints[key]
        ep.timer = None
        if ep.epoch != epoch or ep.cb.current_state != pybreaker.STATE_OPEN:
            return
        remaining = self._remaining(ep)
        if remaining > 0:  # the injected clock runs behind the loop's: wait for it
            self._arm(key, ep, remaining)
        else:
            self._half_open(ep)

    def _flush(self) -> None:
        while self._pending:
            key, state = self._pending.popleft()
            if self._on_change is None:
                continue
            try:
                self._on_change(key, state)
            except Exception:  # a broken observer must not replace the caller's error or outcome
                log.exception("on_change(%r, %r) failed", key, state)


class _Guard(contextlib.AbstractAsyncContextManager[None]):
    __slots__ = ("_among", "_breakers", "_endpoint", "_epoch", "_key", "_probe", "_settled")

    def __init__(self, breakers: BreakerSet, key: str, among: Alternatives | None) -> None:
        self._breakers = breakers
        self._key = key
        self._among = among
        self._settled = False

    async def __aenter__(self) -> None:
        self._endpoint, self._epoch, self._probe = self._breakers._enter(self._key, self._among)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self._breakers._exit(self._endpoint, self._epoch, self._probe, exc)


class DeferredGuard(_Guard):
    """See BreakerSet.deferred_guard."""

    __slots__ = ()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        if exc is not None:
            self.settle(exc)

    def settle(self, error: BaseException | None) -> None:
        """The call's outcome: None for success; an error counts as the plain guard would. Once only."""
        if not self._settled and getattr(self, "_endpoint", None) is not None:
            self._settled = True
            self._breakers._exit(self._endpoint, self._epoch, self._probe, error)
