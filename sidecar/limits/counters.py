"""Shared counters: the one plug-in point of the limits package, and its in-process implementation.

A budget asks for one thing on the hot path: "if every total is under its limit, add this amount,
atomically" (`charge`). Everything else is added after the fact without anyone waiting (`add`),
read as last seen without I/O (`known`, for the policy), or read for reports (`totals`).
`LocalCounters` keeps them in this process (one pod, or tests); `RedisCounters`
(limits/redis_counters.py) shares them between pods through Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Claim:
    """One limit's counters for one request: the total of `keys` is checked, `keys[0]` is added to."""

    keys: tuple[str, ...]
    limit: int | None  # usd_nanos; None: counted and reported, never refused
    ttl_s: int  # how long the counters must outlive their last change


@dataclass(frozen=True, slots=True)
class Verdict:
    totals: tuple[int, ...]  # each claim's total before this charge
    refused: int | None  # the index of the first claim at or over its limit (nothing was added)
    shared: bool  # whether the shared store decided (False: this process alone, on its share)


class Counters(Protocol):
    async def charge(self, claims: Sequence[Claim], amount: int) -> Verdict:
        """Add `amount` to every claim's first key if every claim's total is under its limit."""
        ...

    def add(self, key: str, amount: int, ttl_s: int) -> None:
        """Add to one counter without waiting (a negative amount gives back a charge)."""
        ...

    async def totals(self, claims: Sequence[Claim]) -> tuple[int, ...]: ...

    def known(self, claim: Claim) -> int:
        """The claim's total as last seen, with what was added here since: no I/O (the policy's view)."""
        ...

    async def close(self) -> None:
        """Send what is still unsent, as far as the store lets us."""
        ...


class LocalCounters:
    """Counters in this process's memory, expiring `ttl_s` after their last change."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[int, float]] = {}  # key -> (value, expires at)
        self._next_sweep = 0.0

    def value(self, key: str) -> int:
        entry = self._values.get(key)
        return 0 if entry is None or entry[1] <= self._clock() else entry[0]

    def total(self, claim: Claim) -> int:
        return sum(self.value(k) for k in claim.keys)

    async def charge(self, claims: Sequence[Claim], amount: int) -> Verdict:
        return self.charge_now(claims, amount)

    def charge_now(self, claims: Sequence[Claim], amount: int) -> Verdict:
        totals = tuple(self.total(c) for c in claims)
        refused = first_refused(claims, totals)
        if refused is None:
            for claim in claims:
                self.add(claim.keys[0], amount, claim.ttl_s)
        return Verdict(totals, refused, shared=False)

    def add(self, key: str, amount: int, ttl_s: int) -> None:
        now = self._clock()
        self._values[key] = (self.value(key) + amount, now + ttl_s)
        if now >= self._next_sweep:
            self._next_sweep = now + 60
            self._values = {k: v for k, v in self._values.items() if v[1] > now}

    async def totals(self, claims: Sequence[Claim]) -> tuple[int, ...]:
        return tuple(self.total(c) for c in claims)

    def known(self, claim: Claim) -> int:
        return self.total(claim)

    async def close(self) -> None:
        return None


def first_refused(claims: Sequence[Claim], totals: Sequence[int]) -> int | None:
    """A claim is refused once its total reached its limit: the request that crosses it is let in,
    so a limit is overshot by at most one request's charge (and never while a request fits)."""
    for i, (claim, total) in enumerate(zip(claims, totals, strict=True)):
        if claim.limit is not None and total >= claim.limit:
            return i
    return None
