"""Builders for protobuf requests and readers for google.rpc.Status details in server tests."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sidecar.server._proto.turnout.v1 import router_pb2 as pb


def user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])


def generate_request(
    text: str = "Is this email spam? 'You won a prize'", **fields: Any
) -> pb.GenerateRequest:
    return pb.GenerateRequest(messages=[user(text)], **fields)


def details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The ErrorInfo, BadRequest and RetryInfo details of a failed call, by type name."""
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status details"
    found: dict[str, Any] = {}
    for packed in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if packed.Is(cls.DESCRIPTOR):
                value = cls()
                packed.Unpack(value)
                found[cls.__name__] = value
    return found


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    return [v.field for v in details(error)["BadRequest"].field_violations]
