"""The heartbeat: one task per sidecar that runs each shared part's `beat` once an interval.

Shared rates (limits/rates.py) and shared health (limits/health.py) talk to the store only here,
never on the request path. A beat that fails is logged and the next one comes as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Beating(Protocol):
    async def beat(self) -> None: ...


class Heartbeat:
    def __init__(self, parts: Sequence[Beating], interval_s: float = 1.0) -> None:
        self._parts = tuple(parts)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self._parts:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="limits-heartbeat")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            for part in self._parts:
                try:
                    await part.beat()
                except Exception:  # the heartbeat must outlive any one part's failure
                    log.exception("limits: heartbeat: %s failed", type(part).__name__)
            await asyncio.sleep(self._interval_s)
