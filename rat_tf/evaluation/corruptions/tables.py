"""Scoring a classifier on corrupted sets (accuracy, mean per corruption, mCA) and the table."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from rat_tf import data as data_lib
from rat_tf.evaluation.corruptions.names import (
    CORRUPTIONS,
    DISPLAY_NAMES,
    canonical_name,
    check_severity,
)


def _sort_key(key: tuple[str, int]) -> tuple[int, str, int]:
    name, severity = key
    return (CORRUPTIONS.index(name) if name in CORRUPTIONS else len(CORRUPTIONS), name, severity)


def corruption_accuracy(
    predict_fn: Callable[[np.ndarray], Any],
    images_by_corruption: Mapping[tuple[str, int], Any],
    labels: Any,
    *,
    batch_size: int = 500,
) -> dict[str, Any]:
    """Accuracy per (corruption, severity), mean over severities per corruption, and mCA.

    Args:
      predict_fn: float32 images in [0, 1] (B, H, W, C) -> logits or probabilities (B, K), or
        predicted labels (B,); e.g. ``lambda x: model(x, training=False)``.
      images_by_corruption: {(name, severity): images (N, H, W, C)}, uint8 or float in [0, 1],
        as returned by `generate`, `load_npy_dir` or built from `load_tfds`.
      labels: (N,) integer labels, shared by every set.
      batch_size: images per `predict_fn` call.

    Returns:
      {"accuracy": {name: {severity: accuracy}}, "mean": {name: mean over its severities},
       "mca": mean of the per-corruption means, "num_examples": N}; accuracies in [0, 1],
      names in `CORRUPTIONS` order.

    Raises:
      ValueError: empty input, unknown names, or sizes that do not match the labels.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    labels = np.asarray(labels).reshape(-1)
    if not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0:
        raise ValueError(f"labels must be non-empty integers, got {labels.dtype} {labels.shape}")
    if not images_by_corruption:
        raise ValueError("images_by_corruption is empty")
    sets = {(canonical_name(n), check_severity(s)): images
            for (n, s), images in images_by_corruption.items()}
    accuracy: dict[str, dict[int, float]] = {}
    for name, severity in sorted(sets, key=_sort_key):
        images = sets[(name, severity)]
        if len(images) != len(labels):
            raise ValueError(f"{name} severity {severity}: {len(images)} images but "
                             f"{len(labels)} labels")
        correct = 0
        for start in range(0, len(labels), batch_size):
            batch = data_lib.to_float(np.asarray(images[start:start + batch_size]))
            outputs = np.asarray(predict_fn(batch))
            predicted = outputs.argmax(axis=-1) if outputs.ndim == 2 else outputs.reshape(-1)
            correct += int(np.sum(predicted == labels[start:start + batch_size]))
        accuracy.setdefault(name, {})[severity] = correct / len(labels)
    mean = {name: float(np.mean(list(by_severity.values())))
            for name, by_severity in accuracy.items()}
    return {"accuracy": accuracy, "mean": mean, "mca": float(np.mean(list(mean.values()))),
            "num_examples": int(len(labels))}


def markdown_table(rows: Mapping[str, Mapping[str, Any]] | Sequence[tuple[str, Mapping]]) -> str:
    """A Table-2-like markdown table: one row per model, accuracy (%) per corruption, mCA last.

    Args:
      rows: model name -> its `corruption_accuracy` result (a mapping, or (name, result)
        pairs). Cells are the means over severities; a corruption a model lacks shows "–".

    Returns:
      The table, one line per row, ending with a newline.
    """
    items = list(rows.items()) if isinstance(rows, Mapping) else list(rows)
    present: list[str] = []
    for _, result in items:
        for name in result.get("mean", {}):
            if name not in present:
                present.append(name)
    present.sort(key=lambda n: (CORRUPTIONS.index(n) if n in CORRUPTIONS else len(CORRUPTIONS), n))

    def percent(value: Any) -> str:
        return "–" if value is None or not math.isfinite(float(value)) else f"{100 * value:.2f}"

    header = [DISPLAY_NAMES.get(n, n) for n in present] + ["mCA"]
    lines = ["| model | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for model, result in items:
        cells = [percent(result.get("mean", {}).get(n)) for n in present]
        cells.append(percent(result.get("mca")))
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
