"""The plug-in point of the HTTP front door: one API's wire format, and no I/O.

An API (OpenAI Chat Completions, Anthropic Messages) reads a JSON body into a ChatRequest and
writes answers, streamed events and errors in its own shapes; the server does the rest (limits,
auth, hints, the pipeline, telemetry) the same way for every API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest
from sidecar.domain.response import StreamChunk
from sidecar.domain.result import ExecutionResult
from sidecar.domain.status import ErrorStatus
from sidecar.http_api.reading import Reader


@dataclass(frozen=True, slots=True)
class Inbound:
    chat: ChatRequest  # hints from the headers are added by the server (hints.annotate)
    model: str  # the body's `model`: a route, a registry model, "auto" or ""
    stream: bool = False
    stream_usage: bool = False  # OpenAI's stream_options.include_usage


class StreamWriter(Protocol):
    """One streamed answer's events, as bytes to write (server-sent events)."""

    def relaying(self, model: str) -> None:
        """The chunks that follow come from `model` (the registry's name)."""
        ...

    def chunk(self, chunk: StreamChunk) -> bytes: ...

    def end(self, result: ExecutionResult) -> bytes: ...

    def failed(self, status: ErrorStatus) -> bytes:
        """The event that ends a stream broken after its first chunk; the SDKs raise on it."""
        ...


class Wire(Protocol):
    operation: str  # the telemetry operation: "POST /v1/chat/completions"

    def read(self, r: Reader, body: Mapping[str, Any]) -> Inbound:
        """The request; every violation noted in `r` (the server raises them all at once)."""
        ...

    def answer(self, chat: ChatRequest, plan: Plan, result: ExecutionResult) -> dict[str, Any]: ...

    def stream(self, chat: ChatRequest, plan: Plan, inbound: Inbound) -> StreamWriter: ...

    def error(self, status: ErrorStatus, http_status: int) -> dict[str, Any]:
        """The error body in the API's own shape."""
        ...


def sse(data: bytes, event: str = "") -> bytes:
    """One server-sent event."""
    return (f"event: {event}\n".encode() if event else b"") + b"data: " + data + b"\n\n"
