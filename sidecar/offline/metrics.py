"""Routing-quality metrics, pure numpy and no I/O: threshold curves, APGR, CPT, cost at 95%, N-model frontier.

Two-model routing (a strong and a weak model). A router gives each row a score; a threshold sends
the rows above it to the strong model. Sweeping the threshold over every distinct score gives the
curve from "all weak" (share 0) to "all strong" (share 1), with at each point the share of strong
calls, the mean quality, the mean cost and

    PGR = (quality - weak-only quality) / (strong-only quality - weak-only quality)

Rows with equal scores cannot be split by a threshold, so the curve has one point per distinct
score and is linear between points. That line is exactly the expected result of breaking the tie
at random, so a router gains nothing from tied scores and a constant router gets APGR 0.5.

    APGR        area under PGR against strong share (trapezoids over the curve's points).
    CPT(x)      the smallest strong share with PGR >= x, interpolated linearly along the curve
                (realisable by randomising at the threshold); None if never reached.
    cost@95%    the smallest mean cost along the curve with quality >= 0.95 x strong-only quality,
                as a fraction of the strong-only mean cost; None if never reached or no costs.

N-model routing. A SuccessPredictor gives P(success) per prompt and model. At willingness to pay
lambda each prompt goes to argmax(P - lambda x cost) (ties to the cheaper model); sweeping lambda
from 0 (best predicted quality) to large (cheapest model) traces a cost/quality curve, whose
non-dominated points are the router's Pareto frontier. The same sweep with the true qualities in
place of P gives the oracle frontier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

QUALITY_TARGET = 0.95
RANDOM_SEEDS = 10
_MAX_LAMBDAS = 400


class DegeneratePairError(ValueError):
    """The strong and weak models have the same mean quality: PGR divides by zero."""


@dataclass(frozen=True)
class Pair:
    """Per-row outcomes of a strong and a weak model on the same rows (rows with NaN already dropped)."""

    strong_quality: FloatArray
    weak_quality: FloatArray
    strong_cost: FloatArray | None = None
    weak_cost: FloatArray | None = None

    def __post_init__(self) -> None:
        n = len(self.strong_quality)
        arrays = [self.weak_quality, self.strong_cost, self.weak_cost]
        if any(a is not None and len(a) != n for a in arrays):
            raise ValueError("every array of a Pair needs one entry per row")
        if (self.strong_cost is None) != (self.weak_cost is None):
            raise ValueError("give both costs or neither")
        if n == 0:
            raise ValueError("no rows with both a strong and a weak score")
        for a in (self.strong_quality, self.weak_quality, self.strong_cost, self.weak_cost):
            if a is not None and not np.all(np.isfinite(a)):
                raise ValueError("a Pair holds finite numbers only: drop the NaN rows first")
        gap = float(np.mean(self.strong_quality) - np.mean(self.weak_quality))
        if abs(gap) <= 1e-12 * max(1.0, float(np.max(np.abs(self.strong_quality)))):
            raise DegeneratePairError(
                f"the strong and weak models have the same mean quality ({np.mean(self.strong_quality):.6g}) "
                f"on these {n} rows: PGR (gap recovered) is undefined"
            )

    @property
    def n(self) -> int:
        return len(self.strong_quality)

    @property
    def has_costs(self) -> bool:
        return self.strong_cost is not None


@dataclass(frozen=True)
class Curve:
    """One point per threshold, from all-weak (share 0) to all-strong (share 1)."""

    strong_share: FloatArray
    quality: FloatArray
    pgr: FloatArray
    cost: FloatArray | None  # mean USD per row; None without costs


@dataclass(frozen=True)
class PairMetrics:
    name: str
    apgr: float
    cpt50: float | None
    cpt80: float | None
    cost_at_95: float | None  # fraction of strong-only cost
    curve: Curve
    n: int
    apgr_std: float | None = None  # across seeds, for the random router


def routing_curve(pair: Pair, scores: FloatArray) -> Curve:
    """The threshold sweep: the top-k rows by score go to the strong model, at every k ending a tie group."""
    if len(scores) != pair.n:
        raise ValueError(f"{len(scores)} scores for {pair.n} rows")
    if not np.all(np.isfinite(scores)):
        raise ValueError("router scores must be finite numbers")
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    # k values where a threshold can fall: 0, and after the last row of each group of equal scores.
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True)) + 1
    ks = np.concatenate(([0], ends))
    n = pair.n
    gain = np.concatenate(([0.0], np.cumsum((pair.strong_quality - pair.weak_quality)[order])))[ks]
    quality = (float(np.sum(pair.weak_quality)) + gain) / n
    q_weak, q_strong = float(np.mean(pair.weak_quality)), float(np.mean(pair.strong_quality))
    pgr = (quality - q_weak) / (q_strong - q_weak)
    cost = None
    if pair.strong_cost is not None and pair.weak_cost is not None:
        extra = np.concatenate(([0.0], np.cumsum((pair.strong_cost - pair.weak_cost)[order])))[ks]
        cost = (float(np.sum(pair.weak_cost)) + extra) / n
    return Curve(strong_share=ks / n, quality=quality, pgr=pgr, cost=cost)


def apgr(curve: Curve) -> float:
    x, y = curve.strong_share, curve.pgr  # trapezoids by hand: np.trapz became np.trapezoid in numpy 2
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def cpt(curve: Curve, target: float) -> float | None:
    """The smallest strong share with PGR >= target, interpolated linearly between curve points."""
    share, pgr = curve.strong_share, curve.pgr
    if pgr[0] >= target:
        return float(share[0])
    hits = np.flatnonzero(pgr >= target)
    if hits.size == 0:
        return None
    i = int(hits[0])  # pgr[i - 1] < target <= pgr[i]
    t = (target - pgr[i - 1]) / (pgr[i] - pgr[i - 1])
    return float(share[i - 1] + t * (share[i] - share[i - 1]))


def cost_at_quality(curve: Curve, pair: Pair, fraction: float = QUALITY_TARGET) -> float | None:
    """The smallest mean cost along the curve with quality >= fraction x strong-only quality,
    as a share of strong-only cost; None without costs or if never reached."""
    if curve.cost is None or pair.strong_cost is None:
        return None
    strong_cost = float(np.mean(pair.strong_cost))
    if strong_cost <= 0:
        return None
    best = _min_cost_reaching(curve.quality, curve.cost, fraction * float(np.mean(pair.strong_quality)))
    return None if best is None else best / strong_cost


def _min_cost_reaching(quality: FloatArray, cost: FloatArray, target: float) -> float | None:
    """Min cost over a piecewise-linear (quality, cost) path where quality >= target."""
    candidates = list(cost[quality >= target])
    q0, q1, c0, c1 = quality[:-1], quality[1:], cost[:-1], cost[1:]
    crossing = (q0 - target) * (q1 - target) < 0  # strictly crosses the target inside the segment
    t = (target - q0[crossing]) / (q1[crossing] - q0[crossing])
    candidates.extend(c0[crossing] + t * (c1[crossing] - c0[crossing]))
    return float(min(candidates)) if candidates else None


def pair_metrics(name: str, pair: Pair, scores: FloatArray) -> PairMetrics:
    curve = routing_curve(pair, scores)
    return PairMetrics(
        name=name,
        apgr=apgr(curve),
        cpt50=cpt(curve, 0.5),
        cpt80=cpt(curve, 0.8),
        cost_at_95=cost_at_quality(curve, pair),
        curve=curve,
        n=pair.n,
    )


def oracle_scores(pair: Pair) -> FloatArray:
    """Largest gain first: at threshold 0 the strong model gets exactly the rows where the weak is worse."""
    return pair.strong_quality - pair.weak_quality


def random_metrics(pair: Pair, seed: int = 0, seeds: int = RANDOM_SEEDS) -> PairMetrics:
    """The random router: every metric is the mean over `seeds` random permutations (seed, seed+1, ...).

    The curve is the pointwise mean of the seeds' curves, which share the grid k/n (no ties)."""
    runs = [
        pair_metrics("random", pair, np.random.default_rng(seed + i).permutation(pair.n).astype(np.float64))
        for i in range(seeds)
    ]
    curves = [r.curve for r in runs]
    costs = [c.cost for c in curves if c.cost is not None]
    mean_curve = Curve(
        strong_share=curves[0].strong_share,
        quality=np.mean([c.quality for c in curves], axis=0),
        pgr=np.mean([c.pgr for c in curves], axis=0),
        cost=np.mean(costs, axis=0) if costs else None,
    )
    apgrs = [r.apgr for r in runs]
    return PairMetrics(
        name=f"random (mean of {seeds} seeds)",
        apgr=float(np.mean(apgrs)),
        cpt50=_mean_or_none([r.cpt50 for r in runs]),
        cpt80=_mean_or_none([r.cpt80 for r in runs]),
        cost_at_95=_mean_or_none([r.cost_at_95 for r in runs]),
        curve=mean_curve,
        n=pair.n,
        apgr_std=float(np.std(apgrs)),
    )


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    # A mean over the seeds that reached the target would flatter the router; all or nothing.
    return float(np.mean(known)) if known and len(known) == len(values) else None


