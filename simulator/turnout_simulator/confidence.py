"""How sure the fake model is: seeded log-probabilities for each output token.

Each token's logprob is minus a gamma draw whose mean is the target: the profile's `confidence`, or a
low_confidence fault's `mean_logprob`. So no value is above 0, most tokens are fairly sure and a few are
not, and an answer of a dozen tokens or more averages close to the target (one token's standard
deviation is half the mean), which keeps a strong model, a weak one and a low-confidence answer apart.
The draws come from their own RNG, seeded by the caller from the request and the model name: they
repeat exactly, differ per model, and asking for logprobs never changes the answer's text.
"""

from __future__ import annotations

import random

GAMMA_SHAPE = 4.0
DECIMALS = 6


def draw_logprobs(count: int, mean: float, rng: random.Random) -> tuple[float, ...]:
    """`count` token logprobs averaging about `mean` (<= 0); a mean of 0 means every token is certain."""
    if mean >= 0.0:
        return (0.0,) * count
    scale = -mean / GAMMA_SHAPE
    # `+ 0.0` turns a rounded -0.0 into 0.0, as a provider would print it.
    return tuple(-round(rng.gammavariate(GAMMA_SHAPE, scale), DECIMALS) + 0.0 for _ in range(count))
