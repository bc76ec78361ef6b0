"""What the limits look like from this pod, for metrics (and reports): plain data, no I/O.

The budgets and caps are rebuilt with each config snapshot; the board holds the current ones, so
that gauges registered once at start read whatever is in effect.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sidecar.domain.model import USD_NANOS
from sidecar.limits.budgets import BudgetBook, Usage
from sidecar.limits.counters import Counters
from sidecar.limits.escalation import EscalationCaps


@dataclass(slots=True)
class Board:
    counters: Counters
    budgets: BudgetBook | None = None
    caps: EscalationCaps | None = None

    def store_up(self) -> bool | None:
        """Whether the shared store answers; None without one (counters in this process)."""
        up = getattr(self.counters, "up", None)
        return up if isinstance(up, bool) else None

    async def report(self) -> tuple[list[Usage], bool]:
        """Every budget as GetBudgets reports it, and whether the figures come from the shared store."""
        usages = await self.budgets.report() if self.budgets is not None else []
        return usages, self.store_up() is True

    def spend(self) -> Iterator[tuple[str, str, float, float]]:
        """(budget, scope, spent USD, limit USD) for each budget and scope seen this window."""
        for u in self.budgets.usages() if self.budgets is not None else ():
            yield u.budget.name, u.scope, u.spent_usd_nanos / USD_NANOS, u.budget.limit_usd_nanos / USD_NANOS

    def escalation_shares(self) -> dict[str, float]:
        caps = self.caps
        if caps is None:
            return {}
        return {route: seen.share for route in caps.routes if (seen := caps.seen(route)) is not None}
