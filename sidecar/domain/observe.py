"""What the request path tells its observers: one protocol, typed events, data flowing one way.

    server    observer.rpc_started(RpcStarted) -> call     one CallObserver per RPC, with its state
    pipeline  call.planned(Planned)                        the decision
    executor  call.attempt_started(AttemptStart)           each provider attempt as it starts (Ledger)
              call.attempt_ended(AttemptEnded)             and as it ends, whatever became of it
    pipeline  call.answered(Answered)                      the answer, with the request as sent
    server    call.rpc_ended(RpcEnded)                     the status, and a failure's attempts

Subscribers (telemetry, live health, shadow evaluation) only read what they are given: none
raises into the request flow, blocks, or steers it. `fan_out` joins them; with nobody
subscribed every event goes to QUIET, which does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from sidecar.domain.outcome import AttemptRecord, AttemptStart
from sidecar.domain.plan import Candidate, Plan
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import Completion


@dataclass(frozen=True, slots=True)
class RpcStarted:
    method: str  # e.g. "Route", "Generate", "GenerateStream"
    metadata: Iterable[tuple[str, Any]] | None = ()  # the caller's (trace context headers)


@dataclass(frozen=True, slots=True)
class Planned:
    request: ChatRequest
    plan: Plan


@dataclass(frozen=True, slots=True)
class AttemptEnded:
    start: AttemptStart  # the very event its start was reported with: it identifies the attempt
    record: AttemptRecord
    completion: Completion | None  # the answer, when one came


@dataclass(frozen=True, slots=True)
class Answered:
    request: ChatRequest  # as sent (truncated, if the plan cut it)
    plan: Plan
    completion: Completion
    candidate: Candidate  # the one that answered
    attempts: tuple[AttemptRecord, ...]  # every attempt, in start order
    winner: int  # the number of the attempt that answered
    call: CallObserver  # where attempts made later on this call's behalf are reported (shadows)


@dataclass(frozen=True, slots=True)
class RpcEnded:
    status: str = "OK"  # the gRPC status code's name
    code: int = 0  # and its number
    error_type: str = ""  # what failed (an error class's name); "" on success
    attempts: tuple[AttemptRecord, ...] | None = None  # a failure's; None: those answered, if any


OK = RpcEnded()


class CallObserver(Protocol):
    """One RPC's observer, made by `Observer.rpc_started`; its events come in the order above."""

    @property
    def trace_id(self) -> str:
        """The call's trace id in hex, "" when it has none (its response and log line carry it)."""
        ...

    def planned(self, event: Planned) -> None: ...

    def attempt_started(self, event: AttemptStart) -> None: ...

    def attempt_ended(self, event: AttemptEnded) -> None: ...

    def answered(self, event: Answered) -> None: ...

    def rpc_ended(self, event: RpcEnded) -> None: ...


class Observer(Protocol):
    def rpc_started(self, event: RpcStarted) -> CallObserver: ...


class Quiet:
    """Ignores every event: the call observer when nobody subscribes, and a base for subscribers
    that want only a few events (its `rpc_started` returns the subscriber itself: no state per call)."""

    __slots__ = ()
    trace_id = ""

    def rpc_started(self, event: RpcStarted) -> CallObserver:
        return self

    def planned(self, event: Planned) -> None:
        return None

    def attempt_started(self, event: AttemptStart) -> None:
        return None

    def attempt_ended(self, event: AttemptEnded) -> None:
        return None

    def answered(self, event: Answered) -> None:
        return None

    def rpc_ended(self, event: RpcEnded) -> None:
        return None


QUIET = Quiet()


def fan_out(observers: Sequence[Observer]) -> Observer:
    """One observer for several: each event goes to each, in order. One alone is itself."""
    if not observers:
        return QUIET
    if len(observers) == 1:
        return observers[0]
    return _FanOut(tuple(observers))


class _FanOut:
    __slots__ = ("_observers",)

    def __init__(self, observers: tuple[Observer, ...]) -> None:
        self._observers = observers

    def rpc_started(self, event: RpcStarted) -> CallObserver:
        return _FanOutCall(tuple([o.rpc_started(event) for o in self._observers]))


class _FanOutCall:
    __slots__ = ("_calls",)

    def __init__(self, calls: tuple[CallObserver, ...]) -> None:
        self._calls = calls

    @property
    def trace_id(self) -> str:
        return next((c.trace_id for c in self._calls if c.trace_id), "")

    def planned(self, event: Planned) -> None:
        for c in self._calls:
            c.planned(event)

    def attempt_started(self, event: AttemptStart) -> None:
        for c in self._calls:
            c.attempt_started(event)

    def attempt_ended(self, event: AttemptEnded) -> None:
        for c in self._calls:
            c.attempt_ended(event)

    def answered(self, event: Answered) -> None:
        for c in self._calls:
            c.answered(event)

    def rpc_ended(self, event: RpcEnded) -> None:
        for c in self._calls:
            c.rpc_ended(event)


class ObservedRpc:
    """One call's observation as a context, for a front door (gRPC or HTTP): the call observer
    started on entry, ended on exit. `with ObservedRpc(observer, method, metadata) as rpc:` ...
    `rpc.call` is the call's observer. The handler sets `ended` when it chose a status; an
    exception that cut the handler short (the client went away, a bug) ends it as CANCELLED or
    INTERNAL."""

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
