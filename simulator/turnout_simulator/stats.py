"""Counters the admin API reports: requests served per model and faults fired per kind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def record_request(self, model: str) -> None:
        self.requests[model] += 1

    def record_faults(self, kinds: Iterable[str]) -> None:
        self.faults.update(str(kind) for kind in kinds)

    def reset(self) -> None:
        self.requests.clear()
        self.faults.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"requests": dict(self.requests), "faults": dict(self.faults)}
