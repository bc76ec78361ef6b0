"""Structured output that is valid JSON but wrong: what a `bad_output` fault answers with.

The answer starts from a valid instance and breaks it the way models do: a property left out (the
first one whose absence the schema notices, so a required one), else a top-level value of a JSON type
the schema does not allow (an array where an object is expected, a number where a string is, ...).
Each candidate is checked with a JSON Schema validator, so the answer is known not to match; only a
schema that accepts any value (`{}`, `true`) cannot be broken, and then the answer is valid after all.
json_object, which asks for an object and nothing more, gets an array.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from turnout_simulator.schema_instance import instance_for
from turnout_simulator.words import draw_words


def invalid_instance(schema: Mapping[str, Any] | bool, rng: random.Random) -> Any:
    """A JSON value that does not validate against `schema` (unless the schema accepts anything)."""
    value = instance_for(schema, rng)
    candidates = [*_without_each_key(value), *_wrong_types(value)]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:  # nothing to check against: take the likeliest break
        return candidates[0]
    validator = Draft202012Validator(schema)
    return next((c for c in candidates if not validator.is_valid(c)), value)


def not_an_object(rng: random.Random) -> list[str]:
    """For json_object: valid JSON, but an array instead of the object the format requires."""
    return draw_words(rng, 3)


def _without_each_key(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        for missing in value:
            yield {key: item for key, item in value.items() if key != missing}


def _wrong_types(value: Any) -> Iterator[Any]:
    yield [value]
    yield {"value": value}
    yield "not what you asked for"
    yield 42
    yield True
    yield None
