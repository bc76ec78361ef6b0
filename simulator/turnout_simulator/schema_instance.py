"""Build a JSON value that validates against a JSON Schema: structured outputs and tool arguments.

Covers what response_format and tool schemas use in practice: type (or a list of types), enum, const,
object properties/required/minProperties, array items/prefixItems/minItems/maxItems/uniqueItems,
string length and common formats, numeric bounds (inclusive and exclusive) and multipleOf, anyOf and
oneOf (the first branch), allOf (merged), and local $ref into $defs/definitions. `pattern` is not
honoured: generating strings from regular expressions is beyond a fake provider.
Optional properties are filled too, until MAX_DEPTH, past which only required ones are (this keeps
recursive schemas finite).
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Mapping
from typing import Any

from turnout_simulator.words import draw_words

MAX_DEPTH = 6
DEFAULT_SPAN = 100
FORMATS = {
    "date-time": "2025-01-15T09:30:00Z",
    "date": "2025-01-15",
    "time": "09:30:00Z",
    "email": "someone@example.com",
    "uri": "https://example.com/resource",
    "url": "https://example.com/resource",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}

Schema = Mapping[str, Any]


def instance_for(schema: Schema | bool, rng: random.Random) -> Any:
    """A value valid against `schema`, chosen with `rng` (same RNG state, same value)."""
    root = schema if isinstance(schema, Mapping) else {}
    return _Builder(root, rng).value(schema, 0)


class _Builder:
    def __init__(self, root: Schema, rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def value(self, schema: Schema | bool, depth: int) -> Any:
        if schema is True or schema is False:
            return None if schema is False else self._string({})
        schema = self._flatten(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self._rng.choice(list(schema["enum"]))
        kind = _pick_type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema)

    def _flatten(self, schema: Schema) -> Schema:
        """Resolve $ref, take the first branch of anyOf/oneOf and merge allOf into one plain schema."""
        for _ in range(32):  # bounded: a $ref cycle with no content must not loop forever
            if "$ref" in schema:
                rest = {key: val for key, val in schema.items() if key != "$ref"}
                schema = {**self._resolve(schema["$ref"]), **rest}
            elif schema.get("anyOf") or schema.get("oneOf"):
                key = "anyOf" if schema.get("anyOf") else "oneOf"
                rest = {k: v for k, v in schema.items() if k != key}
                schema = _merge(rest, schema[key][0])
            elif schema.get("allOf"):
                merged: Schema = {k: v for k, v in schema.items() if k != "allOf"}
                for part in schema["allOf"]:
                    merged = _merge(merged, part)
                schema = merged
            else:
                break
        return schema

    def _resolve(self, ref: str) -> Schema:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref is supported, not {ref!r}")
        target: Any = self._root
        for part in ref.lstrip("#").strip("/").split("/"):
            key = part.replace("~1", "/").replace("~0", "~")
            if part:
                target = target[int(key)] if isinstance(target, list) else target[key]
        return target if isinstance(target, Mapping) else {}

    def _object(self, schema: Schema, depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = list(schema.get("required", []))
        extra = schema.get("additionalProperties", {})
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required or depth < MAX_DEPTH:
                out[name] = self.value(sub, depth + 1)
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, Mapping) else {}, depth + 1)
        index = 0
        while len(out) < schema.get("minProperties", 0) and extra is not False:
            out[f"field_{index}"] = self.value(extra if isinstance(extra, Mapping) else {}, depth + 1)
            index += 1
        return out

    def _array(self, schema: Schema, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, 2)))
        prefix = list(schema.get("prefixItems", []))
        items = schema.get("items", {})
        if isinstance(items, list):  # draft-04 tuple form
            prefix, items = items, schema.get("additionalItems", {})
        count = min(low if depth >= MAX_DEPTH else max(low, min(high, 2)), high)
        if items is False:
            count = min(count, len(prefix))
        out = [self.value(sub, depth + 1) for sub in prefix[:count]]
        seen: set[str] = {repr(value) for value in out}
        attempts = 0
        while len(out) < count and attempts < count * 10 + 10:
            attempts += 1
            candidate = self.value(items if items is not False else {}, depth + 1)
            if schema.get("uniqueItems") and repr(candidate) in seen:
                continue
            seen.add(repr(candidate))
            out.append(candidate)
        return out

    def _string(self, schema: Schema) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            text = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        elif fmt in FORMATS:
            text = FORMATS[fmt]
        else:
            text = " ".join(draw_words(self._rng, self._rng.randint(1, 4)))
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text += "x" * (low - len(text))
        if high is not None and len(text) > int(high):
            text = text[: int(high)]
        return text

    def _integer(self, schema: Schema) -> int:
        low, high = _bounds(schema)
        lo = math.floor(low) + 1 if _exclusive(schema, "min") or low != math.floor(low) else int(low)
        hi = math.ceil(high) - 1 if _exclusive(schema, "max") or high != math.ceil(high) else int(high)
        step = schema.get("multipleOf")
        if step:
            first, last = math.ceil(lo / step), math.floor(hi / step)
            return int(self._rng.randint(first, max(first, last)) * step)
        return self._rng.randint(lo, max(lo, hi))

    def _number(self, schema: Schema) -> float:
        low, high = _bounds(schema)
        step = schema.get("multipleOf")
        if step:
            first = math.ceil(low / step) + (1 if _exclusive(schema, "min") and low % step == 0 else 0)
            last = math.floor(high / step) - (1 if _exclusive(schema, "max") and high % step == 0 else 0)
            return float(self._rng.randint(first, max(first, last)) * step)
        value = round(self._rng.uniform(low, high), 2)
        too_low = value < low or (_exclusive(schema, "min") and value == low)
        too_high = value > high or (_exclusive(schema, "max") and value == high)
        return (low + high) / 2 if too_low or too_high else value


def _pick_type(schema: Schema) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        concrete = [k for k in kind if k != "null"]
        return str(concrete[0]) if concrete else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "required" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema:
        return "array"
    if any(key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return "number"
    return "string"


def _bounds(schema: Schema) -> tuple[float, float]:
    """The numeric range, widened to DEFAULT_SPAN on an open side."""
    low = _limit(schema, "minimum", "exclusiveMinimum")
    high = _limit(schema, "maximum", "exclusiveMaximum")
    if low is None and high is None:
        return 0.0, float(DEFAULT_SPAN)
    if low is None:
        assert high is not None
        return high - DEFAULT_SPAN, high
    if high is None:
        return low, low + DEFAULT_SPAN
    return low, high


def _limit(schema: Schema, inclusive: str, exclusive: str) -> float | None:
    value = schema.get(exclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):  # draft-06+: a number
        return float(value)
    if inclusive in schema:
        return float(schema[inclusive])
    return None


def _exclusive(schema: Schema, side: str) -> bool:
    key = "exclusiveMinimum" if side == "min" else "exclusiveMaximum"
    value = schema.get(key)
    return value is True or (isinstance(value, int | float) and not isinstance(value, bool))


def _merge(base: Schema, extra: Schema | bool) -> Schema:
    """Shallow merge of two schemas; properties are united and required lists joined."""
    if not isinstance(extra, Mapping):
        return base
    merged = {**base, **extra}
    if "properties" in base and "properties" in extra:
        merged["properties"] = {**base["properties"], **extra["properties"]}
    if "required" in base and "required" in extra:
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged
