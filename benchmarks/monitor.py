"""Per-epoch clean and PGD accuracy on fixed subsets, and the best checkpoint by validation PGD.

`RobustnessCurves` is a Keras callback for the robust-overfitting study (`python -m
benchmarks.overfit`; `benchmarks/overfit_train.py` adds it to the trainer's callbacks):
at every epoch end it measures clean and PGD accuracy of the classifier (inference mode, the
project's in-graph `rat_tf.attacks.pgd`, fixed seeds so every epoch sees the same attack
randomness) on fixed named subsets, e.g. train / val / test of 1,000 images each, and appends
one entry to a JSON curve file (written atomically):

    {"epoch": 7, "step": 217, "seconds": 21.3, "train_clean": 61.2, "train_pgd": 33.0,
     "val_clean": 55.1, "val_pgd": 30.2, "test_clean": 54.0, "test_pgd": 29.1}

(accuracies in percent). When the selection key (default "val_pgd", never a test metric)
reaches a new maximum, the classifier's weights are saved atomically to `best_weights`; ties
keep the earlier epoch. The run's last weights are the model's own at the end of training.

Resuming: entries of epochs after `initial_epoch` are dropped (the checkpoint is older); an
entry missing for epoch `initial_epoch` itself (the run stopped after the checkpoint was written
but before the curve was) is measured at train begin, on the restored weights, which are that
epoch's.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from rat_tf import attacks, files

CURVE_KEYS = ("clean", "pgd")


def best_epoch(curve: Sequence[Mapping[str, Any]], key: str = "val_pgd") -> Optional[int]:
    """The epoch of the entry with the largest `key` (the earliest on ties; None if empty)."""
    best, best_value = None, -np.inf
    for entry in curve:
        value = entry.get(key)
        if value is not None and value > best_value:
            best, best_value = int(entry["epoch"]), value
    return best


def read_curve(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"curve": []}


class RobustnessCurves(keras.callbacks.Callback):
    """Measures clean / PGD accuracy on fixed subsets per epoch; keeps the best weights.

    Args:
      classifier: the keras model images -> logits (called with training=False).
      subsets: name -> (x, y), float32 images in [0, 1] (or uint8) and integer labels.
      pgd_config: the attack (`rat_tf.attacks.PGDConfig`), e.g. PGD-10, eps 8/255, step 2/255.
      curve_path: the JSON file of the curve.
      best_weights: where the best weights go (a name ending in .weights.h5); None: not kept.
      select: the key that picks the best epoch; must not be a test metric.
      initial_epoch: the Keras epoch fit starts from (a resumed run's `initial_epoch`).
      batch_size: images per attack call.
      seed: the attack seed (batch b of subset i uses (seed, 1000 * i + b) every epoch).
    """

    def __init__(self, classifier: keras.Model, subsets: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 pgd_config: attacks.PGDConfig, curve_path: str, best_weights: Optional[str] = None,
                 select: str = "val_pgd", initial_epoch: int = 0, batch_size: int = 250, seed: int = 0):
        super().__init__()
        if select.startswith("test"):
            raise ValueError(f"the best checkpoint must not be chosen on a test metric ({select!r})")
        if best_weights is not None and not best_weights.endswith(".weights.h5"):
            raise ValueError(f"best_weights must end in .weights.h5, got {best_weights!r}")
        self.classifier = classifier
        self.subsets = {name: (np.asarray(x), np.asarray(y).reshape(-1).astype(np.int32))
                        for name, (x, y) in subsets.items()}
        self.pgd_config = pgd_config
        self.curve_path = curve_path
        self.best_weights = best_weights
        self.select = select
        self.initial_epoch = int(initial_epoch)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.curve: list[dict[str, Any]] = []
        self._step_fn = None

    # -- measurement --------------------------------------------------------------------------

    def _compiled(self):
        if self._step_fn is None:
            classifier, config = self.classifier, self.pgd_config

            def logits_fn(images):
                return classifier(images, training=False)

            @tf.function(reduce_retracing=True)
            def correct(x, y, seed):
                x = tf.image.convert_image_dtype(x, tf.float32) if x.dtype == tf.uint8 else x
                clean = tf.argmax(logits_fn(x), -1, output_type=tf.int32) == y
                adv = attacks.pgd(logits_fn, x, y, config, seed).end
                robust = tf.argmax(logits_fn(adv), -1, output_type=tf.int32) == y
                return (tf.reduce_sum(tf.cast(clean, tf.int32)), tf.reduce_sum(tf.cast(robust, tf.int32)))

            self._step_fn = correct
        return self._step_fn

    def measure(self, name: str, x: np.ndarray, y: np.ndarray, index: int) -> dict[str, float]:
        """{"clean": %, "pgd": %} of the classifier on (x, y)."""
        correct = self._compiled()
        clean = robust = 0
        for b, start in enumerate(range(0, len(x), self.batch_size)):
            c, r = correct(tf.constant(x[start:start + self.batch_size]),
                           tf.constant(y[start:start + self.batch_size]),
                           tf.constant([self.seed, 1000 * index + b], tf.int32))
            clean, robust = clean + int(c), robust + int(r)
        return {"clean": round(100.0 * clean / len(x), 2), "pgd": round(100.0 * robust / len(x), 2)}

    def entry(self, epoch: int) -> dict[str, Any]:
        """The curve entry of the current weights, labelled `epoch` (1-based)."""
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": int(epoch)}
        try:
            row["step"] = int(self.model.optimizer.iterations.numpy())
        except (AttributeError, ValueError, TypeError):
            pass
        for i, (name, (x, y)) in enumerate(self.subsets.items()):
            for key, value in self.measure(name, x, y, i).items():
                row[f"{name}_{key}"] = value
        row["seconds"] = round(time.perf_counter() - started, 1)
        return row

    # -- bookkeeping --------------------------------------------------------------------------

    def _record(self, row: dict[str, Any]) -> None:
        self.curve = [r for r in self.curve if r["epoch"] != row["epoch"]] + [row]
        self.curve.sort(key=lambda r: r["epoch"])
        best = best_epoch(self.curve, self.select)
        # Weights first, then the curve: a run stopped in between re-measures this epoch.
        if self.best_weights and best == row["epoch"]:
            self._save_best(row["epoch"])
        self.write()

    def _save_best(self, epoch: int) -> None:
        directory = os.path.dirname(os.path.abspath(self.best_weights))
        os.makedirs(directory, exist_ok=True)
        partial = os.path.join(directory, f".partial-{os.getpid()}.weights.h5")
        self.classifier.save_weights(partial)
        os.replace(partial, self.best_weights)
        files.atomic_write_text(self.best_weights + ".json", json.dumps({"epoch": int(epoch)}) + "\n")

    def state(self) -> dict[str, Any]:
        best = best_epoch(self.curve, self.select)
        return {"select": self.select, "best_epoch": best, "curve": self.curve,
                "pgd": {"epsilon": self.pgd_config.epsilon, "step_size": self.pgd_config.step_size,
                        "num_steps": self.pgd_config.num_steps},
                "subsets": {name: int(len(y)) for name, (_, y) in self.subsets.items()}}

    def write(self) -> None:
        files.atomic_write_text(self.curve_path, json.dumps(self.state(), indent=1) + "\n")

    # -- Keras hooks --------------------------------------------------------------------------

    def on_train_begin(self, logs=None):
        kept = read_curve(self.curve_path).get("curve", [])
        self.curve = [r for r in kept if r["epoch"] <= self.initial_epoch]
        if self.initial_epoch and not any(r["epoch"] == self.initial_epoch for r in self.curve):
            self._record(self.entry(self.initial_epoch))

    def on_epoch_end(self, epoch, logs=None):
        row = self.entry(epoch + 1)
        self._record(row)
        text = " ".join(f"{k}={v}" for k, v in row.items() if k not in ("epoch", "step"))
        print(f"curves epoch {epoch + 1}: {text}", flush=True)
