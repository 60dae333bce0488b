"""One training run as one call: prepare, fit, evaluate, export.

    result = train(config)                       # a `TrainResult`
    print(summary_line(result))

The steps are public too, for runners that add to a run (`prepare` -> `fit` -> `evaluate` ->
`export`).
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import os
import re
import shutil
import time
from typing import Any

from absl import logging
import keras
import tensorflow as tf

import rat_tf
from rat_tf import config as config_lib
from rat_tf import data as data_lib
from rat_tf import export as export_lib
from rat_tf import files
from rat_tf.config import field_errors
from rat_tf.model import RATModel
from rat_tf.training import callbacks as callbacks_lib
from rat_tf.training import curves as curves_lib
from rat_tf.training import distribute, fault_tolerance, schedules
from rat_tf.training.setup import Setup, prepare


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the trained model, test metrics and where the export went."""

    config: config_lib.TrainConfig
    model: RATModel
    data: data_lib.ImageData
    metrics: dict[str, float]
    trained_steps: int
    export_path: str


def fit(setup: Setup, extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
    """Runs `fit` for the steps that are left (none when the run is already complete).

    Raises:
      NonFiniteLossError: the loss or the weights stopped being finite (the message says
        where the last good checkpoint is).
      ConfigError: the batch does not split across the replicas.
    """
    config, model = setup.config, setup.model
    model_dir = setup.write_dir or config.run.model_dir
    remaining = setup.total_steps - setup.done_steps
    if setup.done_steps:
        logging.info("resuming %s at step %d (epoch %d)", model_dir, setup.done_steps,
                     setup.initial_epoch)
    if remaining <= 0:
        logging.info("training already complete: %d of %d steps done", setup.done_steps,
                     setup.total_steps)
        return

    train_ds = data_lib.train_dataset(setup.data, config.optim.batch_size,
                                      augment=config.data.augment, seed=config.run.seed,
                                      repeat=True)
    if setup.done_steps:
        # The data stream is a function of the seed; skip what the earlier run consumed
        # (replaying the pipeline: a few ms per batch).
        logging.info("fast-forwarding the input pipeline by %d batches", setup.done_steps)
        train_ds = train_ds.skip(setup.done_steps)
    with field_errors("batch_size", config.optim.batch_size, ValueError):
        train_ds = distribute.distribute_global_batches(setup.strategy, train_ds,
                                                        config.optim.batch_size)
    validate = config.eval.validation_freq > 0
    test_ds = data_lib.test_dataset(setup.data, config.optim.batch_size) if validate else None

    callbacks_lib.truncate_csv(os.path.join(model_dir, callbacks_lib.METRICS_CSV),
                               setup.initial_epoch)
    keys = callbacks_lib.metric_keys(validate, bool(config.eval.eval_pgd_steps))
    callbacks = callbacks_lib.training_callbacks(model_dir, config.run.model_dir, remaining,
                                                 keys, extra=extra_callbacks)
    epochs = setup.initial_epoch + schedules.num_keras_epochs(remaining, setup.steps_per_epoch)
    try:
        model.fit(train_ds, epochs=epochs, initial_epoch=setup.initial_epoch,
                  steps_per_epoch=setup.steps_per_epoch, validation_data=test_ds,
                  validation_freq=max(1, config.eval.validation_freq), callbacks=callbacks,
                  shuffle=False, verbose=2)
    except fault_tolerance.NonFiniteLossError as err:
        backup_dir = os.path.join(model_dir, callbacks_lib.BACKUP_SUBDIR)
        kept = files.read_json_object(os.path.join(backup_dir, fault_tolerance.METADATA_FILE))
        where = (f"the last good checkpoint (step {kept.get('step', '?')}, after epoch "
                 f"{kept['epoch']}) is kept in {backup_dir}" if kept and "epoch" in kept else
                 "no checkpoint had been written")
        raise fault_tolerance.NonFiniteLossError(
            f"{err}; {where}; a lower --learning_rate may help") from None


def evaluate(setup: Setup) -> dict[str, float]:
    """Clean (and, with eval_pgd_steps > 0, PGD) accuracy on the test split."""
    test_ds = data_lib.test_dataset(setup.data, setup.config.optim.batch_size)
    results = setup.model.evaluate(test_ds, return_dict=True, verbose=0)
    metrics = {"clean_accuracy": float(results["accuracy"]), "clean_loss": float(results["loss"])}
    if "pgd_accuracy" in results:
        metrics["pgd_accuracy"] = float(results["pgd_accuracy"])
    return metrics


def export_metadata(setup: Setup, metrics: dict[str, Any]) -> dict[str, Any]:
    """The `rat_tf_metadata.json` written next to the SavedModel."""
    config, data, model = setup.config, setup.data, setup.model
    method_cfg, evaluation = config.method, config.eval
    return {
        "format": "rat_tf classifier export",
        "rat_tf_version": rat_tf.__version__,
        "inputs": "float32 NHWC images in [0, 1], any batch size",
        "outputs": "logits",
        "endpoints": list(export_lib.ENDPOINTS),
        "dataset": data.name,
        "class_names": list(data.class_names),
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
        "normalization": {"mean": setup.mean, "std": setup.std},
        "arch": config.model.arch,
        "method": method_cfg.method,
        "method_hyperparameters": model.method.get_config(),
        "epsilon": method_cfg.kwargs().get("epsilon", evaluation.eval_epsilon),
        "eval_attack": {"epsilon": evaluation.eval_epsilon,
                        "step_size": evaluation.eval_step_size,
                        "num_steps": evaluation.eval_pgd_steps, "random_start": True},
        "trained_steps": int(model.optimizer.iterations.numpy()),
        "total_steps": setup.total_steps,
        "lr_boundaries": setup.lr_boundaries,
        "epsilon_warmup_steps": model.epsilon_warmup,
        "awp": {"gamma": model.awp_gamma, "warmup_steps": model.awp_warmup},
        "test_metrics": {**metrics, "pgd_steps": evaluation.eval_pgd_steps,
                         "num_test_examples": data.num_test},
        "config": config.to_dict(),
    }


def write_curves(setup: Setup) -> str | None:
    """Draws metrics.csv into curves.png next to it (the chief only); returns the path or None.

    A PNG that cannot be written is a warning, not an error: the model is already exported.
    """
    if setup.scratch_dir:  # a non-chief worker: the chief draws the curves
        return None
    write_dir = setup.write_dir or setup.config.run.model_dir
    csv_path = os.path.join(write_dir, callbacks_lib.METRICS_CSV)
    if not os.path.exists(csv_path):
        return None
    try:
        return curves_lib.plot_curves(csv_path, os.path.join(write_dir, curves_lib.CURVES_PNG))
    except OSError as err:
        logging.warning("no training curves: %s", err)
        return None


def export(setup: Setup, metrics: dict[str, Any]) -> str:
    """Writes the classifier and its metadata to the export directory; returns the path.

    Raises:
      ExportError: the export cannot be written (the previous one stays as it was).
    """
    target = setup.export_target or setup.config.run.export_dir
    try:
        return export_lib.export_classifier(setup.model.classifier, target,
                                            export_metadata(setup, metrics))
    except tf.errors.OpError as err:  # TensorFlow's own writes (variables) failed: disk full, ...
        reason = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", err.message)
        raise export_lib.ExportError(f"cannot export to {os.path.abspath(target)}: "
                                     f"{reason}") from err


def train(config: config_lib.TrainConfig,
          extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainResult:
    """Trains (or resumes), evaluates and exports.

    Args:
      config: the run's config (`rat_tf.config.resolve`).
      extra_callbacks: more Keras callbacks for `fit`.

    Returns:
      The `TrainResult`.

    Raises:
      ConfigError: a value that cannot be used (before any training).
      NonFiniteLossError: training diverged; the last good checkpoint is kept.
      OSError: a checkpoint or the export could not be written (e.g. a full disk).
    """
    start = time.time()
    setup = prepare(config)
    try:
        fit(setup, extra_callbacks)
        metrics = evaluate(setup)
        path = export(setup, metrics)
        write_curves(setup)
    finally:
        if setup.scratch_dir:
            shutil.rmtree(setup.scratch_dir, ignore_errors=True)
    if setup.scratch_dir:  # a non-chief worker: the chief wrote the export
        path = os.path.abspath(os.path.expanduser(setup.config.run.export_dir))
    trained_steps = int(setup.model.optimizer.iterations.numpy())
    logging.info("test clean accuracy %.4f%s after %d steps; SavedModel in %s (%.1f s)",
                 metrics["clean_accuracy"],
                 (f", PGD-{setup.config.eval.eval_pgd_steps} accuracy {metrics['pgd_accuracy']:.4f}"
                  if "pgd_accuracy" in metrics else ""), trained_steps, path, time.time() - start)
    return TrainResult(config=setup.config, model=setup.model, data=setup.data, metrics=metrics,
                       trained_steps=trained_steps, export_path=path)


def summary_line(result: TrainResult) -> str:
    """One plain-text line: method, data, steps, test accuracies and the export path."""
    cfg = result.config
    text = (f"{cfg.method.method} on {result.data.name}, {result.trained_steps} steps: "
            f"clean test accuracy {result.metrics['clean_accuracy']:.4f}")
    if "pgd_accuracy" in result.metrics:
        text += (f", PGD-{cfg.eval.eval_pgd_steps} test accuracy "
                 f"{result.metrics['pgd_accuracy']:.4f} (eps {cfg.eval.eval_epsilon:.4g}, "
                 f"step {cfg.eval.eval_step_size:.4g})")
    return f"{text} on {result.data.num_test} test images; SavedModel: {result.export_path}"
