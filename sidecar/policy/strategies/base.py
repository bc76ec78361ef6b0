"""The strategy interface."""

from __future__ import annotations

from typing import Protocol

from sidecar.policy.draft import Draft


class Strategy(Protocol):
    name: str
    # Whether the outcome depends on the prompt's content (beyond its length): such routes key
    # their cached decisions on a hash of the content.
    reads_content: bool

    def apply(self, draft: Draft) -> None: ...
