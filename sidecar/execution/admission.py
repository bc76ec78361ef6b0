"""Admission control: a provider call waits here, by priority, for concurrency slots and rate capacity.

Turnout's own limits per provider (and optionally per model), applied right before each attempt:

    model concurrency slot -> provider concurrency slot -> provider rates -> model rates -> call

Slots are taken before rates. A rate limiter spends its capacity the moment it admits; if rates came
first, a request could spend request/token budget and then sit in the slot queue, and the calls would
reach the provider later in a burst the limiter never saw. Taking the slot first means the budget is
spent right before the call goes out, so the limiter's view of time matches the provider's. The model
slot comes before the provider slot: holding a provider slot while waiting for a model slot would block
the provider's other models for nothing.

Every wait is a priority queue (CRITICAL first, FIFO within a priority), and one bound covers the
whole admission: min(deadline, now + max_wait_s). A waiter that reaches it gives back every slot it
holds (a slot held behind a slow rate limit included) and fails with FailureClass.NOT_ADMITTED.

Rates may be shared with other pods (limits.store.share_rates, sidecar/limits/rates.py): then a
lane's buckets run at a share of the configured rate, set from outside (`share_rates`), and the
lane counts what it was asked for (`take_demand`), which is what the shares are weighed by.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.domain.request import Priority


@dataclass(frozen=True, slots=True)
class Limits:
    max_concurrency: int | None = None  # in-flight calls at once
    requests_per_s: float | None = None
    tokens_per_min: float | None = None  # input + expected output tokens

    def __post_init__(self) -> None:
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, not {self.max_concurrency}")
        for name, rate in (("requests_per_s", self.requests_per_s), ("tokens_per_min", self.tokens_per_min)):
            if rate is not None and rate <= 0:
                raise ValueError(f"{name} must be positive, not {rate}")


class _PriorityGate:
    """A semaphore whose waiters are served highest priority first, FIFO within a priority.

    A freed slot is handed straight to the next waiter, so a newcomer never barges past the queue:
    there are waiters only while every slot is taken.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._in_use = 0
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def acquire(self, priority: Priority) -> None:
        if self._in_use < self._limit:
            self._in_use += 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (-priority, next(self._order), granted)
        heapq.heappush(self._waiters, entry)
        try:
            await granted
        except BaseException:  # cancelled or timed out: leave the queue, pass on a slot already handed over
            if granted.done() and not granted.cancelled():
                self.release()
            elif entry in self._waiters:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def release(self) -> None:
        while self._waiters:
            granted = heapq.heappop(self._waiters)[2]
            if not granted.done():  # a cancelled waiter that has not run yet is skipped
                granted.set_result(None)
                return
        self._in_use -= 1


