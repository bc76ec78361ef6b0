"""Fault state: which faults are armed, and which ones a given request draws.

Standing faults come from the model profiles and live as long as the simulator; runtime faults come
from the admin API and are cleared by it. A request draws at most one failing fault (runtime ones first,
oldest first, then standing ones) plus every matching `slow` fault, whose factors multiply. A count-based
fault is used up only when it fires, so two queued `count: 1` faults fire on consecutive requests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from turnout_simulator.config import FaultKind, FaultSpec, SimulatorConfig


@dataclass(slots=True)
class ArmedFault:
    spec: FaultSpec
    remaining: int | None  # None for rate-based faults

    def describe(self) -> dict[str, object]:
        described = self.spec.model_dump(mode="json", exclude_none=True)
        if self.remaining is not None:
            described["remaining"] = self.remaining
        return described


@dataclass(frozen=True, slots=True)
class Draw:
    """What happens to one request: at most one failing fault, and a latency multiplier."""

    fault: FaultSpec | None = None
    slow_factor: float = 1.0
    fired: tuple[FaultKind, ...] = field(default=())


class FaultBook:
    def __init__(self, config: SimulatorConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._runtime: list[ArmedFault] = []
        # Keyed by profile identity so a standing count is shared by every model that profile serves.
        self._standing: dict[int, list[ArmedFault]] = {}
        for profile in (config.default_profile, *config.models.values()):
            self._standing[id(profile)] = [_arm(spec) for spec in profile.faults]

    def add(self, spec: FaultSpec) -> None:
        self._runtime.append(_arm(spec))

    def clear(self) -> int:
        """Drop every runtime fault (standing ones stay); return how many were dropped."""
        dropped = len(self._runtime)
        self._runtime.clear()
        return dropped

    def listing(self) -> dict[str, list[dict[str, object]]]:
        standing = [armed.describe() for group in self._standing.values() for armed in group]
        return {"runtime": [armed.describe() for armed in self._runtime], "standing": standing}

    def draw(self, model: str) -> Draw:
        candidates = [*self._runtime, *self._standing[id(self._config.profile_for(model))]]
        failing: FaultSpec | None = None
        slow_factor = 1.0
        fired: list[FaultKind] = []
        for armed in candidates:
            if armed.spec.model not in ("*", model):
                continue
            if armed.spec.kind is not FaultKind.SLOW and failing is not None:
                continue
            if not self._fires(armed):
                continue
            fired.append(armed.spec.kind)
            if armed.spec.kind is FaultKind.SLOW:
                slow_factor *= armed.spec.factor
            else:
                failing = armed.spec
        self._runtime = [armed for armed in self._runtime if armed.remaining != 0]
        return Draw(fault=failing, slow_factor=slow_factor, fired=tuple(fired))

    def _fires(self, armed: ArmedFault) -> bool:
        if armed.remaining is not None:
            if armed.remaining <= 0:
                return False
            armed.remaining -= 1
            return True
        rate = armed.spec.rate if armed.spec.rate is not None else 0.0
        return self._rng.random() < rate


def _arm(spec: FaultSpec) -> ArmedFault:
    return ArmedFault(spec=spec, remaining=spec.count)
