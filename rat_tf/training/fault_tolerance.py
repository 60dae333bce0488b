"""Training that survives faults: atomic epoch checkpoints, and a clean stop on a non-finite loss.

    callbacks = [fault_tolerance.StopOnNonFiniteLoss(),       # before the checkpoint callback
                 fault_tolerance.AtomicBackupAndRestore("run/backup")]
    model.fit(..., callbacks=callbacks)       # a killed run, started again, resumes

`keras.callbacks.BackupAndRestore` writes `latest.weights.h5` in place and then
`training_metadata.json` (the epoch to resume at). A process killed while it writes leaves a
truncated weights file that cannot be loaded, and one killed between the two files leaves the
weights of one epoch with the epoch number of the one before. `AtomicBackupAndRestore` writes
the same two files, each under a temporary name renamed into place (atomic on POSIX file
systems), and records the optimizer step next to the epoch. On restore the weights are the
truth: when the record's step is not the restored optimizer's step, the record is one save
behind and the epoch is the next one.

`StopOnNonFiniteLoss` raises `NonFiniteLossError` at the first batch whose loss is NaN or
infinite, and at the end of an epoch whose weights are not finite. Raising (rather than
`keras.callbacks.TerminateOnNaN`'s `stop_training = True`) ends `fit` before any `on_epoch_end`
runs, so the checkpoint of the last good epoch stays as it is, and the caller gets an error.
"""

from __future__ import annotations

import json
import math
import os
from typing import NamedTuple

import keras
import numpy as np

from rat_tf import files

WEIGHTS_FILE = "latest.weights.h5"
METADATA_FILE = "training_metadata.json"
PARTIAL_PREFIX = ".partial-"  # + pid + WEIGHTS_SUFFIX: the weights while they are written
WEIGHTS_SUFFIX = ".weights.h5"  # save_weights wants a name ending in it


