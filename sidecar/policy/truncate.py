"""Make a conversation fit a token budget: pure functions over messages, for routes that truncate.

What is always kept: every system message, and the last user message with everything after it.
What goes, in units that keep an assistant's tool calls together with the tool results answering
them (a call without its result, or a result without its call, is an invalid conversation):

- `drop_oldest` removes the oldest units first. If the kept messages alone are over, it gives up.
- `trim_middle` keeps the first unit (it usually states the task) and the most recent ones, and
  removes units from the middle, oldest first. If the kept messages are still over, it cuts the
  middle out of the longest text part, then the next longest, leaving head and tail around a marker
  `[... 1,234 tokens trimmed ...]`; a part may shrink to the marker alone.

The budget is for the messages as `tokens.count_messages` counts them (framing and primed reply
included); the caller leaves out the output room, tool definitions and response schema. `fits` is
False when even that is not enough: the caller then rejects the request with a clear error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from sidecar.domain.request import Message, Role, TextPart
from sidecar.policy.tokens import REPLY_PRIMING, TokenCounter, count_message

Strategy = Literal["drop_oldest", "trim_middle"]

SNAP_CHARS = 64
"""A cut moves up to this far to land on whitespace rather than mid-word."""


@dataclass(frozen=True, slots=True)
class Truncation:
    messages: tuple[Message, ...]
    dropped_messages: int
    removed_tokens: int  # the tokens of the dropped messages and trimmed text (markers deducted)
    strategy: Strategy
    fits: bool


def truncate(
    messages: tuple[Message, ...], budget_tokens: int, counter: TokenCounter, strategy: Strategy
) -> Truncation:
    sizes = [count_message(m, counter) for m in messages]
    original = REPLY_PRIMING + sum(sizes)
    if original <= budget_tokens:
        return Truncation(messages, 0, 0, strategy, fits=True)

    units, protected_from = _units(messages)
    droppable = units[:protected_from]
    if strategy == "trim_middle":
        droppable = droppable[1:]  # the first turn stays
    total = original
    dropped: set[int] = set()
    for unit in droppable:
        if total <= budget_tokens:
            break
        dropped.update(unit)
        total -= sum(sizes[i] for i in unit)
    kept = [m for i, m in enumerate(messages) if i not in dropped]

    if total > budget_tokens and strategy == "trim_middle":
        kept, total = _trim_longest_parts(kept, total - budget_tokens, counter, total)
    return Truncation(tuple(kept), len(dropped), original - total, strategy, fits=total <= budget_tokens)


def _units(messages: tuple[Message, ...]) -> tuple[list[list[int]], int]:
    """Non-system message indexes in units that may only go together, and the first protected unit.

    A unit is one message, or an assistant message with tool calls followed by the tool results
    answering them. The protected units are the one holding the last user message and every later
    one (without a user message: the last unit).
    """
    units: list[list[int]] = []
    call_ids: set[str] | None = None  # the open unit's tool-call ids, if it is a call group
    for i, m in enumerate(messages):
        if m.role is Role.SYSTEM:
            continue
        answers_open_call = call_ids is not None and (not m.tool_call_id or m.tool_call_id in call_ids)
        if m.role is Role.TOOL and answers_open_call:
            units[-1].append(i)
            continue
        units.append([i])
        call_ids = {c.id for c in m.tool_calls} if m.role is Role.ASSISTANT and m.tool_calls else None
    last_user = max((i for i, m in enumerate(messages) if m.role is Role.USER), default=None)
    if last_user is None:
        return units, max(len(units) - 1, 0)
    protected_from = next(k for k, unit in enumerate(units) if unit[-1] >= last_user)
    return units, protected_from


def _trim_longest_parts(
    kept: list[Message], excess: int, counter: TokenCounter, total: int
) -> tuple[list[Message], int]:
    """Cut the middles of the longest text parts, longest first, until `excess` tokens are gone."""
    parts = [
        (counter.count(p.text), i, j, p)
        for i, m in enumerate(kept)
        for j, p in enumerate(m.content)
        if isinstance(p, TextPart) and p.text
    ]
    for tokens, i, j, part in sorted(parts, key=lambda t: -t[0]):
        if excess <= 0:
            break
        text, new_tokens = _cut_middle(part.text, tokens, max(tokens - excess, 0), counter)
        if new_tokens >= tokens:
            continue  # too short for a marker to save anything
        content = list(kept[i].content)
        content[j] = TextPart(text)
        kept[i] = replace(kept[i], content=tuple(content))
        excess -= tokens - new_tokens
        total -= tokens - new_tokens
    return kept, total


def _cut_middle(text: str, tokens: int, target: int, counter: TokenCounter) -> tuple[str, int]:
    """`text` with its middle replaced by a marker so that it counts at most `target` tokens, if it can.

    The counter only counts, so the cut is found by characters: first in proportion to the tokens
    to keep, then narrowed by the overshoot until the result fits (a few rounds at most).
    """
    keep = math.floor(len(text) * target / tokens) if tokens else 0
    best = (text, tokens)
    for _ in range(12):
        head_end, tail_start = _snap(text, keep // 2, len(text) - (keep - keep // 2))
        marker = f"[... {counter.count(text[head_end:tail_start]):,} tokens trimmed ...]"
        cut = f"{text[:head_end]}\n{marker}\n{text[tail_start:]}"
        n = counter.count(cut)
        if n < best[1]:
            best = (cut, n)
        if n <= target or keep == 0:
            break
        over = n - target
        keep = max(0, keep - math.ceil(over * len(text) / tokens) - 1)
    return best


def _snap(text: str, head_end: int, tail_start: int) -> tuple[int, int]:
    """Move the head's end back and the tail's start forward to nearby whitespace (never widening)."""
    low = max(0, head_end - SNAP_CHARS)
    space = max(text.rfind(" ", low, head_end), text.rfind("\n", low, head_end))
    if space > 0:
        head_end = space
    high = min(len(text), tail_start + SNAP_CHARS)
    spaces = [k for k in (text.find(" ", tail_start, high), text.find("\n", tail_start, high)) if k >= 0]
    if spaces:
        tail_start = min(spaces) + 1
    return head_end, max(head_end, tail_start)
