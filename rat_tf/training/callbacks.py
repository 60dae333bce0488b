"""The trainer's Keras callbacks: the metrics CSV, the step limit, checkpoints and TensorBoard.

    callbacks = training_callbacks(model_dir, restore_dir, remaining_steps, csv_keys)
    model.fit(..., callbacks=callbacks)

Order matters at an epoch end: the finiteness check first (non-finite weights are never
saved), then the CSV row, then the checkpoint. A run killed between the last two redoes the
epoch and rewrites its row (`truncate_csv`), so the CSV has every epoch once.
"""

from __future__ import annotations

from collections.abc import Sequence
import csv
import importlib.util
import os

from absl import logging
import keras

from rat_tf.training import fault_tolerance

BACKUP_SUBDIR = "backup"
METRICS_CSV = "metrics.csv"
TENSORBOARD_SUBDIR = "tensorboard"


def truncate_csv(path: str, first_epoch: int) -> None:
    """Drops CSV rows of epochs >= first_epoch (re-run after a resume), keeping the header."""
    if not os.path.exists(path):
        return
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < first_epoch]
    if len(kept) != len(rows):
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(kept)


class CSVLogger(keras.callbacks.CSVLogger):
    """CSVLogger with the columns fixed up front.

    Keras takes the columns from the first epoch's logs, so validation metrics that first
    appear later (validation_freq > 1) would be dropped.
    """

    def __init__(self, filename: str, keys: Sequence[str]):
        super().__init__(filename, append=True)
        self._fixed_keys = list(keys)

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted(set(self._fixed_keys) | set(logs or {}))
        super().on_epoch_end(epoch, logs)


class StopAfterSteps(keras.callbacks.Callback):
    """Stops training after exactly `steps` more batches (the last epoch may be partial)."""

    def __init__(self, steps: int):
        super().__init__()
        self._remaining = int(steps)

    def on_train_batch_end(self, batch, logs=None):
        self._remaining -= 1
        if self._remaining <= 0:
            self.model.stop_training = True


def tensorboard_installed() -> bool:
    # tf.summary.scalar, which keras.callbacks.TensorBoard writes with, lives in tensorboard.
    return importlib.util.find_spec("tensorboard") is not None


def metric_keys(validate: bool, pgd: bool) -> list[str]:
    """The columns of metrics.csv."""
    keys = ["accuracy", "loss"]
    if validate:
        keys += ["val_accuracy", "val_loss"] + (["val_pgd_accuracy"] if pgd else [])
    return keys


def training_callbacks(write_dir: str, restore_dir: str, remaining_steps: int,
                       keys: Sequence[str], extra: Sequence[keras.callbacks.Callback] = ()
                       ) -> list[keras.callbacks.Callback]:
    """The callbacks of a training run, in the order they must run.

    Args:
      write_dir: where metrics.csv, the checkpoint and TensorBoard logs are written.
      restore_dir: the model directory whose checkpoint every worker resumes from.
      remaining_steps: the steps still to train.
      keys: the metrics.csv columns.
      extra: the caller's callbacks, run after the step limit.
    """
    callbacks = [
        fault_tolerance.StopOnNonFiniteLoss(),
        CSVLogger(os.path.join(write_dir, METRICS_CSV), keys),
        fault_tolerance.AtomicBackupAndRestore(
            os.path.join(write_dir, BACKUP_SUBDIR),
            restore_dir=os.path.join(restore_dir, BACKUP_SUBDIR)),
        StopAfterSteps(remaining_steps),
        *extra,
    ]
    if tensorboard_installed():
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(write_dir, TENSORBOARD_SUBDIR)))
    else:
        logging.warning("the tensorboard package is not installed: no TensorBoard logs "
                        "(pip install -r requirements.txt installs it)")
    return callbacks
