"""The AWS event-stream decoder: every header type, any split of the bytes, and broken frames."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from turnout_simulator import event_stream as sim_event_stream

from sidecar.domain.outcome import FailureClass, ProviderError
from sidecar.providers.bedrock.eventstream import (
    EventMessage,
    EventStreamDecoder,
    HeaderValue,
    encode_message,
)

EVENT_HEADERS: dict[str, HeaderValue] = {
    ":event-type": "contentBlockDelta",
    ":content-type": "application/json",
    ":message-type": "event",
}
PAYLOAD = b'{"contentBlockIndex":0,"delta":{"text":"Hello"},"p":"abcd"}'
GOOD = encode_message(EVENT_HEADERS, PAYLOAD)


def frame(headers: bytes, payload: bytes) -> bytes:
    """A message built by hand from raw header bytes, independently of encode_message."""
    total = 12 + len(headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(headers))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers + payload
    return body + struct.pack(">I", zlib.crc32(body))


def header(name: str, kind: int, value: bytes) -> bytes:
    return bytes([len(name)]) + name.encode() + bytes([kind]) + value


ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (header("t", 0, b""), True),
        (header("f", 1, b""), False),
        (header("b", 2, b"\xff"), -1),
        (header("s", 3, struct.pack(">h", -2)), -2),
        (header("i", 4, struct.pack(">i", 70000)), 70000),
        (header("l", 5, struct.pack(">q", 2**40)), 2**40),
        (header("a", 6, struct.pack(">H", 3) + b"\x00\x01\x02"), b"\x00\x01\x02"),
        (header("str", 7, struct.pack(">H", 4) + "héj".encode()), "héj"),
        (header("ts", 8, struct.pack(">q", 1_700_000_000_000)), 1_700_000_000_000),
        (header("u", 9, ID.bytes), ID),
    ],
)
def test_each_header_type(raw: bytes, expected: HeaderValue) -> None:
    (message,) = EventStreamDecoder().feed(frame(raw, b"{}"))
    assert list(message.headers.values()) == [expected]
    assert message.payload == b"{}"


def test_named_headers() -> None:
    (message,) = EventStreamDecoder().feed(encode_message(EVENT_HEADERS, PAYLOAD))
    assert message == EventMessage(EVENT_HEADERS, PAYLOAD)
    assert (message.event_type, message.message_type, message.exception_type) == (
        "contentBlockDelta",
        "event",
        "",
    )


@pytest.mark.parametrize("step", [1, 2, 3, 7, 12, 13, 50, 10_000])
def test_any_split_of_the_bytes(step: int) -> None:
    messages = [
        encode_message(EVENT_HEADERS, PAYLOAD),
        encode_message(
            {":message-type": "event", ":event-type": "messageStop"}, b'{"stopReason":"end_turn"}'
        ),
        encode_message({}, b""),
    ]
    wire = b"".join(messages)
    decoder = EventStreamDecoder()
    out: list[EventMessage] = []
    for at in range(0, len(wire), step):
        out += decoder.feed(wire[at : at + step])
    assert [m.event_type for m in out] == ["contentBlockDelta", "messageStop", ""]
    assert out[0].payload == PAYLOAD
    assert decoder.pending == 0


def test_an_unfinished_message_is_held() -> None:
    wire = encode_message(EVENT_HEADERS, PAYLOAD)
    decoder = EventStreamDecoder()
    assert list(decoder.feed(wire[:-1])) == []
    assert decoder.pending == len(wire) - 1
    assert len(list(decoder.feed(wire[-1:]))) == 1


def test_decoding_is_lazy_so_a_reader_can_stop_before_garbage() -> None:
    messages = EventStreamDecoder().feed(GOOD + b"garbage, not a frame at all")
    assert next(messages).event_type == "contentBlockDelta"


def test_round_trip_of_every_encodable_type() -> None:
    headers: dict[str, HeaderValue] = {"yes": True, "no": False, "n": -5, "raw": b"\x00", "s": "x", "id": ID}
    (message,) = EventStreamDecoder().feed(encode_message(headers, b"payload"))
    assert message.headers == headers


def test_the_simulators_encoder_frames_the_same_bytes() -> None:
    headers = {":event-type": "metadata", ":message-type": "event"}
    assert sim_event_stream.encode_message(headers, PAYLOAD) == encode_message(headers, PAYLOAD)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


@pytest.mark.parametrize(
    ("wire", "says"),
    [
        (_flip(GOOD, 9), "prelude CRC"),  # the prelude's CRC itself
        (_flip(GOOD, 1), "prelude CRC"),  # the total length, caught by the prelude CRC
        (_flip(GOOD, len(GOOD) - 1), "message CRC"),
        (_flip(GOOD, 20), "message CRC"),  # a header byte
        (_flip(GOOD, len(GOOD) - 10), "message CRC"),  # a payload byte
        (frame(b"", b"")[:4] + b"", None),  # too short to judge: held, not an error
        (frame(header("x", 42, b""), b""), "unknown value type 42"),
        (frame(header("x", 7, struct.pack(">H", 99) + b"ab"), b""), "runs past"),
        (frame(b"\x05ab", b""), "truncated"),
    ],
)
def test_broken_frames_are_malformed(wire: bytes, says: str | None) -> None:
    decoder = EventStreamDecoder()
    if says is None:
        assert list(decoder.feed(wire)) == []
        return
    with pytest.raises(ProviderError) as info:
        list(decoder.feed(wire))
    assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE
    assert says in info.value.message


def test_impossible_lengths_are_malformed() -> None:
    for total, headers_len in ((8, 0), (17 * 1024 * 1024, 0), (40, 30)):
        prelude = struct.pack(">II", total, headers_len)
        with pytest.raises(ProviderError) as info:
            list(EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude))))
        assert info.value.failure_class is FailureClass.MALFORMED_RESPONSE
