"""Hypothesis strategies for any protobuf message, built from its descriptor.

Every field may be set or not, to any value its type allows: integers at their extremes, floats
with NaN and Infinity, enum numbers the schema does not name (proto3 keeps them), text from all
of Unicode, Struct values of any JSON shape (and NaN), Durations out of protobuf's own range.
Nesting is bounded so one example stays small.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, duration_pb2, struct_pb2
from google.protobuf.message import Message
from hypothesis import strategies as st

FD = descriptor.FieldDescriptor
_INTS = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}
# Short text mostly, with the names the config knows (so routes and models are found sometimes)
# and now and then a long string (identifier bounds, echoed values).
_KNOWN = [
    "gpt-4o-mini",
    "claude-3-5-haiku",
    "gemini-2.5-flash",
    "llama-3.1-8b-instant",
    "default",
    "support-chat",
    "classify",
    "free",
    "pro",
    "image/png",
    "data:image/png;base64,iVBORw0KGgo=",
    "https://example.com/a.png",
]
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(_KNOWN),
    st.text(alphabet=" \t\n", max_size=3),
    st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(250, 3000)),
)


def _int(lo: int, hi: int) -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(-3, 3).filter(lambda i: lo <= i <= hi), st.integers(lo, hi), st.sampled_from([lo, hi])
    )


def _json(depth: int) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(2**53), 2**53).map(float),
        _TEXT,
        st.sampled_from(["object", "string", "number", "array", "^a+$", "(?<=a)b", "[", "#/$defs/x"]),
    )
    if depth <= 0:
        return leaves
    keys = st.one_of(
        st.text(max_size=8),
        st.sampled_from(["type", "properties", "required", "pattern", "items", "enum", "$ref", "minimum"]),
    )
    return st.one_of(
        leaves,
        st.lists(_json(depth - 1), max_size=3),
        st.dictionaries(keys, _json(depth - 1), max_size=4),
    )


def _struct(depth: int) -> st.SearchStrategy[struct_pb2.Struct]:
    def build(values: dict[str, Any]) -> struct_pb2.Struct:
        s = struct_pb2.Struct()
        s.update(values)
        return s

    keys = st.one_of(st.text(max_size=8), st.sampled_from(["type", "properties", "pattern", "maximum"]))
    return st.dictionaries(keys, _json(depth), max_size=4).map(build)


def _duration() -> st.SearchStrategy[duration_pb2.Duration]:
    return st.builds(
        lambda s, n: duration_pb2.Duration(seconds=s, nanos=n),
        _int(-(2**63), 2**63 - 1),
        _int(-(2**31), 2**31 - 1),
    )


def _scalar(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    t = field.type
    if t in _INTS:
        return _int(*_INTS[t])
    if t == FD.TYPE_BOOL:
        return st.booleans()
    if t == FD.TYPE_DOUBLE:
        return st.floats(allow_nan=True, allow_infinity=True)
    if t == FD.TYPE_FLOAT:
        return st.floats(width=32, allow_nan=True, allow_infinity=True)
    if t == FD.TYPE_STRING:
        return _TEXT
    if t == FD.TYPE_BYTES:
        return st.binary(max_size=16)
    if t == FD.TYPE_ENUM:
        named = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(named), _int(-(2**31), 2**31 - 1))
    assert t == FD.TYPE_MESSAGE
    return messages(field.message_type, depth - 1)


def messages(desc: descriptor.Descriptor, depth: int = 3) -> st.SearchStrategy[Message]:
    """Any message of type `desc`, nested at most `depth` messages deep."""
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Struct":
        return _struct(2)
    if desc.full_name == "google.protobuf.Duration":
        return _duration()
    if depth < 0:
        return st.just(cls())
    fields = [f for f in desc.fields if not (f.message_type and f.message_type.GetOptions().map_entry)]
    maps = [f for f in desc.fields if f.message_type and f.message_type.GetOptions().map_entry]

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for f in fields:
            if not draw(st.booleans()):
                continue
            if f.is_repeated:
                getattr(msg, f.name).extend(draw(st.lists(_scalar(f, depth), max_size=3)))
            elif f.type == FD.TYPE_MESSAGE:
                getattr(msg, f.name).CopyFrom(draw(_scalar(f, depth)))
            else:
                setattr(msg, f.name, draw(_scalar(f, depth)))
        for f in maps:
            if draw(st.booleans()):
                key_field = f.message_type.fields_by_name["key"]
                value_field = f.message_type.fields_by_name["value"]
                entries = draw(
                    st.dictionaries(_scalar(key_field, depth), _scalar(value_field, depth), max_size=3)
                )
                getattr(msg, f.name).update(entries)
        return msg

    return build()
