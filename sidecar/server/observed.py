"""One RPC's observation as a context: the call observer started on entry, ended on exit.

The handler sets `ended` when it chose a status (errors.to_status); an exception that cut the
handler short (the client went away, a bug) ends it as CANCELLED or INTERNAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from sidecar.domain.observe import OK, Observer, RpcEnded, RpcStarted


class ObservedRpc:
    """`with ObservedRpc(observer, method, metadata) as rpc:` ... `rpc.call` is the call's observer."""

    __slots__ = ("call", "ended")

    def __init__(self, observer: Observer, method: str, metadata: Iterable[tuple[str, Any]] | None) -> None:
        self.call = observer.rpc_started(RpcStarted(method, metadata))
        self.ended = OK

    def __enter__(self) -> ObservedRpc:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        ended = self.ended
        if exc is not None and ended.status == "OK":  # not a status the handler chose
            if isinstance(exc, asyncio.CancelledError):
                ended = RpcEnded("CANCELLED", 1, "cancelled")
            else:
                ended = RpcEnded("INTERNAL", 13, type(exc).__name__)
        self.call.rpc_ended(ended)
