"""Request helpers: a plain chat call in one line, and one request shape for all three calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from turnout_client._proto.turnout.v1 import router_pb2 as pb

AnyRequest = pb.GenerateRequest | pb.GenerateStreamRequest | pb.RouteRequest
R = TypeVar("R", pb.GenerateRequest, pb.GenerateStreamRequest, pb.RouteRequest)


def chat(
    text: str,
    *,
    system: str | None = None,
    route: str | None = None,
    task_type: str | None = None,
    pinned_model: str | None = None,
    max_output_tokens: int | None = None,
    labels: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> pb.GenerateRequest:
    """One user message (after an optional system message) as a GenerateRequest.

    It serves `route` and `generate_stream` too: the three request messages carry the same fields.
    """
    messages = [message(pb.ROLE_SYSTEM, system)] if system is not None else []
    messages.append(message(pb.ROLE_USER, text))
    request = pb.GenerateRequest(messages=messages, labels=dict(labels or {}), request_id=request_id or "")
    if route is not None:
        request.hints.route = route
    if task_type is not None:
        request.hints.task_type = task_type
    if pinned_model is not None:
        request.hints.pinned_model = pinned_model
    if max_output_tokens is not None:
        request.params.max_output_tokens = max_output_tokens
    return request


def message(role: int, *texts: str) -> pb.Message:
    """A message of text parts, e.g. `message(pb.ROLE_ASSISTANT, "Paris.")`."""
    return pb.Message(role=role, content=[pb.ContentPart(text=t) for t in texts])


def as_request(request: AnyRequest, kind: type[R]) -> R:
    """`request` as a `kind` message. GenerateRequest, GenerateStreamRequest and RouteRequest have the
    same fields under the same numbers, so the bytes of one are the other, nothing lost."""
    if isinstance(request, kind):
        return request
    converted: R = kind.FromString(request.SerializeToString())
    return converted
