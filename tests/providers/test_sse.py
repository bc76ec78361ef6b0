"""The SSE decoder: line endings, fields, comments, and every way a stream can be cut into chunks."""

from __future__ import annotations

import pytest

from sidecar.providers.sse import SSEDecoder, SSEError, SSEEvent


def decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


CASES: list[tuple[str, bytes, list[SSEEvent]]] = [
    ("lf", b"data: hello\n\n", [SSEEvent("hello")]),
    ("crlf", b"data: hello\r\n\r\n", [SSEEvent("hello")]),
    ("lone cr", b"data: hello\r\r", [SSEEvent("hello")]),
    ("two events", b"data: a\n\ndata: b\n\n", [SSEEvent("a"), SSEEvent("b")]),
    ("multi-line data", b"data: a\ndata: b\ndata:\n\n", [SSEEvent("a\nb\n")]),
    ("no space after colon", b"data:x\n\n", [SSEEvent("x")]),
    ("only one space stripped", b"data:  x\n\n", [SSEEvent(" x")]),
    ("value with colons", b'data: {"a": 1}\n\n', [SSEEvent('{"a": 1}')]),
    ("comment ignored", b": keep-alive\ndata: x\n\n", [SSEEvent("x")]),
    ("comment only", b": ping\n\n", []),
    ("event and id", b"event: error\nid: 7\ndata: x\n\n", [SSEEvent("x", event="error", id="7")]),
    ("id persists", b"id: 1\ndata: a\n\ndata: b\n\n", [SSEEvent("a", id="1"), SSEEvent("b", id="1")]),
    ("event type resets", b"event: e\ndata: a\n\ndata: b\n\n", [SSEEvent("a", event="e"), SSEEvent("b")]),
    ("id with NUL ignored", b"id: a\x00b\ndata: x\n\n", [SSEEvent("x")]),
    ("retry", b"retry: 1500\ndata: x\n\n", [SSEEvent("x", retry_ms=1500)]),
    ("bad retry ignored", b"retry: soon\ndata: x\n\n", [SSEEvent("x")]),
    ("unknown field ignored", b"foo: bar\ndata: x\n\n", [SSEEvent("x")]),
    ("field without colon", b"data\n\n", [SSEEvent("")]),
    ("blank lines without data", b"\n\n\nevent: x\n\n", []),
    ("bom stripped", b"\xef\xbb\xbfdata: x\n\n", [SSEEvent("x")]),
    ("unterminated event dropped", b"data: x\n", []),
    ("unterminated line dropped", b"data: x", []),
    ("utf-8", "data: héllo ✓\n\n".encode(), [SSEEvent("héllo ✓")]),
    ("invalid utf-8 replaced", b"data: \xff\n\n", [SSEEvent("\ufffd")]),
    ("done marker", b"data: [DONE]\n\n", [SSEEvent("[DONE]")]),
]


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_whole_stream(stream: bytes, expected: list[SSEEvent]) -> None:
    assert decode(stream) == expected


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_byte_by_byte(stream: bytes, expected: list[SSEEvent]) -> None:
    assert decode(*bytewise(stream)) == expected


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([b"da", b"ta: he", b"llo\n", b"\n"], [SSEEvent("hello")], id="field split"),
        pytest.param([b"data: a\r", b"\n\r", b"\n"], [SSEEvent("a")], id="crlf split after cr"),
        pytest.param([b"data: a\r", b"\r"], [SSEEvent("a")], id="lone cr split"),
        pytest.param(
            ["data: ✓\n\n".encode()[:7], "data: ✓\n\n".encode()[7:]], [SSEEvent("✓")], id="utf-8 split"
        ),
        pytest.param([b"data: a\n\ndata: b", b"\n\n"], [SSEEvent("a"), SSEEvent("b")], id="event split"),
    ],
)
def test_split_chunks(chunks: list[bytes], expected: list[SSEEvent]) -> None:
    assert decode(*chunks) == expected


def test_events_come_out_as_soon_as_they_are_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n") == [SSEEvent("a")]
    assert decoder.feed(b"\n") == [SSEEvent("b")]


def test_cr_at_end_of_chunk_waits_for_a_possible_lf() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\r") == []  # the CR could be the start of a CRLF
    assert decoder.feed(b"\n") == [SSEEvent("a")]


def test_close_treats_a_trailing_cr_as_a_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == []
    assert decoder.close() == [SSEEvent("a")]


def test_an_endless_line_is_refused() -> None:
    decoder = SSEDecoder(max_line_bytes=16)
    assert decoder.feed(b"data: short\n") == []
    with pytest.raises(SSEError, match="16 bytes"):
        decoder.feed(b"data: " + b"x" * 32)


def test_openai_style_stream() -> None:
    stream = b'data: {"a":1}\n\ndata: {"b":2}\n\n: comment\n\ndata: [DONE]\n\n'
    for chunks in ([stream], bytewise(stream), [stream[:13], stream[13:40], stream[40:]]):
        assert [e.data for e in decode(*chunks)] == ['{"a":1}', '{"b":2}', "[DONE]"]
