"""Render an EvalReport: the human text report (one table per comparison) and the JSON document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sidecar.offline.evaluation.cascade import CascadePoint, CascadeReport
from sidecar.offline.evaluation.run import PAIR_ROLES, EvalReport, FrontierReport, PairReport
from sidecar.offline.metrics import Curve, Frontier, PairMetrics

JSON_FORMAT = "turnout-eval/1"


def render_text(report: EvalReport) -> str:
    lines = [f"dataset: {report.dataset}" + (f" (split {report.split})" if report.split else "")]
    lines.append(
        f"rows: {report.rows} evaluated"
        + (
            f", {report.deduplicated} dropped as duplicates of --dedupe-against"
            if report.deduplicated
            else ""
        )
        + (f", {report.skipped_malformed} malformed rows skipped" if report.skipped_malformed else "")
    )
    lines.append(f"router: {report.router_name}" + (" (default)" if report.router_is_default else ""))
    lines.extend(f"note: {note}" for note in report.notes)
    if report.pair is not None:
        lines += ["", *_pair_text(report.pair)]
    if report.frontier is not None:
        lines += ["", *_frontier_text(report.frontier)]
    for cascade in report.cascades:
        lines += ["", *_cascade_text(cascade)]
    return "\n".join(lines) + "\n"


def _cascade_text(c: CascadeReport) -> list[str]:
    top = c.spec.rpartition(">")[2].strip()
    out = [f"cascade {c.spec} (answers compared as {c.agree}) on {c.rows} rows"]
    if c.dropped:
        out[0] += f" ({c.dropped} rows without every model's score and cost left out)"
    out.append(f"{top} alone: quality {c.top_quality:.4f}, mean cost {c.top_cost:.6g} USD")
    rows = [
        ("first stage needs", "quality", "vs top (points)", "mean cost (USD)", "cost vs top", "escalated")
    ]
    for p in c.curve:
        mark = " (as written)" if p.need == c.point.need else ""
        rows.append(
            (
                f"{p.need} agreeing{mark}",
                f"{p.quality:.4f}",
                f"{100 * (p.quality - c.top_quality):+.2f}",
                f"{p.cost:.6g}",
                _pct(p.cost / c.top_cost if c.top_cost > 0 else None),
                _pct(p.escalated),
            )
        )
    out.extend(_table(rows))
    out.append(
        "every call a stage makes is paid for, accepted or not; escalated: rows the first stage passed on"
    )
    return out


def _pair_text(pair: PairReport) -> list[str]:
    out = [f"strong: {pair.strong}  quality {pair.strong_quality:.4f}" + _usd(pair.strong_cost)]
    out.append(f"weak:   {pair.weak}  quality {pair.weak_quality:.4f}" + _usd(pair.weak_cost))
    out.append(f"costs: {pair.cost_source}")
    if pair.dropped:
        reasons = ", ".join(f"{reason}: {rows}" for reason, rows in pair.dropped.items())
        out.append(f"rows left out of this pair, by reason (a row can have several): {reasons}")
    header = ("router", "APGR", "CPT(50%)", "CPT(80%)", "cost@95%", "n rows")
    rows = [header]
    for role, m in zip(PAIR_ROLES, pair.results, strict=True):
        name = m.name if role != "router" else f"{m.name} (under test)"
        apgr = f"{m.apgr:.4f}" + (f" ±{m.apgr_std:.4f}" if m.apgr_std is not None else "")
        rows.append((name, apgr, _pct(m.cpt50), _pct(m.cpt80), _pct(m.cost_at_95), str(m.n)))
    out.extend(_table(rows))
    out.append(
        "CPT(x): smallest share of calls to the strong model reaching PGR x; "
        "cost@95%: cost of reaching 95% of the strong model's quality, as a share of strong-only cost"
    )
    return out


def _frontier_text(frontier: FrontierReport) -> list[str]:
    out = [f"N-model frontier: {len(frontier.models)} models on {frontier.rows} rows"]
    if frontier.dropped:
        out[0] += f" ({frontier.dropped} rows without every model's score and cost left out)"
    rows = [("model", "quality", "mean cost (USD)")]
    rows += [
        (s.model, f"{s.quality:.4f}", f"{s.cost:.6g}") for s in sorted(frontier.single, key=lambda s: s.cost)
    ]
    out.extend(_table(rows))
    target = f"95% of {frontier.best_single.model}'s quality"
    for name, curve, fraction in (
        ("router", frontier.router, frontier.router_cost_at_95),
        ("oracle", frontier.oracle, frontier.oracle_cost_at_95),
    ):
        if curve is None:
            continue
        top = int(curve.quality.argmax())
        out.append(
            f"{name}: best quality {curve.quality[top]:.4f} at {curve.cost[top]:.6g} USD/row; "
            f"cost of {target}: {_pct(fraction)} of its cost; {len(curve.pareto)} Pareto points"
        )
    return out


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    fmt = [
        r[0].ljust(widths[0]) + "  " + "  ".join(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))
        for r in rows
    ]
    return [fmt[0], "-" * len(fmt[0]), *fmt[1:]]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _usd(value: float | None) -> str:
    return "" if value is None else f", mean cost {value:.6g} USD"


def to_json(report: EvalReport) -> dict[str, Any]:
    """Every number of the report, curves included, as plain JSON types."""
    return {
        "format": JSON_FORMAT,
        "dataset": report.dataset,
        "split": report.split,
        "rows": report.rows,
        "deduplicated": report.deduplicated,
        "skipped_malformed": report.skipped_malformed,
        "skipped_problems": [
            {"file": f, "line": p.line, "problem": p.message} for f, p in report.skipped_problems
        ],
        "router": {"spec": report.router, "name": report.router_name, "default": report.router_is_default},
        "notes": list(report.notes),
        "pair": None if report.pair is None else _pair_json(report.pair),
        "frontier": None if report.frontier is None else _frontier_json(report.frontier),
        "cascades": [_cascade_json(c) for c in report.cascades],
    }


def _cascade_json(c: CascadeReport) -> dict[str, Any]:
    def point(p: CascadePoint) -> dict[str, Any]:
        return {"need": p.need, "quality": p.quality, "mean_cost": p.cost, "escalated": p.escalated}

    return {
        "spec": c.spec,
        "agree": c.agree,
        "rows": c.rows,
        "dropped": c.dropped,
        "as_written": point(c.point),
        "curve": [point(p) for p in c.curve],
        "top_quality": c.top_quality,
        "top_mean_cost": c.top_cost,
    }


def _pair_json(pair: PairReport) -> dict[str, Any]:
    return {
        "strong": pair.strong,
        "weak": pair.weak,
        "rows": pair.rows,
        "dropped": dict(pair.dropped),
        "strong_quality": pair.strong_quality,
        "weak_quality": pair.weak_quality,
        "strong_mean_cost": pair.strong_cost,
        "weak_mean_cost": pair.weak_cost,
        "cost_source": pair.cost_source,
        "label_types": list(pair.label_types),
        "routers": [_metrics_json(role, m) for role, m in zip(PAIR_ROLES, pair.results, strict=True)],
    }


def _metrics_json(role: str, m: PairMetrics) -> dict[str, Any]:
    return {
        "role": role,
        "name": m.name,
        "n": m.n,
        "apgr": m.apgr,
        "apgr_std": m.apgr_std,
        "cpt50": m.cpt50,
        "cpt80": m.cpt80,
        "cost_at_95": m.cost_at_95,
        "curve": _curve_json(m.curve),
    }


def _curve_json(curve: Curve) -> dict[str, Any]:
    return {
        "strong_share": curve.strong_share.tolist(),
        "quality": curve.quality.tolist(),
        "pgr": curve.pgr.tolist(),
        "mean_cost": None if curve.cost is None else curve.cost.tolist(),
    }


def _frontier_json(frontier: FrontierReport) -> dict[str, Any]:
    return {
        "models": list(frontier.models),
        "rows": frontier.rows,
        "dropped": frontier.dropped,
        "single_models": [
            {"model": s.model, "quality": s.quality, "mean_cost": s.cost} for s in frontier.single
        ],
        "best_single_model": frontier.best_single.model,
        "router_cost_at_95": frontier.router_cost_at_95,
        "oracle_cost_at_95": frontier.oracle_cost_at_95,
        "label_types": list(frontier.label_types),
        "router": None if frontier.router is None else _sweep_json(frontier.router),
        "oracle": _sweep_json(frontier.oracle),
    }


def _sweep_json(frontier: Frontier) -> dict[str, Any]:
    return {
        "lambda": frontier.lambdas.tolist(),
        "mean_cost": frontier.cost.tolist(),
        "quality": frontier.quality.tolist(),
        "pareto": frontier.pareto.tolist(),
    }