class BackupState(NamedTuple):
    """Where a restored checkpoint left training.

    Attributes:
      step: the optimizer's step count (batches trained).
      epoch: the Keras epoch to continue at (the number of epochs completed).
    """

    step: int
    epoch: int


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss (or weights)."""


def _optimizer_step(model: keras.Model) -> int:
    optimizer = getattr(model, "optimizer", None)
    return 0 if optimizer is None else int(optimizer.iterations.numpy())


def has_backup(backup_dir: str) -> bool:
    """Whether `backup_dir` holds a checkpoint."""
    return os.path.exists(os.path.join(backup_dir, WEIGHTS_FILE))


def restore(model: keras.Model, backup_dir: str) -> BackupState | None:
    """Loads the checkpoint in `backup_dir` into a built, compiled `model`.

    Args:
      model: the model (with its optimizer, which is built here if needed).
      backup_dir: a directory written by `AtomicBackupAndRestore` (or by Keras'
        `BackupAndRestore`, whose epoch record is trusted as it is).

    Returns:
      The `BackupState`, or None when `backup_dir` holds no checkpoint.

    Raises:
      OSError: the weights file cannot be read.
    """
    weights = os.path.join(backup_dir, WEIGHTS_FILE)
    if not os.path.exists(weights):
        return None
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(weights)
    step = _optimizer_step(model)
    record = files.read_json_object(os.path.join(backup_dir, METADATA_FILE))
    if record is None:
        # Weights renamed into place, record not yet: the first save of a run from epoch 0.
        return BackupState(step, 1)
    epoch = int(record.get("epoch", 0))
    if "step" in record and int(record["step"]) != step:
        epoch += 1  # the weights are one save ahead of the record
    return BackupState(step, epoch)


class AtomicBackupAndRestore(keras.callbacks.Callback):
    """An epoch checkpoint like `keras.callbacks.BackupAndRestore`, but never half-written.

    At every epoch end it saves the weights (optimizer state included) and the epoch record,
    each under a temporary name renamed into place (local file systems). When `fit` starts it
    restores the checkpoint in `restore_dir`, if there is one; `fit` must then be called with
    `initial_epoch` set to the epoch that checkpoint ends at (`restore(...).epoch`; the
    trainer does so), which is checked at the first epoch. Public Keras APIs only.

    Args:
      backup_dir: where checkpoints are written.
      restore_dir: where the checkpoint to resume from is read (default: `backup_dir`). A
        non-chief worker of a multi-worker run writes to a scratch directory but resumes from the
        chief's checkpoint, like every worker.
      delete_checkpoint: delete the checkpoint files in `backup_dir` when training ends.
    """

    def __init__(self, backup_dir: str, restore_dir: str | None = None,
                 delete_checkpoint: bool = False):
        super().__init__()
        self.backup_dir = backup_dir
        self.restore_dir = restore_dir or backup_dir
        self.delete_checkpoint = delete_checkpoint
        self._resumed: BackupState | None = None
        self._first_epoch = True

    def on_train_begin(self, logs=None):
        if not self.model.built:
            raise ValueError("AtomicBackupAndRestore needs a built model; call it on a batch "
                             "before fit()")
        self._resumed = restore(self.model, self.restore_dir)
        self._first_epoch = True
        # A run killed mid-save left its temporary files; this run is the directory's only writer.
        files.remove_leftovers(self.backup_dir, PARTIAL_PREFIX, WEIGHTS_SUFFIX)
        files.remove_leftovers(self.backup_dir, *files.temporary_names(METADATA_FILE))

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch and self._resumed is not None and epoch != self._resumed.epoch:
            raise ValueError(f"the checkpoint in {self.restore_dir} ends at epoch {self._resumed.epoch}, "
                             f"but fit starts at epoch {epoch}: call fit with "
                             f"initial_epoch={self._resumed.epoch}")
        self._first_epoch = False

    def on_epoch_end(self, epoch, logs=None):
        partial = os.path.join(self.backup_dir, f"{PARTIAL_PREFIX}{os.getpid()}{WEIGHTS_SUFFIX}")
        try:
            os.makedirs(self.backup_dir, exist_ok=True)
            self.model.save_weights(partial, overwrite=True)
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
            os.replace(partial, os.path.join(self.backup_dir, WEIGHTS_FILE))
            record = {"epoch": epoch + 1, "batch": 0, "step": _optimizer_step(self.model)}
            files.atomic_write_text(os.path.join(self.backup_dir, METADATA_FILE), json.dumps(record))
        except OSError as err:  # h5py's messages do not say which file
            reason = " ".join(str(err.strerror or err).split())
            raise OSError(f"cannot write the checkpoint in {self.backup_dir}: {reason}") from err
        finally:
            if os.path.exists(partial):
                os.remove(partial)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint:
            for name in (WEIGHTS_FILE, METADATA_FILE):
                path = os.path.join(self.backup_dir, name)
                if os.path.exists(path):
                    os.remove(path)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` on a NaN/inf loss, and at an epoch end with non-finite weights.

    Put it before the checkpoint callback in the callback list: its `on_epoch_end` then runs
    first, so non-finite weights are never saved.

    Args:
      hint: appended to the error message (e.g. where the last good checkpoint is).
    """

    def __init__(self, hint: str = ""):
        super().__init__()
        self.hint = hint
        self._epoch = 0

    def _fail(self, what: str) -> None:
        step = _optimizer_step(self.model)
        message = f"training stopped at step {step} (epoch {self._epoch + 1}): {what}"
        raise NonFiniteLossError(f"{message}; {self.hint}" if self.hint else message)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._fail(f"the training loss is {float(loss)}")

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._fail(f"the training loss is {float(loss)}")
        for weight in self.model.weights:
            value = np.asarray(weight.numpy() if hasattr(weight, "numpy") else weight)
            if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                self._fail(f"weight {weight.path} is not finite")
