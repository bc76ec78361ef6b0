"""Spend budgets: USD per window per scope, charged before a request and settled from its attempts.

    admit(request, plan)   charge the plan's estimated cost to every budget the request falls under
                           (one round trip); a hard budget already spent refuses it: BudgetExceeded
    attempt ends           its real cost is added to the budgets of its request and model (fallbacks,
                           hedges, cascade stages and shadow calls alike: each attempt once); the
                           book is an Observer of calls (domain/observe.py) and sees every end
    request ends           the estimate is given back (`Hold.release`)

So a counter holds the real cost of finished attempts plus the estimates of requests in flight.
A budget refuses once its total reached the limit; the request that crosses it is let in, so
the limit is overshot by at most one request's estimate plus whatever attempts cost beyond their
estimates (decision 060). Soft limits never refuse: they log once per window, and a budget with
`on_soft: cheaper` makes the policy keep to models at or below a quality (limits/policy.py).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sidecar.domain.errors import BudgetExceeded
from sidecar.domain.model import USD_NANOS
from sidecar.domain.observe import AttemptEnded, Quiet
from sidecar.domain.plan import Plan
from sidecar.domain.request import ChatRequest
from sidecar.limits.counters import Claim, Counters
from sidecar.limits.windows import Window

log = logging.getLogger(__name__)


class Scope(enum.StrEnum):
    DEPLOYMENT = "deployment"  # every request
    TENANT = "tenant"  # per request.tenant_id
    ROUTE = "route"  # per route
    MODEL = "model"  # per model an attempt went to
    LABEL = "label"  # per value of one request label (team, project, ...)


class SoftAction(enum.StrEnum):
    WARN = "warn"
    CHEAPER = "cheaper"


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    name: str
    limit_usd_nanos: int
    window: Window
    scope: Scope = Scope.DEPLOYMENT
    label: str = ""  # the label's name when scope is LABEL
    hard: bool = True
    soft_at: float = 0.8  # share of the limit past which the soft action applies
    on_soft: SoftAction = SoftAction.WARN
    cheaper_max_quality: float = 1.0  # with on_soft: cheaper, the best quality still allowed

    @property
    def per(self) -> str:
        return f"label:{self.label}" if self.scope is Scope.LABEL else self.scope.value


@dataclass(frozen=True, slots=True)
class Usage:
    """One budget in one scope as this pod last saw it (the store has the exact figure)."""

    budget: BudgetSpec
    scope: str  # e.g. "team=search", "" for the deployment
    spent_usd_nanos: int
    resets_at: float  # unix seconds

    @property
    def share(self) -> float:
        return self.spent_usd_nanos / self.budget.limit_usd_nanos

    @property
    def soft(self) -> bool:
        return self.share >= self.budget.soft_at


@dataclass(slots=True)
class Hold:
    """A request's charged estimate; `release()` gives it back when the request ends (once)."""

    counters: Counters | None
    claims: Sequence[Claim] = ()
    amount: int = 0
    _released: bool = field(default=False, repr=False)

    def release(self) -> None:
        if self._released or self.counters is None or not self.amount:
            return
        self._released = True
        for claim in self.claims:
            self.counters.add(claim.keys[0], -self.amount, claim.ttl_s)


_NOTHING_HELD = Hold(None)


