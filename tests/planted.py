"""Checks for planted keys: neither the key nor any prefix of 6+ characters of it shows anywhere.

Providers echo a key's head ("Incorrect API key provided: sk-PLA***"), so looking for the whole key
is not enough.
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_PREFIX = 6


def leaks(key: str, texts: Iterable[str]) -> list[str]:
    """The texts that hold `key` or a prefix of it of MIN_PREFIX+ characters (the prefix shown)."""
    found = []
    for text in texts:
        for n in range(len(key), MIN_PREFIX - 1, -1):
            if key[:n] in text:
                found.append(f"{key[:n]!r} in {text[:300]!r}")
                break
    return found


def assert_no_key(key: str, *texts: str) -> None:
    leaked = leaks(key, texts)
    assert not leaked, "\n".join(leaked)
