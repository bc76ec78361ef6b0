"""What ended on the request path, recorded a few milliseconds later in a batch.

The request path only notes what happened (times included, taken as it happens) with
`later(record, *args)`; `drain()` calls the records in the order things ended: on the event loop
at most DRAIN_DELAY_S after the first of them, before every metric collection (Tally.drains),
on flush and shutdown, and at once on a thread without an event loop. Why: live, the same
recording code cost 3-6x what it costs in a loop (each request ran it cold, between gRPC's and
asyncio's work); in batches it runs warm (docs/observability.md, What it costs).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

# How long what ended on the request path may wait to be recorded, with whatever else ends meanwhile.
DRAIN_DELAY_S = 0.005


class Pending:
    """Records waiting for the next drain. `on_failure` is called (inside the except block) when
    a record raises; the records after it are still called."""

    __slots__ = ("_on_failure", "_queue")

    def __init__(self, on_failure: Callable[[], None]) -> None:
        self._on_failure = on_failure
        # (record, its arguments) in the order things ended; appended on the event loop's
        # thread, drained on it or on a metric reader's (deque's append and popleft are atomic)
        self._queue: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()

    def later(self, record: Callable[..., None], *args: Any) -> None:
        """Call `record(*args)` at the next drain: within DRAIN_DELAY_S on this thread's event
        loop, or now when the thread runs none."""
        queue = self._queue
        queue.append((record, args))
        if len(queue) == 1:  # the first since the last drain: schedule one
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.drain()
                return
            loop.call_later(DRAIN_DELAY_S, self.drain)

    def drain(self) -> None:
        """Record everything that ended and is not recorded yet, in the order it ended."""
        queue = self._queue
        while queue:
            try:
                record, args = queue.popleft()
            except IndexError:  # another thread took the last one
                return
            try:
                record(*args)
            except Exception:  # noqa: BLE001 - telemetry never fails a request, nor the next record
                self._on_failure()
