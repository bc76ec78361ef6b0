"""Decode a Server-Sent Events byte stream into events, incrementally and without I/O.

Follows the WHATWG "event stream interpretation" rules: lines end in CRLF, LF or a lone CR;
a blank line dispatches the event; `:` starts a comment; `data:` lines join with newlines.
Bytes are split into lines before decoding, so a UTF-8 character cut across two network chunks
is decoded whole (line terminators are ASCII and never occur inside a multi-byte character).
"""

from __future__ import annotations

from dataclasses import dataclass

_LF = 0x0A
_CR = 0x0D
_BOM = "\ufeff"

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
"""A line longer than this means a broken or hostile upstream, not a big answer."""


class SSEError(ValueError):
    """The byte stream cannot be an event stream (a line exceeded the size limit)."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str = ""  # the last event ID seen so far, as the spec defines it
    retry_ms: int | None = None  # the last reconnection time the server asked for


class SSEDecoder:
    """Feed bytes as they arrive; get back the events they complete.

    `close()` ends the stream: a final line cut short by a lone CR is processed, and an event
    without its closing blank line is dropped, as the spec requires.
    """

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max_line_bytes = max_line_bytes
        self._buf = bytearray()
        self._at_start = True
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self._retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._buf += chunk
        return self._drain(final=False)

    def close(self) -> list[SSEEvent]:
        events = self._drain(final=True)
        self._buf.clear()
        self._data.clear()
        self._event = ""
        return events

    def _drain(self, *, final: bool) -> list[SSEEvent]:
        buf = self._buf
        size = len(buf)
        events: list[SSEEvent] = []
        start = 0
        # Cached positions of the next LF / CR; -2 means "not searched yet", -1 "none left".
        lf = cr = -2
        while start < size:
            if -1 < lf < start or lf == -2:
                lf = buf.find(b"\n", start)
            if -1 < cr < start or cr == -2:
                cr = buf.find(b"\r", start)
            if lf == -1 and cr == -1:
                break
            if cr == -1 or (lf != -1 and lf < cr):
                end, after = lf, lf + 1
            elif cr + 1 < size:
                end, after = cr, cr + 2 if buf[cr + 1] == _LF else cr + 1
            elif final:
                end, after = cr, cr + 1
            else:
                break  # a CR at the very end: an LF may follow in the next chunk
            event = self._line(bytes(buf[start:end]))
            if event is not None:
                events.append(event)
            start = after
        del buf[:start]
        if len(buf) > self._max_line_bytes:
            raise SSEError(f"an event-stream line exceeded {self._max_line_bytes} bytes")
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", errors="replace")
        if self._at_start:
            self._at_start = False
            line = line.removeprefix(_BOM)
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry_ms = int(value)
        return None

    def _dispatch(self) -> SSEEvent | None:
        event_type, self._event = self._event or "message", ""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data.clear()
        return SSEEvent(data=data, event=event_type, id=self._last_id, retry_ms=self._retry_ms)
