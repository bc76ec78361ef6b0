"""money.png: accuracy against cost per route (target region shaded), and P50 / P95 latency.

Beside the measured routes, in grey and offline from the data: each model alone and the two oracles.

matplotlib comes with the `eval` extra. Without it, no plot is drawn and the report says nothing of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmarks.replay.figures import TARGET_ACCURACY_POINTS, TARGET_COST_REDUCTION


def plot(results: Mapping[str, Any], path: Path) -> str | None:
    """Write the figure to `path`; its file name, or None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError:
        return None
    figures = results["routes"]
    frontier = figures["frontier"]
    names = list(figures)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.4))

    floor = frontier["accuracy"] * 100 - TARGET_ACCURACY_POINTS
    target = Rectangle((0, floor), 1 - TARGET_COST_REDUCTION, 100 - floor, color="#2a9d8f", alpha=0.15)
    left.add_patch(target)
    left.annotate("target", (0.01, floor + 0.4), fontsize=8, color="#2a6f66")
    singles = results.get("single_models_offline", {})
    if singles:
        xs = [m["recorded_cost_vs_frontier"] for m in singles.values()]
        ys = [m["accuracy"] * 100 for m in singles.values()]
        left.scatter(xs, ys, s=14, color="#bbbbbb", label="each model alone (offline, recorded cost)")
    for name, o in results.get("oracles_offline", {}).items():
        x, y = o["recorded_cost_vs_frontier"], o["accuracy"] * 100
        left.scatter([x], [y], s=60, marker="*", color="#999999")
        left.annotate(f"oracle ({name})", (x, y), textcoords="offset points", xytext=(5, -10), fontsize=8)
    for name in names:
        f = figures[name]
        x = f["total_cost_usd"] / frontier["total_cost_usd"]
        y = f["accuracy"] * 100
        left.scatter([x], [y], s=45, zorder=3)
        left.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
    left.set_xlabel("cost relative to the frontier alone")
    left.set_ylabel("accuracy %")
    left.set_xlim(-0.02, 1.15)
    left.set_title("accuracy vs cost, measured through the sidecar")
    left.grid(alpha=0.3)
    if singles:
        left.legend(loc="lower right", fontsize=8)

    positions = list(range(len(names)))
    right.bar([i - 0.2 for i in positions], [figures[n]["p50_ms"] / 1000 for n in names], 0.4, label="P50")
    right.bar([i + 0.2 for i in positions], [figures[n]["p95_ms"] / 1000 for n in names], 0.4, label="P95")
    right.set_xticks(positions, names)
    right.set_ylabel("seconds, at the client")
    right.set_title("end-to-end latency")
    right.legend()
    right.grid(axis="y", alpha=0.3)

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name
