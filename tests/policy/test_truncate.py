"""Truncation to a token budget: what is kept, what goes together, markers, and when it cannot fit."""

from __future__ import annotations

import re

import pytest

from sidecar.domain.request import ImagePart, Message, Role, TextPart, ToolCall
from sidecar.policy.tokens import PER_MESSAGE, REPLY_PRIMING, count_messages, counter_named
from sidecar.policy.truncate import Truncation, truncate

MARKER = re.compile(r"\[\.\.\. [\d,]+ tokens trimmed \.\.\.\]")


class Words:
    """A test double: one token per whitespace-separated word."""

    name = "words"

    def count(self, text: str) -> int:
        return len(text.split())


WORDS = Words()


def msg(role: Role, label: str, words: int = 9) -> Message:
    return Message(role, (TextPart(" ".join([label, *(["w"] * words)])),))


def S(label: str, words: int = 9) -> Message:
    return msg(Role.SYSTEM, label, words)


def U(label: str, words: int = 9) -> Message:
    return msg(Role.USER, label, words)


def A(label: str, words: int = 9) -> Message:
    return msg(Role.ASSISTANT, label, words)


def CALL(*ids: str) -> Message:
    return Message(Role.ASSISTANT, tool_calls=tuple(ToolCall(i, "lookup", '{"q": "x"}') for i in ids))


def RESULT(call_id: str, words: int = 9) -> Message:
    return Message(Role.TOOL, (TextPart(" ".join([f"R{call_id}", *(["w"] * words)])),), tool_call_id=call_id)


def label(m: Message) -> str:
    if m.tool_calls:
        return "call:" + ",".join(c.id for c in m.tool_calls)
    return m.text.split()[0] if m.text else ""


MSG = PER_MESSAGE + 10  # a default message: framing + label + 9 words
CONVERSATION = (S("S"), U("U1"), A("A1"), U("U2"), A("A2"), U("U3"), A("A3"), U("ULAST"))
FULL = REPLY_PRIMING + 8 * MSG

CASES = [
    # (id, messages, budget, strategy, kept labels, dropped, fits)
    (
        "fits already",
        CONVERSATION,
        FULL,
        "drop_oldest",
        ["S", "U1", "A1", "U2", "A2", "U3", "A3", "ULAST"],
        0,
        True,
    ),
    (
        "oldest first",
        CONVERSATION,
        FULL - MSG,
        "drop_oldest",
        ["S", "A1", "U2", "A2", "U3", "A3", "ULAST"],
        1,
        True,
    ),
    (
        "oldest two",
        CONVERSATION,
        FULL - 2 * MSG,
        "drop_oldest",
        ["S", "U2", "A2", "U3", "A3", "ULAST"],
        2,
        True,
    ),
    ("only what is kept", CONVERSATION, REPLY_PRIMING + 2 * MSG, "drop_oldest", ["S", "ULAST"], 6, True),
    (
        "kept alone too big",
        CONVERSATION,
        REPLY_PRIMING + 2 * MSG - 1,
        "drop_oldest",
        ["S", "ULAST"],
        6,
        False,
    ),
    (
        "tool calls go with their results",
        (S("S"), U("U1"), CALL("c1", "c2"), RESULT("c1"), RESULT("c2"), A("A1"), U("ULAST")),
        FULL - 5 * MSG,  # dropping U1 is not enough, and the call may not go without its results
        "drop_oldest",
        ["S", "A1", "ULAST"],
        4,
        True,
    ),
    (
        "every system message stays",
        (S("S1"), U("U1"), S("S2"), A("A1"), U("ULAST")),
        REPLY_PRIMING + 3 * MSG,
        "drop_oldest",
        ["S1", "S2", "ULAST"],
        2,
        True,
    ),
    (
        "what follows the last user message stays",
        (S("S"), U("U1"), A("A1"), U("ULAST"), CALL("c9"), RESULT("c9")),
        count_messages((S("S"), U("ULAST"), CALL("c9"), RESULT("c9")), WORDS),
        "drop_oldest",
        ["S", "ULAST", "call:c9", "Rc9"],
        2,
        True,
    ),
    (
        "an agent loop in progress is never split",
        (S("S"), U("U1"), A("A1"), U("ULAST"), CALL("c9"), RESULT("c9")),
        count_messages((S("S"), U("ULAST"), CALL("c9"), RESULT("c9")), WORDS) - 1,
        "drop_oldest",
        ["S", "ULAST", "call:c9", "Rc9"],
        2,
        False,
    ),
    (
        "middle first",
        CONVERSATION,
        FULL - 2 * MSG,
        "trim_middle",
        ["S", "U1", "A2", "U3", "A3", "ULAST"],
        2,
        True,
    ),
    (
        "first turn and last stay",
        CONVERSATION,
        REPLY_PRIMING + 3 * MSG,
        "trim_middle",
        ["S", "U1", "ULAST"],
        5,
        True,
    ),
]


