"""RouterService handlers: convert, call the pipeline, convert back. Every failure becomes a status here.

Handlers hold no routing logic. Each one reads the request (all field violations at once), bounds
it by the caller's deadline (or the configured default), asks the pipeline, and maps any error
through errors.to_status, so the server never crashes on a request and never leaks internals.

`add_to_server` registers the handlers as the generated code does, but with request deserializers
that never raise: grpc.aio answers a deserializer's exception with UNKNOWN naming a Python class
("Unexpected <class 'DecodeError'>") and logs a traceback per request. Here a payload over
server.max_request_mb (measured on the wire, before parsing) or one that does not parse becomes an
InvalidRequest that the handler raises, so it gets INVALID_ARGUMENT like any other bad field.

Shutdown (`drain`, before the transport stops): gRPC's core answers CANCELLED, which clients do
not retry, to every call that reached it but was not yet handed to a handler when the server
shuts down (grpc/grpc#41785). So for a short quiet window, and then until the requests in
flight have finished (within the grace period), the handlers answer new calls UNAVAILABLE
themselves; only then does the transport stop (decision 007).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from sidecar.domain.errors import FieldViolation, InvalidRequest, Unavailable
from sidecar.domain.observe import QUIET, ObservedRpc, Observer, RpcEnded
from sidecar.domain.plan import Plan
from sidecar.domain.response import StreamChunk
from sidecar.domain.result import ExecutionResult
from sidecar.limits.budgets import Usage
from sidecar.log_limit import LogLimiter, log_failure
from sidecar.pipeline import Pipeline
from sidecar.policy.health import HealthTracker
from sidecar.registry.registry import Registry
from sidecar.server import convert_out as out
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from sidecar.server.convert_in import AnyRequest, to_chat_request
from sidecar.server.errors import to_status
from sidecar.shadow.runner import ShadowRunner

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]
M = TypeVar("M", bound=Message)
# Unexpected failures are logged with their traceback, but a burst of them must not flood the log.
_log_limit = LogLimiter(per_second=1.0, burst=10)
DRAIN_QUIET_S = 0.1  # see the module doc


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one config snapshot serves with; swapped whole on reload."""

    pipeline: Pipeline
    registry: Registry
    shadow: ShadowRunner | None = None  # shadow evaluation, when any route has it
    observer: Observer = QUIET  # every RPC's events go here (health, telemetry, shadows)


# GetBudgets' source: every budget in force, and whether the figures come from the shared store.
BudgetReport = Callable[[], Awaitable[tuple[list[Usage], bool]]]


