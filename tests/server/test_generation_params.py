"""GenerationParams from the wire to the domain: the penalties, and 0 meaning none."""

from __future__ import annotations

from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.convert_in import to_chat_request
from tests.server.helpers import generate_request


def test_penalties_reach_the_request_and_zero_is_none() -> None:
    params = pb.GenerationParams(frequency_penalty=0.5, presence_penalty=-1.5)
    converted = to_chat_request(generate_request(params=params)).params
    assert (converted.frequency_penalty, converted.presence_penalty) == (0.5, -1.5)
    zero = to_chat_request(generate_request(params=pb.GenerationParams(frequency_penalty=0.0))).params
    assert (zero.frequency_penalty, zero.presence_penalty) == (None, None)