@pytest.mark.parametrize(
    ("messages", "budget", "strategy", "kept", "dropped", "fits"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_truncation_table(messages, budget, strategy, kept, dropped, fits):
    cut = truncate(messages, budget, WORDS, strategy)
    assert [label(m) for m in cut.messages] == kept
    assert cut.dropped_messages == dropped
    assert cut.strategy == strategy
    assert cut.fits is (count_messages(cut.messages, WORDS) <= budget)
    assert cut.removed_tokens == count_messages(messages, WORDS) - count_messages(cut.messages, WORDS)
    assert_calls_and_results_together(cut)
    assert cut.fits is fits


def assert_calls_and_results_together(cut: Truncation) -> None:
    calls = {c.id for m in cut.messages for c in m.tool_calls}
    results = {m.tool_call_id for m in cut.messages if m.role is Role.TOOL}
    assert calls == results


def test_trim_middle_cuts_the_longest_text_and_leaves_a_marker():
    document = " ".join(f"w{i}" for i in range(1000))
    messages = (S("S"), U("U1"), A("A1"), Message(Role.USER, (TextPart("summarise: " + document),)))
    cut = truncate(messages, 300, WORDS, "trim_middle")
    assert cut.fits
    assert count_messages(cut.messages, WORDS) <= 300
    assert [m.role for m in cut.messages] == [Role.SYSTEM, Role.USER, Role.USER]  # A1 went first
    text = cut.messages[-1].text
    marker = MARKER.search(text)
    assert marker is not None
    trimmed = int(marker.group().split()[1].replace(",", ""))
    assert text.startswith("summarise: w0 w1 ")
    assert text.endswith(" w998 w999")
    assert len(text.split()) - 5 + trimmed == 1001  # kept words + trimmed words = the original's
    assert cut.removed_tokens == count_messages(messages, WORDS) - count_messages(cut.messages, WORDS)


def test_trim_middle_gives_up_when_even_markers_do_not_fit():
    messages = (S("S", words=500), U("ULAST", words=500))
    cut = truncate(messages, 2 * PER_MESSAGE + REPLY_PRIMING + 5, WORDS, "trim_middle")
    assert not cut.fits
    assert [m.role for m in cut.messages] == [Role.SYSTEM, Role.USER]


def test_drop_oldest_never_cuts_text():
    messages = (S("S"), U("U1"), U("ULAST", words=1000))
    cut = truncate(messages, 200, WORDS, "drop_oldest")
    assert not cut.fits
    assert [label(m) for m in cut.messages] == ["S", "ULAST"]
    assert not MARKER.search(cut.messages[-1].text)


def test_images_are_kept_and_counted():
    image = Message(Role.USER, (TextPart("look"), ImagePart(url="https://x/y.png")))
    messages = (S("S"), image, A("A1"), U("ULAST"))
    cut = truncate(messages, count_messages(messages, WORDS) - 1, WORDS, "trim_middle")
    assert cut.fits
    assert cut.messages[1] is image  # the first turn stays, image and all


def test_with_the_real_tokenizer():
    o200k = counter_named("o200k_base")
    paragraph = "The quarterly report shows revenue up 12% while costs held flat. " * 400
    messages = (
        Message(Role.SYSTEM, (TextPart("You are a concise analyst."),)),
        Message(Role.USER, (TextPart("Here is the report:\n" + paragraph + "\nWhat changed?"),)),
    )
    cut = truncate(messages, 1000, o200k, "trim_middle")
    assert cut.fits
    assert count_messages(cut.messages, o200k) <= 1000
    text = cut.messages[-1].text
    assert MARKER.search(text)
    assert text.startswith("Here is the report:")
    assert text.endswith("What changed?")
    assert cut.messages[0] == messages[0]