class RouterServicer(pb_grpc.RouterServiceServicer):
    def __init__(
        self,
        runtime: Callable[[], Runtime],
        health: HealthTracker,
        *,
        max_request_bytes: int,
        default_timeout_s: float,
        budgets: BudgetReport | None = None,
    ) -> None:
        self._runtime = runtime
        self._budgets = budgets
        self._health = health
        self._max_request_bytes = max_request_bytes
        self._default_timeout_s = default_timeout_s
        self._draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def Route(
        self, request: pb.RouteRequest | InvalidRequest, context: Context
    ) -> pb.RouteResponse | None:
        runtime = self._runtime()
        with ObservedRpc(runtime.observer, "Route", context.invocation_metadata()) as rpc:
            try:
                with self._serving():
                    chat = to_chat_request(self._checked(request))
                    plan = runtime.pipeline.route(chat, rpc.call)
                    return pb.RouteResponse(decision=out.decision(plan), request_id=chat.request_id)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status, never a crash
                rpc.ended = _fail(context, exc)
                return None  # the status set is sent; no response

    async def Generate(
        self, request: pb.GenerateRequest | InvalidRequest, context: Context
    ) -> pb.GenerateResponse | None:
        runtime = self._runtime()
        with ObservedRpc(runtime.observer, "Generate", context.invocation_metadata()) as rpc:
            try:
                with self._serving():
                    chat = to_chat_request(self._checked(request))
                    call = rpc.call
                    generated = await runtime.pipeline.generate(chat, self._deadline(context), call)
                    return out.generate_response(
                        generated.plan,
                        generated.result,
                        chat.request_id,
                        trace_id=call.trace_id,
                        logprobs=chat.params.logprobs,
                    )
            except Exception as exc:  # noqa: BLE001
                rpc.ended = _fail(context, exc)
                return None  # the status set is sent; no response

    async def GenerateStream(
        self, request: pb.GenerateStreamRequest | InvalidRequest, context: Context
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        runtime = self._runtime()
        with ObservedRpc(runtime.observer, "GenerateStream", context.invocation_metadata()) as rpc:
            try:
                with self._serving():
                    chat = to_chat_request(self._checked(request))
                    plan: Plan | None = None
                    call = rpc.call
                    events = runtime.pipeline.generate_stream(chat, self._deadline(context), call)
                    async for event in events:
                        if isinstance(event, Plan):
                            plan = event
                        elif isinstance(event, StreamChunk):
                            yield pb.GenerateStreamResponse(
                                delta=out.delta(event, logprobs=chat.params.logprobs)
                            )
                        elif isinstance(event, ExecutionResult):  # (a Relaying needs no message:
                            # deltas name no model, StreamEnd names the one that answered)
                            assert plan is not None, "the pipeline yields the plan first"
                            end = out.stream_end(plan, event, chat.request_id, trace_id=call.trace_id)
                            yield pb.GenerateStreamResponse(end=end)
            except Exception as exc:  # noqa: BLE001
                rpc.ended = _fail(context, exc)

    async def ListModels(
        self, request: pb.ListModelsRequest | InvalidRequest, context: Context
    ) -> pb.ListModelsResponse | None:
        if isinstance(request, InvalidRequest):
            _fail(context, request)
            return None
        registry = self._runtime().registry
        return pb.ListModelsResponse(
            models=[
                out.model_info(m, registry.endpoint(m), self._health.snapshot(m.name))
                for m in registry.models
            ]
        )

    async def GetBudgets(
        self, request: pb.GetBudgetsRequest | InvalidRequest, context: Context
    ) -> pb.GetBudgetsResponse | None:
        if isinstance(request, InvalidRequest):
            _fail(context, request)
            return None
        if self._budgets is None:
            return pb.GetBudgetsResponse()
        usages, shared = await self._budgets()
        return pb.GetBudgetsResponse(budgets=[out.budget_usage(u) for u in usages], shared=shared)

    async def drain(self, grace_s: float, quiet_s: float = DRAIN_QUIET_S) -> None:
        """Answer new calls UNAVAILABLE; return after `quiet_s` once no request is in flight, or
        after `grace_s` (whichever first). The transport stops after this (see the module doc)."""
        self._draining = True
        started = time.monotonic()
        await asyncio.sleep(min(quiet_s, grace_s))
        left = grace_s - (time.monotonic() - started)
        if left > 0:
            with suppress(TimeoutError):  # the transport's stop then cancels what is left
                await asyncio.wait_for(self._idle.wait(), left)

    @contextmanager
    def _serving(self) -> Iterator[None]:
        if self._draining:
            raise Unavailable("the sidecar is shutting down; retry the request")
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    def _checked(self, request: AnyRequest | InvalidRequest) -> AnyRequest:
        if isinstance(request, InvalidRequest):
            raise request
        return request

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register the five RPCs, as `add_RouterServiceServicer_to_server` does, with `_read`."""
        unary, stream = grpc.unary_unary_rpc_method_handler, grpc.unary_stream_rpc_method_handler
        rpcs: dict[str, tuple[Any, Any, type[Message], type[Message]]] = {
            "Route": (unary, self.Route, pb.RouteRequest, pb.RouteResponse),
            "Generate": (unary, self.Generate, pb.GenerateRequest, pb.GenerateResponse),
            "GenerateStream": (
                stream,
                self.GenerateStream,
                pb.GenerateStreamRequest,
                pb.GenerateStreamResponse,
            ),
            "ListModels": (unary, self.ListModels, pb.ListModelsRequest, pb.ListModelsResponse),
            "GetBudgets": (unary, self.GetBudgets, pb.GetBudgetsRequest, pb.GetBudgetsResponse),
        }
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            name: handler(
                method,
                request_deserializer=self._read(request),
                response_serializer=response.SerializeToString,
            )
            for name, (handler, method, request, response) in rpcs.items()
        }
        service = pb.DESCRIPTOR.services_by_name["RouterService"].full_name
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
        server.add_registered_method_handlers(service, handlers)

    def _read(self, cls: type[M]) -> Callable[[bytes], M | InvalidRequest]:
        """A request deserializer that returns the error instead of raising it (see the module doc)."""
        limit = self._max_request_bytes

        def read(data: bytes) -> M | InvalidRequest:
            if len(data) > limit:
                return InvalidRequest(
                    [
                        FieldViolation(
                            "messages",
                            f"the request is {len(data):,} bytes, over the limit of {limit:,} "
                            "(server.max_request_mb)",
                        )
                    ],
                    reason="REQUEST_TOO_LARGE",
                )
            try:
                return cls.FromString(data)
            except DecodeError:
                why = f"the request is not a valid {cls.DESCRIPTOR.full_name} ({len(data):,} bytes)"
                return InvalidRequest([FieldViolation("", why)], reason="UNDECODABLE_REQUEST")

        return read

    def _deadline(self, context: Context) -> float:
        remaining = context.time_remaining()
        budget = self._default_timeout_s if remaining is None else min(remaining, self._default_timeout_s)
        return time.monotonic() + budget


def _fail(context: Context, exc: Exception) -> RpcEnded:
    """End a failed call with its status, once the failure is logged; returns what observers see.

    The status is set on the context, not raised by `context.abort`: grpc keeps abort's
    AbortError in the call's state, and that error's traceback holds the handler's frame, which
    holds the context, a reference cycle per failed call; the failure's own tracebacks are let go
    by `log_failure` (docs/decisions/002-soak.md). A handler that returns after setting a non-OK
    code sends that status; its response (None) is discarded.
    """
    log_failure(log, _log_limit, exc, "request")
    status = to_status(exc)
    code: grpc.StatusCode = status.code
    ended = RpcEnded(code.name, code.value[0], type(exc).__name__, getattr(exc, "attempts", ()))
    context.set_code(code)
    context.set_details(status.details)
    context.set_trailing_metadata(status.trailing_metadata)
    return ended
