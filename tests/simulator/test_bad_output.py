"""bad_output's JSON: always parseable, never valid against the schema it was asked for."""

from __future__ import annotations

import json
import random
from typing import Any

import jsonschema
import pytest
from turnout_simulator.bad_output import invalid_instance, not_an_object
from turnout_simulator.schema_instance import instance_for

from .test_schema_instance import SCHEMAS


@pytest.mark.parametrize("schema", SCHEMAS, ids=range(len(SCHEMAS)))
def test_invalid_instances_are_json_but_do_not_validate(schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    for seed in range(25):
        instance = invalid_instance(schema, random.Random(seed))
        assert json.loads(json.dumps(instance)) == instance
        assert not validator.is_valid(instance), f"seed {seed}: {instance!r} validates"


def test_a_required_property_goes_missing_first() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["age"],
    }

    assert invalid_instance(schema, random.Random(1)).keys() == {"name"}


def test_without_required_properties_the_type_is_wrong() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}

    assert isinstance(invalid_instance(schema, random.Random(1)), list)


@pytest.mark.parametrize("schema", [{}, True], ids=["empty", "true"])
def test_a_schema_that_accepts_anything_gets_the_ordinary_instance(schema: Any) -> None:
    # Nothing can break a schema that accepts everything: the answer is the instance a valid
    # answer would have been, not one of the wrong-type candidates.
    instance = invalid_instance(schema, random.Random(1))

    assert instance == instance_for(schema, random.Random(1))
    json.dumps(instance)


def test_an_invalid_schema_still_gets_a_broken_answer() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "minProperties": -1,
    }

    assert invalid_instance(schema, random.Random(1)) == {}


def test_json_object_gets_an_array() -> None:
    value = not_an_object(random.Random(1))

    assert isinstance(value, list)
    assert all(isinstance(word, str) for word in value)


def test_same_rng_state_same_invalid_instance() -> None:
    assert invalid_instance(SCHEMAS[-1], random.Random(4)) == invalid_instance(SCHEMAS[-1], random.Random(4))
