"""Run a coroutine on an event loop with virtual time (looptime): sleeps and timeouts cost nothing.

The loop's clock starts at 0 and jumps ahead whenever every task is waiting, so a test of a 30 s
hedge delay or a Retry-After of 2 s runs in microseconds, deterministically. Components read time
through an injected clock; in these tests that clock is `loop.time`. (looptime's pytest plugin is
off in pyproject: it leaves loops unclosed under pytest-asyncio; this helper closes its loop.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import looptime

T = TypeVar("T")


def run_virtual(coro: Coroutine[Any, Any, T]) -> T:
    loop = looptime.new_event_loop(start=0.0)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def now() -> float:
    """The virtual time of the running loop."""
    return asyncio.get_running_loop().time()
