"""Do several answers to one request agree? The comparison a consensus stage accepts an answer on.

Each kind reduces an answer to the part that must match, or None when the answer has no such part
(a refusal, prose instead of a choice): an answer without one never agrees with anything.

    choice   the choice letter: "B", "(B)", "B) house", "The answer is B"
    number   the last number, thousands separators removed: "so 1,250 apples" -> 1250
    text     the whole answer, case-folded, whitespace collapsed, end punctuation dropped
    json     the JSON value (a fenced block's if fenced), compared as data: key order and spacing
             do not matter
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

KINDS = ("choice", "number", "text", "json")

# A letter alone, bracketed, or followed by ) . : , -- not the first word of a sentence ("I do", "A cat").
_CHOICE = re.compile(r"^\s*(?:[\(\[]([A-J])[\)\]]|([A-J])(?:[\)\.:,]|\s*$))")
_ANSWER_IS = re.compile(r"answer is:?\s*\(?([A-J])\b", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_FENCE = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def choice(text: str) -> str | None:
    found = _CHOICE.match(text)
    if found:
        return found.group(1) or found.group(2)
    said = _ANSWER_IS.search(text)
    return said.group(1).upper() if said else None


def number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        value = Decimal(found[-1].replace(",", ""))
    except InvalidOperation:
        return None
    return format(value.normalize(), "f")  # 2.50 and 2.5 agree; "-0" reads as "0"


def text(answer: str) -> str | None:
    norm = " ".join(answer.casefold().split()).rstrip(".!?;:, ")
    return norm or None


def json_value(answer: str) -> str | None:
    fenced = _FENCE.search(answer)
    try:
        value = json.loads(fenced.group(1) if fenced else answer)
    except ValueError:
        return None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


NORMALISERS: dict[str, Callable[[str], str | None]] = {
    "choice": choice,
    "number": number,
    "text": text,
    "json": json_value,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    accepted: int | None  # index of the answer to return (the first of the agreeing group), or None
    reason: str  # for the decision and the attempts, e.g. "2 of 2 agreed on 'B'"


def tally(answers: Sequence[tuple[str, str | None]], kind: str, need: int) -> Verdict:
    """`answers` are (voter, its answer text or None when it failed), in preference order.

    Accepts when at least `need` normalised answers are equal; the accepted answer is the first
    voter's of that group (the cheapest, in a cascade's order).
    """
    normalise = NORMALISERS[kind]
    keys = [normalise(a) if a is not None else None for _, a in answers]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(i)
    best = max(groups.items(), key=lambda kv: len(kv[1]), default=None)
    if best is not None and len(best[1]) >= need:
        return Verdict(best[1][0], f"{len(best[1])} of {len(answers)} agreed on {_show(best[0])}")
    parts = [
        f"{_show(k)} ({answers[i][0]})"
        if k is not None
        else f"{'no answer' if answers[i][1] is None else 'no ' + kind} ({answers[i][0]})"
        for i, k in enumerate(keys)
    ]
    return Verdict(None, f"fewer than {need} agreed: " + " vs ".join(parts))


def _show(key: str, limit: int = 40) -> str:
    return repr(key if len(key) <= limit else key[: limit - 3] + "...")
