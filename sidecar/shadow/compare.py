"""Do two answers agree? Exact and JSON comparisons (pure), and the judge's prompt and verdict."""

from __future__ import annotations

import json
import re
from typing import Any

from sidecar.domain.request import ChatRequest, Message, Priority, Role, RoutingHints, TextPart

_SPACE = re.compile(r"\s+")


def normalized(text: str) -> str:
    """Case, runs of whitespace, surrounding quotes and a trailing full stop do not count."""
    text = _SPACE.sub(" ", text.strip()).casefold()
    return text.strip("\"'`").rstrip(".").strip()


def exact_match(a: str, b: str) -> bool:
    return normalized(a) == normalized(b)


def json_match(a: str, b: str) -> bool:
    """The same JSON value (key order and formatting aside); an answer that is not JSON never matches."""
    left, right = _json(a), _json(b)
    return left is not _NOT_JSON and right is not _NOT_JSON and left == right


_NOT_JSON = object()
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def _json(text: str) -> Any:
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


JUDGE_INSTRUCTIONS = (
    "You compare two answers to the same request. Reply with exactly one word: AGREE if the two "
    "answers are equivalent in substance for the person who asked (same facts, same decision, "
    "same label), or DISAGREE if they are not. Ignore style, length and wording."
)


def judge_request(request: ChatRequest, answer: str, reference: str) -> ChatRequest:
    """What the judge model is asked: the last user message and both answers, in a fixed order."""
    question = next((m.text for m in reversed(request.messages) if m.role is Role.USER), "")
    prompt = f"Request:\n{question}\n\nAnswer A:\n{answer}\n\nAnswer B:\n{reference}\n\nAGREE or DISAGREE?"
    return ChatRequest(
        messages=(
            Message(Role.SYSTEM, (TextPart(JUDGE_INSTRUCTIONS),)),
            Message(Role.USER, (TextPart(prompt),)),
        ),
        hints=RoutingHints(priority=Priority.BATCH),
        request_id=request.request_id,
        tenant_id=request.tenant_id,
    )


def judge_verdict(text: str) -> bool | None:
    """True for AGREE, False for DISAGREE, None if the judge said neither."""
    words = set(re.findall(r"[A-Z]+", text.upper()))
    if "DISAGREE" in words:
        return False
    if "AGREE" in words:
        return True
    return None
