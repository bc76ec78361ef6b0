"""Server reflection, both `grpc.reflection.v1` and the older `grpc.reflection.v1alpha`.

grpcio-reflection ships only v1alpha, and tools that speak only v1 (newer grpcurl, Postman, buf
curl, grpc-java's and grpc-go's own v1 clients) fail against it. The two versions are the same
protocol: v1 was v1alpha renamed, with identical messages and field numbers. So v1 is served here by
the same servicer, its messages read and written with the v1alpha classes (the bytes are the same),
and v1's file descriptor is v1alpha's with the package renamed, so that a client can also describe
the v1 service itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2
from grpc_reflection.v1alpha._async import ReflectionServicer

V1ALPHA = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
V1_PACKAGE = "grpc.reflection.v1"
V1 = f"{V1_PACKAGE}.ServerReflection"
V1_FILE = "grpc/reflection/v1/reflection.proto"


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection for `service_names` and for both reflection services, under both names."""
    _add_v1_descriptor(descriptor_pool.Default())
    servicer = ReflectionServicer((*service_names, V1ALPHA, V1))
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    for name in (V1ALPHA, V1):
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler}),)
        )


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """v1alpha's reflection.proto with the package renamed, once per pool."""
    try:
        pool.FindFileByName(V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    prefix = f".{proto.package}."

    def renamed(type_name: str) -> str:
        if not type_name.startswith(prefix):
            return type_name  # another package's type
        return f".{V1_PACKAGE}.{type_name.removeprefix(prefix)}"

    proto.name = V1_FILE
    proto.package = V1_PACKAGE
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):  # set only on message and enum fields
                field.type_name = renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = renamed(method.input_type)
            method.output_type = renamed(method.output_type)
    proto.ClearField("options")  # v1alpha's options name its own Java/C# packages
    pool.AddSerializedFile(proto.SerializeToString())
