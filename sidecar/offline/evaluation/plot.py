"""Draw an EvalReport as a PNG: cost/quality and PGR/strong-share curves, and the N-model frontier.

matplotlib is imported inside `plot_report`, with the Agg backend (no display needed), so neither
the sidecar nor `turnout eval` without --plot ever imports it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.offline.evaluation.cascade import CascadeReport
from sidecar.offline.evaluation.run import PAIR_ROLES, EvalReport, FrontierReport, PairReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

_STYLE = {"router": "C0", "random": "0.5", "length": "C1", "oracle": "C2"}


def _dash(role: str) -> str:
    # The router under test is drawn dashed and on top: it may coincide with a baseline (builtin:length).
    return "--" if role == "router" else "-"


def _z(role: str) -> int:
    return 3 if role == "router" else 2


def plot_report(report: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels: list[str] = []
    if report.pair is not None:
        if report.pair.strong_cost is not None:
            panels.append("pair-cost")
        panels.append("pair-pgr")
    if report.frontier is not None:
        panels.append("frontier")
    height = 4.8 + (1.6 if report.cascades else 0.0)  # room for the legend under the curves
    fig, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), height), squeeze=False)
    try:
        for ax, panel in zip(axes[0], panels, strict=True):
            if panel == "pair-cost":
                assert report.pair is not None
                _pair_cost(ax, report.pair)
            elif panel == "pair-pgr":
                assert report.pair is not None
                _pair_pgr(ax, report.pair)
            else:
                assert report.frontier is not None
                _frontier(ax, report.frontier)
            if panel != "pair-pgr":  # the cost/quality panels: cascades sit beside the routers
                _cascades(ax, report.cascades)
        title = Path(report.dataset).name + (f" ({report.split})" if report.split else "")
        fig.suptitle(f"{title}, {report.rows} rows")
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)


def _pair_cost(ax: Axes, pair: PairReport) -> None:
    for role, m in zip(PAIR_ROLES, pair.results, strict=True):
        assert m.curve.cost is not None
        ax.plot(
            m.curve.cost,
            m.curve.quality,
            color=_STYLE[role],
            label=m.name,
            lw=1.5,
            ls=_dash(role),
            zorder=_z(role),
        )
    ax.axhline(0.95 * pair.strong_quality, color="0.7", ls=":", lw=1, label="95% of strong quality")
    ax.set_xlabel("mean cost per prompt (USD)")
    ax.set_ylabel("mean quality")
    ax.set_title(f"{pair.strong} vs {pair.weak}", fontsize=9)
    ax.legend(fontsize=8)


def _pair_pgr(ax: Axes, pair: PairReport) -> None:
    for role, m in zip(PAIR_ROLES, pair.results, strict=True):
        ax.plot(
            m.curve.strong_share,
            m.curve.pgr,
            color=_STYLE[role],
            label=f"{m.name}: APGR {m.apgr:.3f}",
            lw=1.5,
            ls=_dash(role),
            zorder=_z(role),
        )
    ax.set_xlabel("share of calls to the strong model")
    ax.set_ylabel("PGR (share of the quality gap recovered)")
    ax.set_title("PGR vs strong share", fontsize=9)
    ax.legend(fontsize=8)


def _frontier(ax: Axes, frontier: FrontierReport) -> None:
    for sweep, color in ((frontier.oracle, _STYLE["oracle"]), (frontier.router, _STYLE["router"])):
        if sweep is None:
            continue
        p = sweep.pareto
        ax.plot(
            sweep.cost[p],
            sweep.quality[p],
            color=color,
            marker=".",
            ms=3,
            lw=1.5,
            label=f"{sweep.name} frontier",
        )
    for s in frontier.single:
        ax.scatter([s.cost], [s.quality], color="k", s=12)
        ax.annotate(s.model, (s.cost, s.quality), fontsize=6, xytext=(3, 2), textcoords="offset points")
    positive = min(s.cost for s in frontier.single) > 0  # a log axis cannot show a free model
    ax.set_xscale("log" if positive else "linear")
    ax.set_xlabel("mean cost per prompt (USD" + (", log)" if positive else ")"))
    ax.set_ylabel("mean quality")
    ax.set_title(f"{len(frontier.models)}-model cost/quality", fontsize=9)
    ax.legend(fontsize=8)


def _cascades(ax: Axes, cascades: Sequence[CascadeReport]) -> None:
    if not cascades:
        return
    for i, c in enumerate(cascades):
        color = f"C{4 + i % 6}"
        ax.plot(
            [p.cost for p in c.curve],
            [p.quality for p in c.curve],
            color=color,
            marker="s",
            ms=4,
            lw=1,
            label="cascade " + _short(c.spec),
        )
        ax.scatter([c.point.cost], [c.point.quality], color=color, marker="*", s=80, zorder=4)
    # under the panel: inside it, the routers' and the cascades' entries cover the curves
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)


def _short(spec: str) -> str:
    """A cascade's models without their organisation prefixes (`mistralai/`), so the legend fits."""
    return re.sub(r"[^+>@/\s]+/", "", spec)
