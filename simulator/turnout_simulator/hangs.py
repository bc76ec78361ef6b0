"""The owned set of hanging requests, so shutdown can release them instead of waiting on them forever.

A `hang` fault parks its handler on a future held here. The handler ends when the client goes away
(aiohttp cancels it, since the runner enables handler cancellation) or when `release_all` runs at
shutdown; nothing else ever completes the future, and no task is created for it.
"""

from __future__ import annotations

import asyncio


class HangingRequests:
    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def __len__(self) -> int:
        return len(self._waiters)

    async def hold(self) -> None:
        """Wait until released by shutdown; raise CancelledError if the caller is cancelled first."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        try:
            await waiter
        finally:
            self._waiters.discard(waiter)

    def release_all(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
