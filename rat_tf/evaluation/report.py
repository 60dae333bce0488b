"""Evaluation reports: JSON (every number), a markdown table like the paper's, PNG sweep plots.

All files are written atomically (`rat_tf.files`).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Optional

from rat_tf.evaluation.suite import REGISTRY
from rat_tf.files import atomic_write, atomic_write_text

COLUMNS = (("clean", "Clean"), *((spec.name, spec.title) for spec in REGISTRY.values()),
           ("autoattack", "AutoAttack"), ("worst_case", "Worst case"))


def _percent(value: Optional[float]) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def markdown_table(rows: Mapping[str, Mapping[str, Any]], pgd_steps: Optional[int] = None) -> str:
    """A Table-1-like markdown table: one row per model, accuracy (%) per attack.

    Args:
      rows: model name -> the `summary()` of its `RobustnessResult` (attack -> {"accuracy": ...}).
      pgd_steps: shown in the PGD column header.
    """
    present = [(key, title) for key, title in COLUMNS if any(key in r for r in rows.values())]
    header = [f"PGD-{pgd_steps}" if key == "pgd" and pgd_steps else title for key, title in present]
    lines = ["| model | " + " | ".join(header) + " |", "|---|" + "---:|" * len(present)]
    for model, row in rows.items():
        cells = [_percent(row[key]["accuracy"]) if key in row else "–" for key, _ in present]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_json(path: str, report: Mapping[str, Any]) -> str:
    def default(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")
    return atomic_write_text(path, json.dumps(report, indent=2, sort_keys=True, default=default) + "\n")


def plot_curve(path: str, curves: Mapping[str, Mapping[float, float]], xlabel: str, title: str,
               x_scale: float = 1.0) -> str:
    """A line plot of accuracy (%) against a swept parameter, saved atomically as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=120)
    for label, curve in curves.items():
        xs = sorted(curve)
        ax.plot([x * x_scale for x in xs], [100 * curve[x] for x in xs], marker="o", ms=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"), mode="wb")
    plt.close(fig)
    return os.path.abspath(path)
