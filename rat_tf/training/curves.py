"""Training curves: a PNG of metrics.csv (validation accuracies and training loss per epoch).

    plot_curves("runs/digits-rat/metrics.csv", "runs/digits-rat/curves.png")

The trainer writes `curves.png` next to metrics.csv at the end of every run (a resumed run that
only re-evaluates too). Matplotlib draws off-screen (the Agg canvas; pyplot's global state and
backend are left alone), and the file is replaced atomically.
"""

from __future__ import annotations

import csv
import io
import math
import os

from rat_tf import files

CURVES_PNG = "curves.png"

# (column, label) of the accuracy panel and of the loss panel; missing columns are left out.
ACCURACY_CURVES = (("val_accuracy", "clean (validation)"), ("val_pgd_accuracy", "PGD (validation)"),
                   ("accuracy", "training points"))
LOSS_CURVES = (("loss", "training loss"),)


def read_metrics(csv_path: str) -> dict[str, list[float]]:
    """{column: values} of a metrics.csv, one value per row; missing values ("NA", "") are NaN.

    Raises:
      OSError: the file cannot be read.
    """
    with open(csv_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    columns: dict[str, list[float]] = {}
    for name in (rows[0].keys() if rows else ()):
        columns[name] = [_number(row.get(name)) for row in rows]
    return columns


def _number(text: str | None) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def plot_curves(csv_path: str, png_path: str) -> str | None:
    """Draws the curves of `csv_path` into `png_path` (atomically).

    Left: clean and PGD validation accuracy (and the accuracy on the training points) per
    epoch; right: the training loss. Columns that are missing (no validation, or
    eval_pgd_steps=0) are left out; a validation curve joins the epochs that were validated.

    Args:
      csv_path: a metrics.csv (columns epoch, accuracy, loss, and maybe val_accuracy, val_loss,
        val_pgd_accuracy).
      png_path: the PNG to write.

    Returns:
      The absolute path written, or None when the CSV has no rows (nothing is written).

    Raises:
      OSError: the CSV cannot be read or the PNG cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
    from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
    from matplotlib.ticker import MaxNLocator  # pylint: disable=g-import-not-at-top

    metrics = read_metrics(csv_path)
    if not metrics or not metrics.get("epoch"):
        return None
    # Keras numbers epochs from 0 in the CSV and from 1 in its progress lines.
    epochs = [e + 1 if not math.isnan(e) else i + 1 for i, e in enumerate(metrics["epoch"])]

    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    accuracy_axes, loss_axes = figure.subplots(1, 2)
    for axes, curves, title in ((accuracy_axes, ACCURACY_CURVES, "accuracy"),
                                (loss_axes, LOSS_CURVES, "loss")):
        for column, label in curves:
            values = metrics.get(column)
            if values and not all(math.isnan(v) for v in values):
                style = "--" if column == "accuracy" else "-"
                points = [(e, v) for e, v in zip(epochs, values) if not math.isnan(v)]
                axes.plot(*zip(*points), style, marker="o", markersize=3, label=label)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_title(title)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    accuracy_axes.set_ylim(0.0, 1.0)
    figure.suptitle(os.path.basename(os.path.dirname(os.path.abspath(csv_path))) or "training")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return files.atomic_write(png_path, lambda f: f.write(buffer.getvalue()), mode="wb")
