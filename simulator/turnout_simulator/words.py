"""The simulator's vocabulary: plain words drawn from a seeded RNG, about one token each."""

from __future__ import annotations

import random

_WORDS = (
    "the a route model request answer token latency budget cheap fast careful quality cost "
    "provider sidecar cluster pod stream chunk choice reason signal fallback hedge retry timeout "
    "deadline schema field value result summary detail context window prompt reply user system "
    "tool call weather city report data plan step check pass fail ready steady small large "
    "simple clear useful brief exact likely early late good better best first next last"
)
VOCABULARY = tuple(_WORDS.split())


def draw_words(rng: random.Random, count: int) -> list[str]:
    return [rng.choice(VOCABULARY) for _ in range(count)]


def sentence(rng: random.Random, count: int) -> str:
    """`count` words, capitalised, ending with a full stop."""
    text = " ".join(draw_words(rng, max(count, 1)))
    return text[:1].upper() + text[1:] + "."
