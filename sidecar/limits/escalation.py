"""Escalation caps: at most a share of a route's requests may go to models above a quality.

Per route and window two counters: requests planned, and those sent above the quality (the plan's
first choice, or a cascade's escalation to such a model as it starts). Counting is an `add`, never
awaited; the policy reads the totals as last seen (`Counters.known`), so no request waits for the
store. Past the share, once the window has `min_requests`, the policy keeps to models at or below
the quality and says so. Across pods the view lags by one batch of adds (a flush, or the next
round trip), so the share can overshoot by about what the pods plan in that time (decision 060).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sidecar.domain.model import ModelSpec
from sidecar.domain.observe import Planned, Quiet
from sidecar.domain.outcome import AttemptCause, AttemptStart
from sidecar.limits.counters import Claim, Counters
from sidecar.limits.windows import Window


@dataclass(frozen=True, slots=True)
class EscalationCap:
    route: str
    above_quality: float  # a model of higher quality than this is an escalation
    max_share: float  # of the window's requests on the route
    window: Window
    min_requests: int = 20  # no cap before the window has this many (a share of 1 in 2 says little)


@dataclass(frozen=True, slots=True)
class Escalations:
    cap: EscalationCap
    requests: int
    above: int

    @property
    def share(self) -> float:
        return self.above / self.requests if self.requests else 0.0

    @property
    def binding(self) -> bool:
        return self.requests >= self.cap.min_requests and self.share >= self.cap.max_share


class EscalationCaps(Quiet):
    """The routes' caps over one `Counters`; an Observer of calls (plans count as they are made, a
    cascade's escalations as they start), stateless per call."""

    def __init__(
        self,
        caps: Sequence[EscalationCap],
        counters: Counters,
        models: Iterable[ModelSpec],
        default_route: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._caps = {c.route: c for c in caps}
        self._counters = counters
        self._quality = {m.name: m.quality for m in models}
        self._default_route = default_route
        self._clock = clock

    def seen(self, route: str) -> Escalations | None:
        cap = self._caps.get(route)
        if cap is None:
            return None
        requests, above = self._claims(cap)
        return Escalations(cap, self._counters.known(requests), self._counters.known(above))

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(self._caps)

    def planned(self, event: Planned) -> None:
        """Count a plan: one request, and one escalation if its first choice is above the quality."""
        plan = event.plan
        cap = self._caps.get(plan.route)
        if cap is None or not plan.stages:
            return
        requests, above = self._claims(cap)
        self._counters.add(requests.keys[0], 1, requests.ttl_s)
        if plan.stages[0].candidates[0].model.quality > cap.above_quality:
            self._counters.add(above.keys[0], 1, above.ttl_s)

    def attempt_started(self, event: AttemptStart) -> None:
        """A cascade's escalation to a model above the quality counts as it starts."""
        if event.cause is not AttemptCause.ESCALATION:
            return
        cap = self._caps.get(event.request.hints.route or self._default_route)
        if cap is not None and self._quality.get(event.model.name, 0.0) > cap.above_quality:
            above = self._claims(cap)[1]
            self._counters.add(above.keys[0], 1, above.ttl_s)

    def _claims(self, cap: EscalationCap) -> tuple[Claim, Claim]:
        span = cap.window.span(self._clock())

        def claim(what: str) -> Claim:
            return Claim(tuple(f"escalation:{cap.route}:{what}:{b}" for b in span.buckets), None, span.ttl_s)

        return claim("requests"), claim("above")