class BudgetBook(Quiet):
    """Every configured budget over one `Counters`, built with each config snapshot (a counter is
    named by its budget, so renaming one starts it anew). An Observer of calls, stateless per call."""

    def __init__(
        self,
        budgets: Sequence[BudgetSpec],
        counters: Counters,
        default_route: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.budgets = tuple(budgets)
        self.counters = counters
        self._default_route = default_route
        self._clock = clock
        self._seen: dict[tuple[str, str], Usage] = {}  # (budget, scope) -> last seen
        self._warned: set[tuple[str, str, str]] = set()  # (budget, scope, window) already logged

    # --- the request path -------------------------------------------------------------------------

    async def admit(self, request: ChatRequest, plan: Plan) -> Hold:
        """Charge the plan's estimate to the request's budgets; BudgetExceeded if a hard one is spent."""
        if not self.budgets:
            return _NOTHING_HELD
        model = plan.stages[0].candidates[0].model.name
        now = self._clock()
        placed = self._placed(request, plan.route, model, now)
        if not placed:
            return _NOTHING_HELD
        estimate = plan.stages[0].candidates[0].estimated_cost_usd_nanos
        claims = [claim for _, _, claim, _ in placed]
        verdict = await self.counters.charge(claims, estimate)
        for (spec, scope, _, resets_at), total in zip(placed, verdict.totals, strict=True):
            charged = 0 if verdict.refused is not None else estimate
            self._saw(Usage(spec, scope, total + charged, resets_at))
        if verdict.refused is not None:
            spec, scope, _, resets_at = placed[verdict.refused]
            spent = verdict.totals[verdict.refused]
            raise BudgetExceeded(
                spec.name,
                scope,
                f"{usd(spent)} of {usd(spec.limit_usd_nanos)} per {spec.window.label}",
                datetime.fromtimestamp(resets_at, UTC).isoformat(timespec="seconds"),
                max(0.0, resets_at - now),
            )
        return Hold(self.counters, claims, estimate)

    def attempt_ended(self, event: AttemptEnded) -> None:
        """An attempt's real cost goes to its budgets as it ends, whatever became of it."""
        cost = event.record.cost_usd_nanos
        if not cost or not self.budgets:
            return
        request = event.start.request
        route = request.hints.route or self._default_route
        for _, _, claim, _ in self._placed(request, route, event.record.model, self._clock()):
            self.counters.add(claim.keys[0], cost, claim.ttl_s)

    # --- what the policy and the reports read -----------------------------------------------------

    def seen(self, request: ChatRequest, route: str) -> list[Usage]:
        """This pod's last view of the request's budgets (no I/O; model budgets are left out: the
        policy has not chosen a model yet)."""
        now = self._clock()
        out = []
        for spec in self.budgets:
            if spec.scope is Scope.MODEL:
                continue
            scope = self._scope(spec, request, route, "")
            usage = self._seen.get((spec.name, scope)) if scope is not None else None
            if usage is not None and usage.resets_at > now:
                out.append(usage)
        return out

    def usages(self) -> list[Usage]:
        """Every budget in every scope this pod has seen this window, as last seen (no I/O)."""
        now = self._clock()
        return [u for u in self._seen.values() if u.resets_at > now]

    async def report(self) -> list[Usage]:
        """Each deployment-wide budget, and each other budget in every scope this pod has seen this
        window, with the store's current totals."""
        now = self._clock()
        known = {(u.budget.name, u.scope): u for u in self.usages()}
        for spec in self.budgets:
            if spec.scope is Scope.DEPLOYMENT and (spec.name, "") not in known:
                known[(spec.name, "")] = Usage(spec, "", 0, 0.0)
        placed = [(u, *self._claim(u.budget, u.scope, now)) for u in known.values()]
        totals = await self.counters.totals([claim for _, claim, _ in placed]) if placed else ()
        return [
            Usage(u.budget, u.scope, total, resets_at)
            for (u, _, resets_at), total in zip(placed, totals, strict=True)
        ]

    # --- internals --------------------------------------------------------------------------------

    def _placed(
        self, request: ChatRequest, route: str, model: str, now: float
    ) -> list[tuple[BudgetSpec, str, Claim, float]]:
        out = []
        for spec in self.budgets:
            scope = self._scope(spec, request, route, model)
            if scope is not None:
                claim, resets_at = self._claim(spec, scope, now)
                out.append((spec, scope, claim, resets_at))
        return out

    @staticmethod
    def _scope(spec: BudgetSpec, request: ChatRequest, route: str, model: str) -> str | None:
        """The scope the request falls in for this budget ("" for the deployment), None if none."""
        match spec.scope:
            case Scope.DEPLOYMENT:
                return ""
            case Scope.TENANT:
                return f"tenant={request.tenant_id}" if request.tenant_id else None
            case Scope.ROUTE:
                return f"route={route}"
            case Scope.MODEL:
                return f"model={model}" if model else None
            case Scope.LABEL:
                value = request.labels.get(spec.label)
                return f"{spec.label}={value}" if value else None

    @staticmethod
    def _claim(spec: BudgetSpec, scope: str, now: float) -> tuple[Claim, float]:
        span = spec.window.span(now)
        keys = tuple(f"budget:{spec.name}:{scope}:{bucket}" for bucket in span.buckets)
        return Claim(keys, spec.limit_usd_nanos if spec.hard else None, span.ttl_s), span.resets_at

    def _saw(self, usage: Usage) -> None:
        spec = usage.budget
        self._seen[(spec.name, usage.scope)] = usage
        if usage.soft:
            window = spec.window.span(self._clock()).buckets[0]
            if (spec.name, usage.scope, window) not in self._warned:
                self._warned.add((spec.name, usage.scope, window))
                log.warning(
                    "budget %r%s: %.0f%% of %s per %s used (soft limit %.0f%%%s)",
                    spec.name,
                    f" for {usage.scope}" if usage.scope else "",
                    100 * usage.share,
                    usd(spec.limit_usd_nanos),
                    spec.window.label,
                    100 * spec.soft_at,
                    f"; models above quality {spec.cheaper_max_quality:g} excluded"
                    if spec.on_soft is SoftAction.CHEAPER
                    else "",
                )


def usd(nanos: int) -> str:
    """Dollars and cents, or four significant digits below a dollar (test budgets are small)."""
    amount = nanos / USD_NANOS
    return f"${amount:,.2f}" if abs(amount) >= 1 or amount == 0 else f"${amount:.4g}"
