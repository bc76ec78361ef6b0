"""Metrics on tiny hand-computed cases: exact curves, APGR, CPT, cost at 95%, and the N-model frontier."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.offline import metrics
from sidecar.offline.metrics import DegeneratePairError, Outcomes, Pair


def arr(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


# Four rows. Gain of the strong model per row: +1, 0, +1, -1. Strong-only quality 0.75, weak-only 0.5.
# The strong model costs 1.0 a call, the weak one 0.1.
PAIR = Pair(
    strong_quality=arr(1, 1, 1, 0),
    weak_quality=arr(0, 1, 0, 1),
    strong_cost=arr(1, 1, 1, 1),
    weak_cost=arr(0.1, 0.1, 0.1, 0.1),
)


def test_oracle_curve_points_follow_tie_groups_and_pgr_can_exceed_one() -> None:
    curve = metrics.routing_curve(PAIR, metrics.oracle_scores(PAIR))
    # Scores 1,0,1,-1: thresholds fall after {rows 1,3}, {row 2}, {row 4}.
    assert curve.strong_share.tolist() == [0.0, 0.5, 0.75, 1.0]
    assert curve.quality.tolist() == [0.5, 1.0, 1.0, 0.75]
    assert curve.pgr.tolist() == [0.0, 2.0, 2.0, 1.0]
    assert curve.cost is not None
    assert curve.cost.tolist() == pytest.approx([0.1, 0.55, 0.775, 1.0])


def test_oracle_metrics_exact() -> None:
    m = metrics.pair_metrics("oracle", PAIR, metrics.oracle_scores(PAIR))
    # Trapezoids: 0.5 x (0 + 2) / 2 + 0.25 x (2 + 2) / 2 + 0.25 x (2 + 1) / 2
    assert m.apgr == pytest.approx(1.375)
    assert m.cpt50 == pytest.approx(0.125)  # PGR 0 -> 2 over share 0 -> 0.5: reaches 0.5 a quarter along
    assert m.cpt80 == pytest.approx(0.2)
    # Target 0.95 x 0.75 = 0.7125, reached 0.425 along the first segment: cost 0.1 + 0.425 x 0.45.
    assert m.cost_at_95 == pytest.approx(0.29125)
    assert m.n == 4


def test_constant_scores_are_one_tie_group_and_score_like_random() -> None:
    m = metrics.pair_metrics("constant", PAIR, arr(7, 7, 7, 7))
    assert m.curve.strong_share.tolist() == [0.0, 1.0]
    assert m.apgr == pytest.approx(0.5)
    assert m.cpt50 == pytest.approx(0.5)
    assert m.cpt80 == pytest.approx(0.8)
    # Quality 0.5 -> 0.75 and cost 0.1 -> 1.0 along one line: 0.7125 at t = 0.85, cost 0.865.
    assert m.cost_at_95 == pytest.approx(0.865)


def test_the_worst_router_gets_negative_apgr() -> None:
    m = metrics.pair_metrics("reverse", PAIR, -metrics.oracle_scores(PAIR))
    assert m.curve.pgr.tolist() == [0.0, -1.0, -1.0, 1.0]
    assert m.apgr == pytest.approx(-0.375)
    assert m.cpt50 == pytest.approx(0.875)


def test_a_perfect_router_matches_the_oracle_and_random_is_about_half() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    strong = (rng.random(n) < 0.85).astype(np.float64)
    weak = np.where(rng.random(n) < 0.7, strong, 0.0)  # the weak model never beats the strong one here
    pair = Pair(strong, weak)
    oracle = metrics.pair_metrics("oracle", pair, metrics.oracle_scores(pair))
    perfect = metrics.pair_metrics("perfect", pair, (strong > weak).astype(np.float64) + rng.random(n) * 0.1)
    assert perfect.apgr == pytest.approx(oracle.apgr, abs=1e-9)
    share_needed = float(np.mean(strong > weak))
    assert oracle.cpt80 == pytest.approx(0.8 * share_needed)
    random = metrics.random_metrics(pair, seed=0)
    assert random.name == "random (mean of 10 seeds)"
    assert 0.47 < random.apgr < 0.53
    assert random.apgr_std is not None
    assert random.apgr_std < 0.05
    assert random.cpt50 is not None
    assert 0.4 < random.cpt50 < 0.6
    assert random.cost_at_95 is None  # no costs in this pair
    assert random.curve.strong_share.tolist() == (np.arange(n + 1) / n).tolist()


def test_equal_strong_and_weak_quality_is_a_clear_error_not_a_division_by_zero() -> None:
    with pytest.raises(DegeneratePairError, match=r"same mean quality \(0.5\) on these 2 rows: PGR"):
        Pair(arr(1, 0), arr(0, 1))


def test_pairs_and_scores_refuse_nan_and_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="drop the NaN rows first"):
        Pair(arr(1, np.nan), arr(0, 0))
    with pytest.raises(ValueError, match="one entry per row"):
        Pair(arr(1, 1), arr(0))
    with pytest.raises(ValueError, match="both costs or neither"):
        Pair(arr(1), arr(0), strong_cost=arr(1))
    with pytest.raises(ValueError, match="3 scores for 4 rows"):
        metrics.routing_curve(PAIR, arr(1, 2, 3))
    with pytest.raises(ValueError, match="finite"):
        metrics.routing_curve(PAIR, arr(1, 2, np.inf, 0))


def test_cost_at_95_is_none_when_unreachable_or_without_costs() -> None:
    # Quality on a negative scale: 95% of -1 is -0.95, above anything any routing reaches.
    negative = Pair(arr(-1, -1), arr(-2, -2), arr(1, 1), arr(0.1, 0.1))
    assert metrics.pair_metrics("x", negative, arr(1, 0)).cost_at_95 is None
    assert metrics.pair_metrics("x", Pair(arr(1, 1), arr(0, 1)), arr(1, 0)).cost_at_95 is None


# N models: A (cost 1), B (cost 2), C (cost 10). Row 1: everyone right. Row 2: only C right.
OUTCOMES = Outcomes(
    models=("A", "B", "C"),
    quality=np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]),
    cost=np.array([[1.0, 2.0, 10.0], [1.0, 2.0, 10.0]]),
)


def test_choose_takes_the_best_value_and_breaks_ties_toward_the_cheaper_model() -> None:
    assert metrics.choose(OUTCOMES.quality, OUTCOMES.cost, 0.0).tolist() == [0, 2]
    assert metrics.choose(OUTCOMES.quality, OUTCOMES.cost, 1.0).tolist() == [0, 0]


def test_oracle_frontier_exact() -> None:
    frontier = metrics.lambda_frontier("oracle", OUTCOMES, OUTCOMES.quality)
    points = sorted(set(zip(frontier.cost.tolist(), frontier.quality.tolist(), strict=True)))
    assert points == [(1.0, 0.5), (5.5, 1.0)]
    pareto = list(
        zip(frontier.cost[frontier.pareto].tolist(), frontier.quality[frontier.pareto].tolist(), strict=True)
    )
    assert pareto == [(1.0, 0.5), (5.5, 1.0)]
    assert metrics.cheapest_reaching(frontier, 0.95) == 5.5
    assert metrics.cheapest_reaching(frontier, 1.01) is None
    singles = metrics.single_model_points(OUTCOMES)
    assert [(s.model, s.cost, s.quality) for s in singles] == [
        ("A", 1.0, 0.5),
        ("B", 2.0, 0.5),
        ("C", 10.0, 1.0),
    ]


def test_a_predictor_that_overrates_the_middle_model_pays_more_for_nothing() -> None:
    success = np.array([[0.5, 0.9, 0.95], [0.5, 0.9, 0.95]])  # thinks B is nearly as good as C, cheaper
    frontier = metrics.lambda_frontier("router", OUTCOMES, success)
    points = set(zip(frontier.cost.tolist(), frontier.quality.tolist(), strict=True))
    assert points == {(10.0, 1.0), (2.0, 0.5), (1.0, 0.5)}
    assert frontier.cost[frontier.pareto].tolist() == [1.0, 10.0]  # (2.0, 0.5) is dominated by (1.0, 0.5)


def test_pareto_indices_keep_only_non_dominated_points_by_cost() -> None:
    cost, quality = arr(3, 1, 2, 2, 4), arr(0.9, 0.5, 0.5, 0.8, 0.85)
    assert metrics.pareto_indices(cost, quality).tolist() == [1, 3, 0]
