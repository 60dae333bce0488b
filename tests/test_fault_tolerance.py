"""Atomic epoch checkpoints and the non-finite-loss stop (rat_tf/fault_tolerance.py)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from rat_tf.training import fault_tolerance as ft

from helpers import tiny_cnn


def compiled_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = tiny_cnn(seed=seed)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model(np.zeros((1, 8, 8, 1), np.float32))
    return model


def data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1), np.float32), rng.integers(0, 10, n).astype(np.int32)


def fit(model, callbacks, epochs, x=None, y=None, initial_epoch=0):
    if x is None:
        x, y = data()
    return model.fit(x, y, batch_size=8, epochs=epochs, initial_epoch=initial_epoch,
                     callbacks=callbacks, verbose=0, shuffle=False)


def record(backup_dir):
    with open(os.path.join(backup_dir, ft.METADATA_FILE)) as f:
        return json.load(f)


def test_checkpoint_records_epoch_and_step_and_leaves_no_partial_files(tmp_path):
    backup = str(tmp_path / "backup")
    model = compiled_model()
    fit(model, [ft.AtomicBackupAndRestore(backup)], epochs=2)
    assert sorted(os.listdir(backup)) == sorted([ft.METADATA_FILE, ft.WEIGHTS_FILE])
    assert record(backup) == {"epoch": 2, "batch": 0, "step": 8}

    fresh = compiled_model(seed=1)
    assert ft.restore(fresh, backup) == ft.BackupState(step=8, epoch=2)
    for got, want in zip(fresh.weights, model.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert ft.restore(compiled_model(), str(tmp_path / "none")) is None
    assert not ft.has_backup(str(tmp_path / "none")) and ft.has_backup(backup)


def test_a_resumed_run_removes_what_a_killed_save_left_and_nothing_else(tmp_path):
    backup = tmp_path / "backup"
    fit(compiled_model(), [ft.AtomicBackupAndRestore(str(backup))], epochs=1)
    leftovers = [f".partial-123{ft.WEIGHTS_SUFFIX}", f".{ft.METADATA_FILE}.x1y2.tmp"]
    kept = [".notes.tmp", "notes.txt", f".{ft.METADATA_FILE}.keep"]
    for name in leftovers + kept:
        (backup / name).write_text("half")
    fit(compiled_model(), [ft.AtomicBackupAndRestore(str(backup))], epochs=2, initial_epoch=1)
    assert sorted(os.listdir(backup)) == sorted([ft.METADATA_FILE, ft.WEIGHTS_FILE, *kept])
    assert record(backup)["epoch"] == 2


def test_a_record_one_save_behind_the_weights_means_the_next_epoch(tmp_path):
    # A kill between renaming the weights and renaming the record leaves the record of the
    # save before: the weights are the truth.
    backup = str(tmp_path / "backup")
    model = compiled_model()
    fit(model, [ft.AtomicBackupAndRestore(backup)], epochs=3)
    with open(os.path.join(backup, ft.METADATA_FILE), "w") as f:
        json.dump({"epoch": 2, "batch": 0, "step": 8}, f)
    assert ft.restore(compiled_model(), backup) == ft.BackupState(step=12, epoch=3)
    # ... and the first save of a run, with no record yet, is epoch 1.
    os.remove(os.path.join(backup, ft.METADATA_FILE))
    assert ft.restore(compiled_model(), backup) == ft.BackupState(step=12, epoch=1)
    # A record from Keras' BackupAndRestore (no step) is taken as it is.
    with open(os.path.join(backup, ft.METADATA_FILE), "w") as f:
        json.dump({"epoch": 3, "batch": 0}, f)
    assert ft.restore(compiled_model(), backup).epoch == 3


def test_fit_resumes_from_the_checkpoint_like_an_uninterrupted_run(tmp_path):
    straight = compiled_model()
    fit(straight, [], epochs=3)

    backup = str(tmp_path / "backup")
    first = compiled_model()
    fit(first, [ft.AtomicBackupAndRestore(backup)], epochs=2)
    resumed = compiled_model(seed=5)  # other initial weights: all state comes from the backup
    with pytest.raises(ValueError, match="initial_epoch=2"):  # fit must start where it stopped
        fit(resumed, [ft.AtomicBackupAndRestore(str(tmp_path / "elsewhere"), restore_dir=backup)], epochs=3)
    resumed = compiled_model(seed=5)
    start = ft.restore(compiled_model(seed=6), backup).epoch
    history = fit(resumed, [ft.AtomicBackupAndRestore(str(tmp_path / "elsewhere"),
                                                      restore_dir=backup)], epochs=3, initial_epoch=start)
    assert history.epoch == [2]  # only the last epoch ran
    for got, want in zip(resumed.weights, straight.weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)
    assert record(str(tmp_path / "elsewhere"))["epoch"] == 3  # written where it was told
    assert record(backup)["epoch"] == 2  # the restore directory is only read


def test_a_failing_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    backup = str(tmp_path / "backup")
    model = compiled_model()
    fit(model, [ft.AtomicBackupAndRestore(backup)], epochs=1)
    before = open(os.path.join(backup, ft.WEIGHTS_FILE), "rb").read()

    def full_disk(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    with pytest.raises(OSError, match=r"cannot write the checkpoint in .*backup: No space left"):
        fit(model, [ft.AtomicBackupAndRestore(backup)], epochs=2, initial_epoch=1)
    assert open(os.path.join(backup, ft.WEIGHTS_FILE), "rb").read() == before
    assert sorted(os.listdir(backup)) == sorted([ft.METADATA_FILE, ft.WEIGHTS_FILE])
    assert record(backup)["epoch"] == 1


class PoisonAt(keras.callbacks.Callback):
    """Sets the logits bias to NaN at the start of a given batch of a given epoch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at, self.epoch = (epoch, batch), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            weight = self.model.trainable_weights[-1]  # the logits bias: NaN logits
            weight.assign(np.full(weight.shape, np.nan, np.float32))


def test_a_non_finite_loss_stops_before_the_next_checkpoint(tmp_path):
    # The weights turn NaN at batch 2 of the second epoch: its loss is NaN.
    backup = str(tmp_path / "backup")
    model = compiled_model()
    callbacks = [PoisonAt(1, 2), ft.StopOnNonFiniteLoss(), ft.AtomicBackupAndRestore(backup)]
    with pytest.raises(ft.NonFiniteLossError, match=r"training stopped at step \d+ \(epoch 2\): "
                                                    r"the training loss is nan"):
        fit(model, callbacks, epochs=3)
    assert record(backup) == {"epoch": 1, "batch": 0, "step": 4}
    restored = compiled_model()
    ft.restore(restored, backup)
    assert all(np.all(np.isfinite(w.numpy())) for w in restored.weights)


def test_non_finite_weights_with_a_finite_loss_are_caught_at_the_epoch_end(tmp_path):
    backup = str(tmp_path / "backup")
    model = compiled_model()

    class PoisonBias(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:  # after the epoch's last step: the loss of the epoch stays finite
                bias = self.model.trainable_weights[-1]
                bias.assign(tf.fill(bias.shape, np.inf))

    with pytest.raises(ft.NonFiniteLossError, match=r"weight .* is not finite"):
        fit(model, [PoisonBias(), ft.StopOnNonFiniteLoss(), ft.AtomicBackupAndRestore(backup)],
            epochs=1)
    assert not os.path.exists(backup)  # never saved
