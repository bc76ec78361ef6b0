"""Shared health (optional, limits.store.share_health): a breaker one pod opens opens everywhere.

When a model's breaker opens here on this pod's own failures, the next heartbeat writes it to the
store; every pod's heartbeat reads the openings of the last few seconds and opens its own breaker
for that model if it is closed. Each pod then probes the model on its own schedule (probe_after_s,
backing off) and closes its breaker when its probe succeeds; an opening is acted on once, so a
pod that recovered is not tripped again by the same news, and a breaker opened by another pod's
news is not passed on (no echo between pods).

Off by default, and why: one pod's own trouble (its network, its node's DNS, a noisy neighbour)
then takes the model away from every pod for a probe interval, and a pod that misreads a bad
request as an endpoint failure does the same. With it on, an outage seen by one pod costs the
others their fail_max failures less each; the probes bring the model back within probe_after_s
wherever it works.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Openings(Protocol):
    async def openings(self, pod: str, opened: Sequence[str], news_s: float) -> list[tuple[str, str]] | None:
        """Store this pod's openings; every pod's still news, as (model, "<ms> <pod>"); None while
        the store is away."""
        ...


class Breakers(Protocol):
    def trip(self, key: str) -> bool: ...


class SharedHealth:
    """One per sidecar, kept across reloads; beaten by the Heartbeat."""

    def __init__(self, store: Openings, breakers: Breakers, interval_s: float = 1.0) -> None:
        self._store = store
        self._breakers = breakers
        self._news_s = 3 * interval_s  # long enough for every pod's heartbeat to see it
        self._pod = uuid.uuid4().hex
        self._opened: list[str] = []  # opened here since the last heartbeat, on this pod's failures
        self._seen: set[tuple[str, str]] = set()  # openings acted on (each once)
        self._tripping = ""  # the model whose breaker a peer's news is opening right now

    def opened(self, model: str) -> None:
        """A breaker here opened (the BreakerSet's on_change): news for the other pods, unless it
        was their news that opened it."""
        if model != self._tripping:
            self._opened.append(model)

    async def beat(self) -> None:
        opened, self._opened = self._opened, []
        news = await self._store.openings(self._pod, opened, self._news_s)
        if news is None:
            self._opened = opened + self._opened  # sent when the store is back
            return
        current = set(news)
        for model, stamp in news:
            if (model, stamp) in self._seen or stamp.endswith(" " + self._pod):
                continue
            self._seen.add((model, stamp))
            self._tripping = model
            try:
                if self._breakers.trip(model):
                    log.warning("circuit breaker for %s opened: another pod saw it fail", model)
            finally:
                self._tripping = ""
        self._seen &= current  # what is no longer news cannot come again
