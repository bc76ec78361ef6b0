"""Issue 20, finding 2: identifier-like request fields are bounded at validation.

They end up in the decision cache's keys, the plan's reasons and telemetry: 40 Route calls with an
8 MB task type kept 1.07 GB of RSS for the cache's TTL. Each bound gets INVALID_ARGUMENT naming the
field and the limit, and never echoes the value.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sidecar.domain.errors import InvalidRequest
from sidecar.server._proto.turnout.v1 import router_pb2 as pb
from sidecar.server.convert_in import MAX_NAME, MAX_NAMES, MAX_TOOLS, to_chat_request
from tests.server.helpers import details, generate_request, user, violated_fields

LONG = "x" * (MAX_NAME + 1)


async def test_an_8_mb_task_type_is_refused_naming_the_field_and_the_limit(stub, sidecar):
    request = pb.RouteRequest(messages=[user("hi")], hints=pb.RoutingHints(task_type="t" * (8 << 20)))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Route(request)
    error = info.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["hints.task_type"]
    (violation,) = details(error)["BadRequest"].field_violations
    assert violation.description == f"at most {MAX_NAME} characters (got 8,388,608)"
    assert len(error.details()) < 1000  # the value is never echoed
    assert (await stub.Route(pb.RouteRequest(messages=[user("hi")]))).decision.model  # still serving


def hints(**fields: Any) -> pb.GenerateRequest:
    return generate_request(hints=pb.RoutingHints(**fields))


@pytest.mark.parametrize(
    ("request_", "field", "says"),
    [
        (hints(task_type=LONG), "hints.task_type", f"at most {MAX_NAME} characters"),
        (hints(user_tier=LONG), "hints.user_tier", f"at most {MAX_NAME} characters"),
        (hints(route=LONG), "hints.route", f"at most {MAX_NAME} characters"),
        (hints(pinned_model=LONG), "hints.pinned_model", f"at most {MAX_NAME} characters"),
        (hints(tags=["ok", LONG]), "hints.tags[1]", f"at most {MAX_NAME} characters"),
        (hints(tags=[f"t{i}" for i in range(MAX_NAMES + 1)]), "hints.tags", f"at most {MAX_NAMES} entries"),
        (hints(allowed_models=[LONG]), "hints.allowed_models[0]", f"at most {MAX_NAME} characters"),
        (hints(denied_providers=[LONG]), "hints.denied_providers[0]", f"at most {MAX_NAME} characters"),
        (generate_request(labels={"team": LONG}), 'labels["team"]', f"at most {MAX_NAME} characters"),
        (generate_request(labels={LONG: "v"}), "labels", f"label keys are at most {MAX_NAME} characters"),
        (
            generate_request(labels={f"k{i}": "v" for i in range(MAX_NAMES + 1)}),
            "labels",
            f"at most {MAX_NAMES} labels",
        ),
        (generate_request(tenant_id=LONG), "tenant_id", f"at most {MAX_NAME} characters"),
        (
            pb.GenerateRequest(
                messages=[pb.Message(role=pb.ROLE_USER, name=LONG, content=[pb.ContentPart(text="a")])]
            ),
            "messages[0].name",
            f"at most {MAX_NAME} characters",
        ),
        (
            pb.GenerateRequest(
                messages=[
                    user("a"),
                    pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[pb.ToolCall(id=LONG, name="f")]),
                ]
            ),
            "messages[1].tool_calls[0].id",
            f"at most {MAX_NAME} characters",
        ),
        (
            generate_request(
                tools=[pb.Tool(name="f")],
                tool_choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name=LONG),
            ),
            "tool_choice.function_name",
            f"at most {MAX_NAME} characters",
        ),
        (
            generate_request(tools=[pb.Tool(name=f"f{i}") for i in range(MAX_TOOLS + 1)]),
            "tools",
            f"at most {MAX_TOOLS} tools",
        ),
    ],
)
def test_identifier_fields_are_bounded(request_, field, says):
    with pytest.raises(InvalidRequest) as info:
        to_chat_request(request_)
    found = {v.field: v.description for v in info.value.violations}
    assert field in found, found
    assert says in found[field]
    assert LONG not in found[field]


def test_names_at_the_limit_are_fine():
    request = hints(task_type="x" * MAX_NAME, tags=[f"t{i}" for i in range(MAX_NAMES)])
    assert len(to_chat_request(request).hints.tags) == MAX_NAMES
