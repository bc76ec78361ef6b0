"""Decode (and encode) the AWS event-stream binary framing that ConverseStream answers in; pure, no I/O.

A message on the wire, all integers big-endian:

    total length u32 | headers length u32 | prelude CRC32 (of the 8 bytes before it)
    headers: name length u8, name (UTF-8), value type u8, value (by type, see _FIXED and below)
    payload bytes
    message CRC32 (of everything before it)

The decoder is incremental: `feed` takes whatever bytes the socket gave and yields the messages
completed so far, keeping the rest. Both CRCs are checked; a bad CRC, an impossible length or a
header of an unknown type is MALFORMED_RESPONSE (the stream cannot be resynchronised after it).
`encode_message` is the inverse, for tests; the simulator has its own copy, since it shares no code
with the sidecar.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from sidecar.domain.outcome import FailureClass, ProviderError

HeaderValue = bool | int | bytes | str | uuid.UUID

PRELUDE_BYTES = 12
CRC_BYTES = 4
MIN_MESSAGE_BYTES = PRELUDE_BYTES + CRC_BYTES
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the service's own limit on one message
MAX_HEADERS_BYTES = 128 * 1024

TRUE, FALSE, BYTE, SHORT, INTEGER, LONG, BYTE_ARRAY, STRING, TIMESTAMP, UUID = range(10)
# Value types of a fixed width: struct format (signed, big-endian). Types 6 and 7 carry a u16 length;
# TRUE and FALSE carry nothing; a TIMESTAMP is milliseconds since the epoch; a UUID is 16 raw bytes.
_FIXED = {BYTE: ">b", SHORT: ">h", INTEGER: ">i", LONG: ">q", TIMESTAMP: ">q"}


@dataclass(frozen=True, slots=True)
class EventMessage:
    headers: Mapping[str, HeaderValue]
    payload: bytes

    def header(self, name: str) -> str:
        """A string header's value, or "" when absent or not a string."""
        value = self.headers.get(name)
        return value if isinstance(value, str) else ""

    @property
    def message_type(self) -> str:
        """`event`, `exception` or `error` (the framing's own error message)."""
        return self.header(":message-type")

    @property
    def event_type(self) -> str:
        return self.header(":event-type")

    @property
    def exception_type(self) -> str:
        return self.header(":exception-type")


@dataclass(slots=True)
class EventStreamDecoder:
    """Bytes in, whole messages out; `pending` is how many bytes of an unfinished message are held."""

    _buffer: bytearray = field(default_factory=bytearray)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> Iterator[EventMessage]:
        """Take `data` now; the messages it completes are decoded as the result is iterated.

        Lazily, so a reader that stops after the last message it wants (ConverseStream's `metadata`)
        never decodes, or fails on, whatever follows it in the same read.
        """
        self._buffer += data
        return self._messages()

    def _messages(self) -> Iterator[EventMessage]:
        while len(self._buffer) >= PRELUDE_BYTES:
            total, headers_len, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise _malformed("prelude CRC mismatch")
            if not MIN_MESSAGE_BYTES <= total <= MAX_MESSAGE_BYTES:
                raise _malformed(f"message length {total} out of range")
            if headers_len > min(total - MIN_MESSAGE_BYTES, MAX_HEADERS_BYTES):
                raise _malformed(f"headers length {headers_len} does not fit a {total}-byte message")
            if len(self._buffer) < total:
                return
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - CRC_BYTES)
            if zlib.crc32(frame[: total - CRC_BYTES]) != message_crc:
                raise _malformed("message CRC mismatch")
            headers_end = PRELUDE_BYTES + headers_len
            headers = _decode_headers(frame[PRELUDE_BYTES:headers_end])
            yield EventMessage(headers, frame[headers_end : total - CRC_BYTES])


def _decode_headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    at = 0
    try:
        while at < len(raw):
            name_len = raw[at]
            name = raw[at + 1 : at + 1 + name_len].decode()
            at += 1 + name_len
            kind = raw[at]
            at += 1
            value: HeaderValue
            if kind in (TRUE, FALSE):
                value = kind == TRUE
            elif kind in _FIXED:
                fmt = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, raw, at)
                at += struct.calcsize(fmt)
            elif kind in (BYTE_ARRAY, STRING):
                (size,) = struct.unpack_from(">H", raw, at)
                data = raw[at + 2 : at + 2 + size]
                if len(data) != size:
                    raise _malformed(f"header {name!r} runs past the headers")
                value = data.decode() if kind == STRING else data
                at += 2 + size
            elif kind == UUID:
                data = raw[at : at + 16]
                if len(data) != 16:
                    raise _malformed(f"header {name!r} runs past the headers")
                value = uuid.UUID(bytes=data)
                at += 16
            else:
                raise _malformed(f"header {name!r} has unknown value type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError):
        raise _malformed("truncated or undecodable headers") from None
    return headers


def encode_message(headers: Mapping[str, HeaderValue], payload: bytes) -> bytes:
    """One framed message. bool, str, bytes and UUID values map to their types; an int is a LONG."""
    raw = bytearray()
    for name, value in headers.items():
        encoded = name.encode()
        raw += struct.pack(">B", len(encoded)) + encoded
        if isinstance(value, bool):
            raw.append(TRUE if value else FALSE)
        elif isinstance(value, int):
            raw += struct.pack(">Bq", LONG, value)
        elif isinstance(value, str):
            data = value.encode()
            raw += struct.pack(">BH", STRING, len(data)) + data
        elif isinstance(value, bytes):
            raw += struct.pack(">BH", BYTE_ARRAY, len(value)) + value
        else:
            raw += struct.pack(">B", UUID) + value.bytes
    total = PRELUDE_BYTES + len(raw) + len(payload) + CRC_BYTES
    prelude = struct.pack(">II", total, len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + bytes(raw) + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _malformed(what: str) -> ProviderError:
    return ProviderError(FailureClass.MALFORMED_RESPONSE, f"not an AWS event stream: {what}")
