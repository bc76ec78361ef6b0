"""Turnout's Python client: route, generate and stream through the Turnout sidecar over gRPC.

    from turnout_client import Client, chat

    with Client("127.0.0.1:50051") as turnout:
        answer = turnout.generate(chat("Is this email spam? Win a prize now", task_type="classify"))
        print(answer.output.text, answer.model, format_usd(answer.cost_usd_nanos))

The messages are the generated protobuf classes, re-exported as `turnout_client.pb`.
"""

from turnout_client._client import AsyncClient, Client
from turnout_client._errors import FieldViolation, TurnoutError
from turnout_client._money import format_usd
from turnout_client._proto.turnout.v1 import router_pb2 as pb
from turnout_client._requests import as_request, chat, message

__version__ = "1.0.0"
__all__ = [
    "AsyncClient",
    "Client",
    "FieldViolation",
    "TurnoutError",
    "as_request",
    "chat",
    "format_usd",
    "message",
    "pb",
]