class _Bucket:
    """A leaky bucket holding at most `size`, draining at `rate_per_s`, both scaled by `share` (the
    part of a limit shared with other pods that this pod may use now; 1 alone). A new share applies
    from the next acquire on. It keeps no queue: one waiter at a time reaches it (the lane's turn).
    aiolimiter's bucket served here before; its rate cannot change in place."""

    __slots__ = ("_at", "_level", "_min_size", "_rate", "_size", "share")

    def __init__(self, size: float, rate_per_s: float, min_size: float = 0.0) -> None:
        self._size, self._rate, self._min_size = size, rate_per_s, min_size
        self.share = 1.0
        self._level = 0.0
        self._at = 0.0

    @property
    def size(self) -> float:
        return max(self._min_size, self._size * self.share)

    @property
    def rate_per_s(self) -> float:
        return self._rate * self.share

    async def acquire(self, amount: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            self._level = max(0.0, self._level - (now - self._at) * self.rate_per_s)
            self._at = now
            over = self._level + amount - self.size
            if over <= 1e-9:
                self._level += amount
                return
            await asyncio.sleep(over / self.rate_per_s)


class _Lane:
    """The limits of one provider or one model."""

    def __init__(self, limits: Limits) -> None:
        self.slots = _PriorityGate(limits.max_concurrency) if limits.max_concurrency else None
        # Requests: a burst of one second's worth (at least one request), then 1/r apart.
        rps = limits.requests_per_s
        self.requests = _Bucket(rps, rps, min_size=1.0) if rps else None
        tpm = limits.tokens_per_min
        self.tokens = _Bucket(tpm, tpm / 60) if tpm else None
        self.asked = 0  # attempts that came for rate capacity since the last take_demand
        # One waiter at a time meets the buckets, the rest queue here by priority, so that small
        # requests cannot slip past a large one and starve it. The waiter at the buckets is
        # committed: a later, higher priority goes next, not before it.
        self.turn = _PriorityGate(1) if self.requests or self.tokens else None

    @property
    def limited(self) -> bool:
        return self.slots is not None or self.turn is not None

    def rate_wait_bound(self, tokens: int) -> float:
        """At most how long the head of the queue waits for rate capacity (0 without rates).

        A bucket holds at most its size, so room for `amount` leaks out within amount / rate.
        """
        bound = 0.0
        if self.requests:
            bound += 1 / self.requests.rate_per_s
        if self.tokens:
            bound += _token_amount(tokens, self.tokens) / self.tokens.rate_per_s
        return bound

    def share(self, share: float) -> None:
        for bucket in (self.requests, self.tokens):
            if bucket is not None:
                bucket.share = share

    async def take_rates(self, priority: Priority, tokens: int) -> None:
        # Giving up while waiting for tokens keeps the request unit already spent: conservative, it
        # can only leave the provider below its limit, never above.
        if self.turn is None:
            return
        self.asked += 1
        await self.turn.acquire(priority)
        try:
            if self.requests:
                await self.requests.acquire(1)
            if self.tokens:
                await self.tokens.acquire(_token_amount(tokens, self.tokens))
        finally:
            self.turn.release()


def _token_amount(tokens: int, bucket: _Bucket) -> float:
    # Clamped to the bucket: a request larger than a minute's budget waits for an empty bucket and
    # fills it, rather than waiting forever.
    return min(max(0.0, float(tokens)), bucket.size)


_NO_WAIT: contextlib.nullcontext[None] = contextlib.nullcontext()


class Admission:
    """Per-provider and per-model limits; `admit` is entered right before each provider attempt."""

    def __init__(
        self,
        providers: Mapping[str, Limits],
        models: Mapping[str, Limits] | None = None,
        *,
        max_wait_s: float = 2.0,
    ) -> None:
        self._providers = {name: lane for name, lim in providers.items() if (lane := _Lane(lim)).limited}
        self._models = {name: lane for name, lim in (models or {}).items() if (lane := _Lane(lim)).limited}
        self._max_wait_s = max_wait_s
        # Every limited provider from the start, so that a queue-depth gauge reads 0, not nothing.
        self._waiting: dict[str, int] = dict.fromkeys(self._providers, 0)

    def admit(
        self, provider: str, model: str, *, priority: Priority, tokens: int, deadline: float
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold a place at `provider`/`model` for the block; raise NOT_ADMITTED if none comes in time.

        `deadline` is an absolute loop.time(). Without limits this returns a shared no-op at once.
        """
        lanes = tuple(lane for lane in (self._models.get(model), self._providers.get(provider)) if lane)
        if not lanes:
            return _NO_WAIT
        return self._admitted(lanes, provider, model, priority, tokens, deadline)

    def take_demand(self) -> dict[str, int]:
        """Attempts that asked each rate-limited lane ("provider:NAME", "model:NAME") for capacity
        since the last call, admitted or not: what a pod's share of a shared rate is weighed by."""
        out = {}
        for key, lane in self._rate_lanes():
            out[key], lane.asked = lane.asked, 0
        return out

    def share_rates(self, shares: Mapping[str, float], default: float) -> None:
        """Run each rate-limited lane at its share of the configured rates (`default` if unnamed)."""
        for key, lane in self._rate_lanes():
            lane.share(shares.get(key, default))

    def _rate_lanes(self) -> list[tuple[str, _Lane]]:
        return [
            (f"{kind}:{name}", lane)
            for kind, lanes in (("provider", self._providers), ("model", self._models))
            for name, lane in lanes.items()
            if lane.turn is not None
        ]

    def depth(self, provider: str) -> int:
        """Requests for `provider` waiting for a slot or rate capacity (any of its models)."""
        return self._waiting.get(provider, 0)

    def depths(self) -> dict[str, int]:
        """Requests waiting for admission, per provider (only providers that have had waiters)."""
        return dict(self._waiting)

    @contextlib.asynccontextmanager
    async def _admitted(
        self,
        lanes: tuple[_Lane, ...],
        provider: str,
        model: str,
        priority: Priority,
        tokens: int,
        deadline: float,
    ) -> AsyncIterator[None]:
        start = asyncio.get_running_loop().time()
        until = min(deadline, start + self._max_wait_s)
        held: list[_PriorityGate] = []
        retry_after_s = self._max_wait_s  # nobody knows when an in-flight call ends
        self._waiting[provider] = self._waiting.get(provider, 0) + 1
        try:
            async with asyncio.timeout_at(until):
                for lane in lanes:
                    if lane.slots:
                        await lane.slots.acquire(priority)
                        held.append(lane.slots)
                for lane in reversed(lanes):  # provider rates, then model rates
                    if lane.turn:  # an upper bound at the head of the line, a floor behind it
                        retry_after_s = max(lane.rate_wait_bound(tokens), 0.001)
                    await lane.take_rates(priority, tokens)
        except TimeoutError:
            waiting = self._waiting[provider]  # this waiter included
            _release(held)
            raise ProviderError(
                FailureClass.NOT_ADMITTED,
                f"{provider}/{model}: no capacity within {max(0.0, until - start):.2f} s ({waiting} waiting)",
                retry_after_s=retry_after_s,
            ) from None
        except BaseException:
            _release(held)
            raise
        finally:
            self._waiting[provider] -= 1
        try:
            yield
        finally:
            _release(held)


def _release(held: list[_PriorityGate]) -> None:
    for gate in reversed(held):
        gate.release()
    held.clear()
