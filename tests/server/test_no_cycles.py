"""Issue 20 (the soak's RSS growth): a failed call leaves no reference cycle behind.

A cycle is freed only by a garbage collection of its generation, and one that lives long enough to
reach the oldest generation waits for a full collection, which under load comes every several
minutes: the 60-minute soak saw RSS climb ~10 MB and drop back every ~10 minutes. Each failed call
made such cycles: the failure's exception chain held tracebacks whose frames held the exception
again (a local `error`), and `context.abort` left an AbortError in grpc's call state whose
traceback held the handler's frame, which held the context. The whole request hung off both.

Here the collector is off while calls fail, then one collection saves what it would have freed
(DEBUG_SAVEALL): none of it may be the sidecar's frames, exceptions or plans.
"""

from __future__ import annotations

import gc
import types
from collections import Counter
from collections.abc import Iterator

import grpc
import pytest

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from tests.conftest import inject_fault
from tests.server.helpers import generate_request, user


def owned(obj: object) -> str | None:
    """A name for a garbage object of the sidecar's request path, else None. The provider simulator
    runs in this process too; its own objects are not the sidecar's."""
    if isinstance(obj, types.FrameType):
        where = obj.f_code.co_filename
        ours = "/sidecar/" in where and "/simulator/turnout_simulator/" not in where
        return f"frame {obj.f_code.co_name}" if ours else None
    kind = type(obj)
    if kind.__module__.startswith("sidecar.") and not kind.__module__.startswith("turnout_simulator"):
        return kind.__name__
    if kind.__name__ == "AbortError":
        return "AbortError"
    return None


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def garbage_of_ours() -> Counter[str]:
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    found = Counter(name for obj in gc.garbage if (name := owned(obj)) is not None)
    gc.set_debug(0)
    gc.garbage.clear()
    return found


async def test_failed_calls_leave_no_cycles(stub, simulator, collector_off):
    await inject_fault(simulator, model="*", kind="server_error", rate=1.0)
    for i in range(11):
        if i == 1:  # what the first calls build once (adapters, breakers, caches) is not per call
            gc.collect()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Generate(generate_request(f"fails {i}"))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Generate(pb.GenerateRequest())  # INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Route(pb.RouteRequest(messages=[user("x")], hints=pb.RoutingHints(route="nope")))
    assert garbage_of_ours() == Counter()


async def test_streams_cut_mid_way_leave_no_cycles(stub, simulator, collector_off):
    await inject_fault(simulator, model="*", kind="stream_cut", rate=1.0, after_chunks=3)
    for i in range(11):
        if i == 1:
            gc.collect()
        call = stub.GenerateStream(pb.GenerateStreamRequest(messages=[user(f"cut {i}")]))
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    assert garbage_of_ours() == Counter()
