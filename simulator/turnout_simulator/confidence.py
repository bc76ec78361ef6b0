"""How sure the fake model is: seeded log-probabilities for each output token.

Each token's logprob is minus a gamma draw whose mean is the target: the profile's `confidence`, or a
low_confidence fault's `mean_logprob`. So no value is above 0, most tokens are fairly sure and a few are
not, and an answer of a dozen tokens or more averages close to the target (one token's standard
deviation is half the mean), which keeps a strong model, a weak one and a low-confidence answer apart.
The draws come from their own RNG, seeded by the caller from the request and the model name: they
repeat exactly, differ per model, and asking for logprobs never changes the answer's text.
"""

from __future__ import annotations

import math
import random
import zlib

from turnout_simulator.words import VOCABULARY

GAMMA_SHAPE = 4.0
DECIMALS = 6
IMPOSSIBLE = -9999.0  # what OpenAI reports for a token with no chance left


def top(token: str, logprob: float, count: int) -> list[tuple[str, float]]:
    """The `count` most likely tokens at a position whose chosen token is `token`: it first, then
    rivals from the vocabulary, each half as likely as the one before and all together no more
    likely than what the chosen token leaves, so the probabilities never sum past 1. No RNG: the
    same token and logprob give the same list, in a stream's chunks and a whole answer alike."""
    if count <= 0:
        return []
    p = math.exp(logprob)
    share = min(p, 1.0 - p)
    prefix = " " if token.startswith(" ") else ""
    start = zlib.crc32(token.encode())
    out = [(token, logprob)]
    step = 0
    while len(out) < count:
        word = prefix + VOCABULARY[(start + step) % len(VOCABULARY)]
        step += 1
        if word == token:
            continue
        share /= 2
        out.append((word, round(math.log(share), DECIMALS) if share > 0 else IMPOSSIBLE))
    return out


def draw_logprobs(count: int, mean: float, rng: random.Random) -> tuple[float, ...]:
    """`count` token logprobs averaging about `mean` (<= 0); a mean of 0 means every token is certain."""
    if mean >= 0.0:
        return (0.0,) * count
    scale = -mean / GAMMA_SHAPE
    # `+ 0.0` turns a rounded -0.0 into 0.0, as a provider would print it.
    return tuple(-round(rng.gammavariate(GAMMA_SHAPE, scale), DECIMALS) + 0.0 for _ in range(count))
