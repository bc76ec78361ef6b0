"""RouterService handlers: convert, call the pipeline, convert back. Every failure becomes a status here.

Handlers hold no routing logic. Each one reads the request (all field violations at once), bounds
it by the caller's deadline (or the configured default), asks the pipeline, and maps any error
through errors.to_status, so the server never crashes on a request and never leaks internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from sidecar.domain.errors import FieldViolation, InvalidRequest, TurnoutError
from sidecar.domain.plan import Plan
from sidecar.domain.response import StreamChunk
from sidecar.execution.executor import ExecutionResult
from sidecar.pipeline import Pipeline
from sidecar.registry.health import HealthTracker
from sidecar.registry.registry import Registry
from sidecar.server import convert_out as out
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server._proto.turnout.v1 import router_pb2_grpc as pb_grpc
from sidecar.server.convert_in import AnyRequest, to_chat_request
from sidecar.server.errors import to_status
from sidecar.shadow.runner import ShadowRunner
from sidecar.telemetry import RpcScope, Telemetry, Unobserved

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True, slots=True)
class Runtime:
    """What one config snapshot serves with; swapped whole on reload."""

    pipeline: Pipeline
    registry: Registry
    shadow: ShadowRunner | None = None  # shadow evaluation, when any route has it


class RouterServicer(pb_grpc.RouterServiceServicer):
    def __init__(
        self,
        runtime: Callable[[], Runtime],
        health: HealthTracker,
        *,
        max_request_bytes: int,
        default_timeout_s: float,
        telemetry: Telemetry,
    ) -> None:
        self._runtime = runtime
        self._health = health
        self._telemetry = telemetry
        self._max_request_bytes = max_request_bytes
        self._default_timeout_s = default_timeout_s

    async def Route(self, request: pb.RouteRequest, context: Context) -> pb.RouteResponse:
        with self._telemetry.rpc("Route", context.invocation_metadata()) as rpc:
            try:
                chat = to_chat_request(self._checked(request))
                plan = self._runtime().pipeline.route(chat)
                return pb.RouteResponse(decision=out.decision(plan), request_id=chat.request_id)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status, never a crash
                await _abort(context, exc, rpc)
                raise AssertionError("unreachable") from None

    async def Generate(self, request: pb.GenerateRequest, context: Context) -> pb.GenerateResponse:
        with self._telemetry.rpc("Generate", context.invocation_metadata()) as rpc:
            try:
                chat = to_chat_request(self._checked(request))
                generated = await self._runtime().pipeline.generate(chat, self._deadline(context))
                result = generated.result
                rpc.answered(result.attempts, result.winner)
                return out.generate_response(generated.plan, result, chat.request_id, trace_id=rpc.trace_id)
            except Exception as exc:  # noqa: BLE001
                await _abort(context, exc, rpc)
                raise AssertionError("unreachable") from None

    async def GenerateStream(
        self, request: pb.GenerateStreamRequest, context: Context
    ) -> AsyncIterator[pb.GenerateStreamResponse]:
        with self._telemetry.rpc("GenerateStream", context.invocation_metadata()) as rpc:
            try:
                chat = to_chat_request(self._checked(request))
                plan: Plan | None = None
                events = self._runtime().pipeline.generate_stream(chat, self._deadline(context))
                async for event in events:
                    if isinstance(event, Plan):
                        plan = event
                    elif isinstance(event, StreamChunk):
                        yield pb.GenerateStreamResponse(
                            delta=pb.OutputDelta(
                                text=event.text,
                                tool_calls=[
                                    pb.ToolCallDelta(
                                        index=d.index, id=d.id, name=d.name, arguments_json=d.arguments_json
                                    )
                                    for d in event.tool_calls
                                ],
                            )
                        )
                    elif isinstance(event, ExecutionResult):
                        assert plan is not None, "the pipeline yields the plan first"
                        rpc.answered(event.attempts, event.winner)
                        end = out.stream_end(plan, event, chat.request_id, trace_id=rpc.trace_id)
                        yield pb.GenerateStreamResponse(end=end)
            except Exception as exc:  # noqa: BLE001
                await _abort(context, exc, rpc)

    async def ListModels(self, request: pb.ListModelsRequest, context: Context) -> pb.ListModelsResponse:
        registry = self._runtime().registry
        return pb.ListModelsResponse(
            models=[
                out.model_info(m, registry.endpoint(m), self._health.snapshot(m.name))
                for m in registry.models
            ]
        )

    def _checked(self, request: AnyRequest) -> AnyRequest:
        size = request.ByteSize()
        if size > self._max_request_bytes:
            raise InvalidRequest(
                [
                    FieldViolation(
                        "messages",
                        f"the request is {size:,} bytes, over the limit of {self._max_request_bytes:,} "
                        "(server.max_request_mb)",
                    )
                ],
                reason="REQUEST_TOO_LARGE",
            )
        return request

    def _deadline(self, context: Context) -> float:
        remaining = context.time_remaining()
        budget = self._default_timeout_s if remaining is None else min(remaining, self._default_timeout_s)
        return time.monotonic() + budget


async def _abort(context: Context, exc: Exception, rpc: RpcScope | Unobserved) -> None:
    if not isinstance(exc, TurnoutError):
        log.error("request failed unexpectedly: %s", type(exc).__name__, exc_info=exc)
    status = to_status(exc)
    code: grpc.StatusCode = status.code
    rpc.failed(code.name, code.value[0], type(exc).__name__, getattr(exc, "attempts", ()))
    await context.abort_with_status(status)
