"""The calibration table: for each threshold on P(weak suffices), what routing did on held-out data.

Rows are prompts with both models' scores and costs and predictions from a model that never saw
them (out-of-fold). At threshold t a prompt goes to the weak model when P >= t; the table records
the share of strong calls, quality as a fraction of strong-only quality and cost as a fraction of
strong-only cost. `LearnedRouter.threshold_for` reads it to turn a route's target into a
threshold, so a target means "what this threshold achieved on prompts the model had not seen".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

GRID = tuple(round(i / 100, 2) for i in range(101))


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Held-out rows: the prediction, both models' scores and costs."""

    p: Floats
    weak: Floats
    strong: Floats
    weak_cost: Floats
    strong_cost: Floats

    @classmethod
    def of(cls, *columns: Sequence[float] | Floats) -> Outcomes:
        return cls(*(np.asarray(c, dtype=np.float64) for c in columns))

    def row(self, threshold: float) -> list[float]:
        """[threshold, strong_share, quality, cost] when prompts with P >= threshold go weak."""
        to_weak = self.p >= threshold
        quality = float(np.where(to_weak, self.weak, self.strong).sum()) / (float(self.strong.sum()) or 1.0)
        cost = float(np.where(to_weak, self.weak_cost, self.strong_cost).sum()) / (
            float(self.strong_cost.sum()) or 1.0
        )
        return [threshold, round(1.0 - float(to_weak.mean()), 4), round(quality, 4), round(cost, 4)]

    def table(self) -> list[list[float]]:
        return [self.row(t) for t in GRID]

    def achieved(self, threshold: float) -> dict[str, float]:
        """What one threshold does on these rows (e.g. the test split): the check of a calibration."""
        _, share, quality, cost = self.row(threshold)
        return {"threshold": threshold, "strong_share": share, "quality": quality, "cost": cost}
