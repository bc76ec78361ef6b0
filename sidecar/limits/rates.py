"""Rate limits shared by the pods: each pod's admission runs at a demand-weighted share of them.

A provider's requests/s and tokens/min are its account's, not a pod's. With limits.store.share_rates
every heartbeat (1 s) a pod writes to the store what each rate-limited lane was asked for since the
last one, reads every live pod's, and runs each lane at

    rate * (0.5 / pods + 0.5 * this pod's demand / every pod's demand)

The shares of all pods sum to 1, so the deployment stays under the configured rate (within one
heartbeat of a change in demand), a busy pod gets most of it, and an idle one keeps enough to
start. Nothing on the request path waits for the store: admission reads only its own buckets.
While the store is away, and until the first heartbeat, each pod takes 1/replicas. Decision 061.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Protocol

Demand = Mapping[str, int]  # lane ("provider:openai") -> attempts that asked for capacity


class Lanes(Protocol):
    """The rate limits of one config snapshot (execution.admission.Admission)."""

    def take_demand(self) -> dict[str, int]: ...

    def share_rates(self, shares: Mapping[str, float], default: float) -> None: ...


class DemandExchange(Protocol):
    async def exchange(self, pod: str, demand: Demand, stale_s: float) -> dict[str, dict[str, int]] | None:
        """Store this pod's demand; every live pod's (this one's included), None if the store is away."""
        ...


def shares(pod: str, demands: Mapping[str, Demand]) -> dict[str, float]:
    """This pod's share of each lane any pod has asked, from every live pod's demand."""
    pods = len(demands)
    lanes = {lane for demand in demands.values() for lane in demand}
    mine = demands.get(pod, {})
    out = {}
    for lane in lanes:
        total = sum(demand.get(lane, 0) for demand in demands.values())
        weight = mine.get(lane, 0) / total if total else 1 / pods
        out[lane] = 0.5 / pods + 0.5 * weight
    return out


class SharedRates:
    """Kept across reloads (one per sidecar, beaten by the Heartbeat); `apply` hands it each
    snapshot's lanes."""

    def __init__(self, store: DemandExchange, replicas: int, interval_s: float = 1.0) -> None:
        self._store = store
        self._alone = 1 / replicas  # each pod's share while the store is away
        self._interval_s = interval_s
        self._pod = uuid.uuid4().hex
        self._lanes: Lanes | None = None
        self._shares: dict[str, float] = {}
        self._default = self._alone
        self.pods = 0  # live pods at the last heartbeat (0: the store was away)

    def apply(self, lanes: Lanes) -> None:
        """Run `lanes` at the current shares from now on."""
        if self._lanes is not None and self._lanes is not lanes:
            self._lanes.take_demand()  # the old snapshot's count goes with it
        self._lanes = lanes
        lanes.share_rates(self._shares, self._default)

    async def beat(self) -> None:
        """One heartbeat: send this pod's demand, set the shares from every pod's."""
        if self._lanes is None:
            return
        demand = self._lanes.take_demand()
        demands = await self._store.exchange(self._pod, demand, stale_s=3 * self._interval_s)
        if demands is None or self._pod not in demands:
            self.pods, self._shares, self._default = 0, {}, self._alone
        else:
            self.pods = len(demands)
            self._shares, self._default = shares(self._pod, demands), 1 / len(demands)
        self._lanes.share_rates(self._shares, self._default)
