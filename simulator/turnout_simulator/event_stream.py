"""Frame messages in the AWS event-stream binary format, as Bedrock's ConverseStream sends them.

Each message: total length u32, headers length u32, CRC32 of those 8 bytes, the headers (name length
u8, name, value type u8, then for a string (type 7) a u16 length and UTF-8 bytes), the payload, and a
CRC32 of everything before it. The simulator only sends string headers. The sidecar has its own
decoder (providers/bedrock/eventstream.py): the simulator stands in for AWS and shares no code with it.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from typing import Any

STRING = 7
CONTENT_TYPE = "application/vnd.amazon.eventstream"


def encode_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    raw = bytearray()
    for name, value in headers.items():
        key, data = name.encode(), value.encode()
        raw += struct.pack(">B", len(key)) + key + struct.pack(">BH", STRING, len(data)) + data
    total = 12 + len(raw) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + bytes(raw) + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, payload: bytes) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, payload)


def exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, compact({"message": message}))


def compact(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()