# N-model routing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """Quality and cost of every row (n) under every model (m); finite numbers only."""

    models: tuple[str, ...]
    quality: FloatArray  # (n, m)
    cost: FloatArray  # (n, m)

    def __post_init__(self) -> None:
        shape = (self.quality.shape[0], len(self.models))
        if self.quality.shape != shape or self.cost.shape != shape or shape[0] == 0:
            raise ValueError(f"quality and cost must both be (rows > 0, {len(self.models)}) arrays")
        if not (np.all(np.isfinite(self.quality)) and np.all(np.isfinite(self.cost))):
            raise ValueError("Outcomes hold finite numbers only: drop the NaN rows first")


@dataclass(frozen=True)
class Frontier:
    """A lambda sweep: one (mean cost, mean quality) point per lambda, and its non-dominated subset."""

    name: str
    lambdas: FloatArray
    cost: FloatArray
    quality: FloatArray
    pareto: IntArray  # indices into cost/quality, by increasing cost


@dataclass(frozen=True)
class ModelPoint:
    model: str
    cost: float
    quality: float


def single_model_points(outcomes: Outcomes) -> list[ModelPoint]:
    q, c = outcomes.quality.mean(axis=0), outcomes.cost.mean(axis=0)
    return [ModelPoint(m, float(c[j]), float(q[j])) for j, m in enumerate(outcomes.models)]


