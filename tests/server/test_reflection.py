"""Server reflection under both names, grpc.reflection.v1 and v1alpha (tools that speak only v1 fail
against a server with only v1alpha)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2

VERSIONS = ("grpc.reflection.v1", "grpc.reflection.v1alpha")


async def ask(
    channel: grpc.aio.Channel, package: str, **request: str
) -> reflection_pb2.ServerReflectionResponse:
    """One request on `package`'s ServerReflectionInfo. v1 and v1alpha messages are the same bytes,
    so the v1alpha classes stand in for a v1 client's generated ones."""
    call = channel.stream_stream(
        f"/{package}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    replies = [r async for r in call(iter([reflection_pb2.ServerReflectionRequest(**request)]))]
    assert len(replies) == 1
    return replies[0]


def files(reply: reflection_pb2.ServerReflectionResponse) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    found = {}
    for raw in reply.file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        found[proto.name] = proto
    return found


@pytest.mark.parametrize("package", VERSIONS)
async def test_both_versions_list_every_service(channel, package):
    reply = await ask(channel, package, list_services="")
    names = {s.name for s in reply.list_services_response.service}
    assert names == {
        "turnout.v1.RouterService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }


@pytest.mark.parametrize("package", VERSIONS)
async def test_both_versions_describe_the_router_service(channel, package):
    reply = await ask(channel, package, file_containing_symbol="turnout.v1.RouterService")
    router = files(reply)["turnout/v1/router.proto"]
    (service,) = router.service
    assert [m.name for m in service.method] == [
        "Route",
        "Generate",
        "GenerateStream",
        "ListModels",
        "GetBudgets",
    ]
    assert {"google/protobuf/duration.proto", "google/protobuf/struct.proto"} <= set(router.dependency)


async def test_v1_describes_itself_in_its_own_package(channel):
    reply = await ask(
        channel, "grpc.reflection.v1", file_containing_symbol="grpc.reflection.v1.ServerReflection"
    )
    v1 = files(reply)["grpc/reflection/v1/reflection.proto"]
    assert v1.package == "grpc.reflection.v1"
    (method,) = v1.service[0].method
    assert (method.input_type, method.output_type) == (
        ".grpc.reflection.v1.ServerReflectionRequest",
        ".grpc.reflection.v1.ServerReflectionResponse",
    )
    assert all(
        not f.type_name or f.type_name.startswith(".grpc.reflection.v1.")
        for m in v1.message_type
        for f in m.field
    )


async def test_an_unknown_symbol_is_a_not_found_error_response(channel):
    reply = await ask(channel, "grpc.reflection.v1", file_containing_symbol="no.such.Service")
    assert reply.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