def choose(success: FloatArray, cost: FloatArray, lam: float) -> IntArray:
    """Per row, the model maximising P(success) - lam x cost; among (near-)ties the cheapest."""
    value = success - lam * cost
    best = value.max(axis=1, keepdims=True)
    tied = value >= best - 1e-12
    return np.asarray(np.argmin(np.where(tied, cost, np.inf), axis=1), dtype=np.intp)


def lambda_frontier(name: str, outcomes: Outcomes, success: FloatArray) -> Frontier:
    """Sweep lambda over the values where some row changes its choice (thinned to quantiles)."""
    if success.shape != outcomes.quality.shape:
        raise ValueError(f"success is {success.shape}, outcomes are {outcomes.quality.shape}")
    lambdas = _lambda_grid(success, outcomes.cost)
    rows = np.arange(success.shape[0])
    costs, qualities = [], []
    for lam in lambdas:
        picked = choose(success, outcomes.cost, float(lam))
        costs.append(outcomes.cost[rows, picked].mean())
        qualities.append(outcomes.quality[rows, picked].mean())
    cost, quality = np.array(costs), np.array(qualities)
    return Frontier(name, lambdas, cost, quality, pareto_indices(cost, quality))


def _lambda_grid(success: FloatArray, cost: FloatArray) -> FloatArray:
    m = success.shape[1]
    i, j = np.triu_indices(m, 1)
    dp, dc = success[:, i] - success[:, j], cost[:, i] - cost[:, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        breaks = dp / dc
    breaks = breaks[np.isfinite(breaks) & (breaks > 0)]
    if breaks.size == 0:
        return np.array([0.0])
    # Evaluate just past each breakpoint (thinned to quantiles when there are many), plus 0 and
    # one beyond the largest, where every row takes its cheapest model.
    if breaks.size > _MAX_LAMBDAS:
        breaks = np.quantile(breaks, np.linspace(0.0, 1.0, _MAX_LAMBDAS))
    grid = np.unique(np.concatenate(([0.0], breaks * (1 + 1e-9), [float(breaks.max()) * 2 + 1.0])))
    return grid.astype(np.float64)


def pareto_indices(cost: FloatArray, quality: FloatArray) -> IntArray:
    """Indices of the points no other point beats on both cost (lower) and quality (higher), by cost."""
    order = np.lexsort((-quality, cost))  # by cost, then best quality first
    kept: list[int] = []
    best = -np.inf
    for k in order:
        if quality[k] > best:
            kept.append(int(k))
            best = float(quality[k])
    return np.array(kept, dtype=np.intp)


def cheapest_reaching(frontier: Frontier, target_quality: float) -> float | None:
    """The smallest mean cost on the frontier's points with quality >= target (no interpolation)."""
    ok = frontier.quality >= target_quality
    return float(frontier.cost[ok].min()) if ok.any() else None
