"""Trains a classifier with RAT (or a baseline) and exports it as a SavedModel.

Usage: python train_main.py [--dataset=digits] [--method=rat] [--flagfile=FILE] ...
Flags and their defaults: python train_main.py --help, or the README's flags table.
"""

from __future__ import annotations

import atexit
import csv
import dataclasses
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # keep TensorFlow's C++ INFO lines quiet

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import flags as rat_flags  # noqa: E402  (the repo's flags/ package, not absl.flags)
from flags.errors import flag_errors  # noqa: E402
import rat_tf  # noqa: E402
from rat_tf import architectures  # noqa: E402
from rat_tf import data as data_lib  # noqa: E402
from rat_tf import distribute  # noqa: E402
from rat_tf import export as export_lib  # noqa: E402
from rat_tf import fault_tolerance  # noqa: E402
from rat_tf import precision as precision_lib  # noqa: E402
from rat_tf import schedules  # noqa: E402

FLAGS = flags.FLAGS

BACKUP_SUBDIR = "backup"
METRICS_CSV = "metrics.csv"
TENSORBOARD_SUBDIR = "tensorboard"
FLAGFILE = "flags.txt"
CONFIG_JSON = "config.json"

# Flags that may change when a run in the same --model_dir is resumed; any other difference
# means the checkpoint belongs to another experiment.
RESUMABLE_CHANGES = frozenset({
    "train_steps", "epochs", "model_dir", "export_dir", "data_dir", "max_test_examples",
    "eval_epsilon", "eval_step_size", "eval_pgd_steps", "validation_freq", "strategy", "tpu",
    "deterministic"})

# Mean and standard deviation for the in-model normalisation come from at most this many
# training images.
NORMALIZATION_EXAMPLES = 10_000


def channel_stats(images: np.ndarray, max_examples: int = NORMALIZATION_EXAMPLES
                  ) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of images, in [0, 1] units.

    Args:
      images: uint8 (0..255) or float32 ([0, 1]) NHWC images; the first `max_examples` are used.
      max_examples: cap on the images used (keeps large datasets cheap).

    Returns:
      (mean, std), one float per channel; std is at least 1e-3 (constant channels).
    """
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    channels = images.shape[-1]
    total = np.zeros(channels, np.float64)
    total_sq = np.zeros(channels, np.float64)
    count = 0
    for start in range(0, min(len(images), max_examples), 1000):
        chunk = images[start:min(start + 1000, max_examples)].astype(np.float64) / scale
        total += chunk.sum(axis=(0, 1, 2))
        total_sq += np.square(chunk).sum(axis=(0, 1, 2))
        count += chunk.shape[0] * chunk.shape[1] * chunk.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return [float(m) for m in mean], [float(max(s, 1e-3)) for s in std]


def _read_json(path: str) -> Optional[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _check_resumable(previous: dict[str, Any], current: rat_flags.TrainConfig,
                     model_dir: str) -> None:
    """Raises a usage error when the checkpoint in `model_dir` comes from other flags."""
    before = {}
    for section in previous.values():
        before.update(section)
    now = rat_flags.json_ready(current.flag_values())
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k) != now[k])
    if changed:
        details = ", ".join(f"--{k} ({before.get(k)!r} there, {now[k]!r} now)" for k in changed)
        raise app.UsageError(
            f"--model_dir={model_dir}: holds a checkpoint trained with different flags: "
            f"{details}; use another --model_dir, or the same flags to resume")


def _truncate_csv(path: str, first_epoch: int) -> None:
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


class _CSVLogger(keras.callbacks.CSVLogger):
    """CSVLogger with the columns fixed up front.

    Keras takes the columns from the first epoch's logs, so validation metrics that first
    appear later (--validation_freq > 1) would be dropped.
    """

    def __init__(self, filename: str, keys: Sequence[str]):
        super().__init__(filename, append=True)
        self._fixed_keys = list(keys)

    def on_epoch_end(self, epoch, logs=None):
        if self.keys is None:
            self.keys = sorted(set(self._fixed_keys) | set(logs or {}))
        super().on_epoch_end(epoch, logs)


def _tensorboard_installed() -> bool:
    # tf.summary.scalar, which keras.callbacks.TensorBoard writes with, lives in tensorboard.
    return importlib.util.find_spec("tensorboard") is not None


class _StopAfterSteps(keras.callbacks.Callback):
    """Stops training after exactly `steps` more batches (the last epoch may be partial)."""

    def __init__(self, steps: int):
        super().__init__()
        self._remaining = int(steps)

    def on_train_batch_end(self, batch, logs=None):
        self._remaining -= 1
        if self._remaining <= 0:
            self.model.stop_training = True


@dataclasses.dataclass
class Setup:
    """Everything `train` and `export` need, built by `prepare`."""

    config: rat_flags.TrainConfig
    strategy: tf.distribute.Strategy
    data: data_lib.ImageData
    model: rat_tf.RATModel
    mean: list[float]
    std: list[float]
    steps_per_epoch: int
    total_steps: int
    lr_boundaries: list[int]
    done_steps: int
    initial_epoch: int
    # Where this process writes: --model_dir and --export_dir on the chief (every single-process
    # run); a scratch directory, deleted by `run`, on the other workers of a multi-worker run.
    write_dir: str = ""
    export_target: str = ""
    scratch_dir: Optional[str] = None


@dataclasses.dataclass
class RunResult:
    """What `run` returns: the trained model, test metrics and where the export went."""

    config: rat_flags.TrainConfig
    model: rat_tf.RATModel
    data: data_lib.ImageData
    metrics: dict[str, float]
    trained_steps: int
    export_path: str


def _build_optimizer(config: rat_flags.OptimConfig, boundaries: list[int]):
    schedule = schedules.StepDecay(config.learning_rate, boundaries, decay_factor=0.1)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=config.momentum)
    return keras.optimizers.Adam(schedule)


def prepare(config: rat_flags.TrainConfig) -> Setup:
    """Strategy, data, model and restored state; user errors become `app.UsageError`s.

    Args:
      config: the config from `flags.config_from_flags`.

    Returns:
      The `Setup`, with the model compiled and, when `model_dir` holds a checkpoint, restored.

    Raises:
      app.UsageError: one-line messages naming the offending flag.
    """
    run_cfg, data_cfg, optim = config.run, config.data, config.optim
    with flag_errors("strategy", run_cfg.strategy, ValueError):
        strategy = distribute.get_strategy(run_cfg.strategy, tpu=run_cfg.tpu)
    if run_cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    logging.info("strategy %s with %d replica(s)", run_cfg.strategy,
                 strategy.num_replicas_in_sync)
    model_dir = run_cfg.model_dir
    write_dir, export_target, scratch = model_dir, run_cfg.export_dir, None
    if not distribute.is_chief(strategy):
        scratch = tempfile.mkdtemp(prefix=f"rat_tf-{distribute.task_name(strategy)}-")
        atexit.register(shutil.rmtree, scratch, True)  # also when prepare fails below
        write_dir, export_target = os.path.join(scratch, "run"), os.path.join(scratch, "export")
        logging.info("%s is not the chief: writing to %s (deleted at the end)",
                     distribute.task_name(strategy), scratch)

    with flag_errors("dataset", data_cfg.dataset, ValueError, data_lib.DatasetUnavailableError):
        data = data_lib.load(data_cfg.dataset, data_dir=data_cfg.data_dir,
                             image_size=data_cfg.image_size,
                             max_train_examples=data_cfg.max_train_examples,
                             max_test_examples=data_cfg.max_test_examples)
    config = rat_flags.resolve_for_data(config, data.input_shape)
    logging.info("dataset %s: %d train / %d test images of shape %s, %d classes", data.name,
                 data.num_train, data.num_test, data.input_shape, data.num_classes)

    with flag_errors("batch_size", optim.batch_size, ValueError):
        data_epoch = schedules.steps_per_data_epoch(data.num_train, optim.batch_size)
    steps_per_epoch = optim.steps_per_epoch or data_epoch
    total_steps = schedules.total_train_steps(train_steps=optim.train_steps,
                                              epochs=optim.epochs, steps_per_epoch=data_epoch)
    with flag_errors("lr_boundaries", ",".join(f"{b:g}" for b in optim.lr_boundaries),
                      ValueError):
        boundaries = schedules.resolve_boundaries(optim.lr_boundaries, total_steps)
    with flag_errors("epsilon_warmup", optim.epsilon_warmup, ValueError):
        warmup_steps = schedules.resolve_warmup(optim.epsilon_warmup, total_steps, data_epoch)
    with flag_errors("export_dir", run_cfg.export_dir, export_lib.ExportError):
        export_lib.check_export_target(export_target)

    # Every worker resumes from the chief's checkpoint (a multi-worker --model_dir must be on a
    # file system all workers share, as for Keras' BackupAndRestore).
    backup_dir = os.path.join(model_dir, BACKUP_SUBDIR)
    if fault_tolerance.has_backup(backup_dir):
        previous = _read_json(os.path.join(model_dir, CONFIG_JSON))
        if previous is not None:
            _check_resumable(previous, config, model_dir)
    with flag_errors("model_dir", model_dir, OSError):
        os.makedirs(write_dir, exist_ok=True)
        with open(os.path.join(write_dir, FLAGFILE), "w", encoding="utf-8") as f:
            f.write(rat_flags.to_flagfile(config))
        with open(os.path.join(write_dir, CONFIG_JSON), "w", encoding="utf-8") as f:
            json.dump(config.to_dict(), f, indent=2)

    mean, std = channel_stats(data.x_train)
    method_cfg = config.method
    keras.utils.set_random_seed(run_cfg.seed)
    # The dtype policy holds while the model is built (layers take it when created).
    with precision_lib.policy_scope(config.model.precision), strategy.scope():
        with flag_errors("arch", config.model.arch, ValueError):
            classifier = architectures.build(
                config.model.arch, data.input_shape, data.num_classes, mean=mean, std=std,
                synchronized_bn=config.model.synchronized_bn)
        with flag_errors("method", method_cfg.method, ValueError):
            model = rat_tf.RATModel(
                classifier, method_cfg.method, seed=run_cfg.seed,
                weight_decay=optim.weight_decay, eval_pgd_steps=config.eval.eval_pgd_steps,
                eval_epsilon=config.eval.eval_epsilon, eval_step_size=config.eval.eval_step_size,
                num_classes=data.num_classes, epsilon_warmup=warmup_steps, **method_cfg.kwargs())
        optimizer = precision_lib.loss_scaled(_build_optimizer(optim, boundaries),
                                              config.model.precision)
        model.compile(optimizer=optimizer, metrics=["accuracy"])
        model(np.zeros((1,) + data.input_shape, np.float32))  # build (BackupAndRestore needs it)

        # The checkpoint callback restores the same checkpoint when fit starts; restoring here
        # first tells how far the run got, so the input pipeline can continue where it stopped.
        with flag_errors("model_dir", model_dir, OSError, ValueError):
            state = fault_tolerance.restore(model, backup_dir)
        done_steps, initial_epoch = state if state is not None else (0, 0)
    logging.info("%s: %s with %s, %s parameters; %d steps (%d per epoch), lr %g divided by 10 "
                 "at steps %s", model_dir, method_cfg.method, config.model.arch,
                 f"{classifier.count_params():,}", total_steps, steps_per_epoch,
                 optim.learning_rate, boundaries)
    return Setup(config=config, strategy=strategy, data=data, model=model, mean=mean, std=std,
                 steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                 lr_boundaries=boundaries, done_steps=done_steps, initial_epoch=initial_epoch,
                 write_dir=write_dir, export_target=export_target, scratch_dir=scratch)


def train(setup: Setup, extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> None:
    """Runs `fit` for the steps that are left (none when the run is already complete)."""
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
    with flag_errors("batch_size", config.optim.batch_size, ValueError):
        train_ds = distribute.distribute_global_batches(setup.strategy, train_ds,
                                                        config.optim.batch_size)
    validate = config.eval.validation_freq > 0
    test_ds = data_lib.test_dataset(setup.data, config.optim.batch_size) if validate else None

    csv_path = os.path.join(model_dir, METRICS_CSV)
    _truncate_csv(csv_path, setup.initial_epoch)
    keys = ["accuracy", "loss"]
    if validate:
        keys += ["val_accuracy", "val_loss"] + (["val_pgd_accuracy"]
                                                if config.eval.eval_pgd_steps else [])
    # Order matters at an epoch end: the finiteness check first (non-finite weights are never
    # saved), then the CSV row, then the checkpoint. A run killed between the last two redoes
    # the epoch and rewrites its row (`_truncate_csv`), so the CSV has every epoch once.
    backup_dir = os.path.join(model_dir, BACKUP_SUBDIR)
    callbacks = [
        fault_tolerance.StopOnNonFiniteLoss(),
        _CSVLogger(csv_path, keys),
        fault_tolerance.AtomicBackupAndRestore(
            backup_dir, restore_dir=os.path.join(config.run.model_dir, BACKUP_SUBDIR)),
        _StopAfterSteps(remaining),
        *extra_callbacks,
    ]
    if _tensorboard_installed():
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(model_dir, TENSORBOARD_SUBDIR)))
    else:
        logging.warning("the tensorboard package is not installed: no TensorBoard logs "
                        "(pip install -r requirements.txt installs it)")
    epochs = setup.initial_epoch + schedules.num_keras_epochs(remaining, setup.steps_per_epoch)
    try:
        model.fit(train_ds, epochs=epochs, initial_epoch=setup.initial_epoch,
                  steps_per_epoch=setup.steps_per_epoch, validation_data=test_ds,
                  validation_freq=max(1, config.eval.validation_freq), callbacks=callbacks,
                  shuffle=False, verbose=2)
    except fault_tolerance.NonFiniteLossError as err:
        kept = _read_json(os.path.join(backup_dir, fault_tolerance.METADATA_FILE))
        where = (f"the last good checkpoint (step {kept.get('step', '?')}, after epoch "
                 f"{kept['epoch']}) is kept in {backup_dir}" if kept and "epoch" in kept else
                 "no checkpoint had been written")
        raise fault_tolerance.NonFiniteLossError(
            f"{err}; {where}; a lower --learning_rate may help") from None


def evaluate(setup: Setup) -> dict[str, float]:
    """Clean (and, with --eval_pgd_steps > 0, PGD) accuracy on the test split."""
    test_ds = data_lib.test_dataset(setup.data, setup.config.optim.batch_size)
    results = setup.model.evaluate(test_ds, return_dict=True, verbose=0)
    metrics = {"clean_accuracy": float(results["accuracy"]), "clean_loss": float(results["loss"])}
    if "pgd_accuracy" in results:
        metrics["pgd_accuracy"] = float(results["pgd_accuracy"])
    return metrics


def export(setup: Setup, metrics: dict[str, float]) -> str:
    """Writes the classifier and its metadata to --export_dir; returns the path."""
    config, data, model = setup.config, setup.data, setup.model
    method_cfg = config.method
    metadata = {
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
        "epsilon": method_cfg.kwargs().get("epsilon", config.eval.eval_epsilon),
        "eval_attack": {"epsilon": config.eval.eval_epsilon,
                        "step_size": config.eval.eval_step_size,
                        "num_steps": config.eval.eval_pgd_steps, "random_start": True},
        "trained_steps": int(model.optimizer.iterations.numpy()),
        "total_steps": setup.total_steps,
        "lr_boundaries": setup.lr_boundaries,
        "epsilon_warmup_steps": model.epsilon_warmup,
        "test_metrics": {**metrics, "pgd_steps": config.eval.eval_pgd_steps,
                         "num_test_examples": data.num_test},
        "config": config.to_dict(),
    }
    target = setup.export_target or config.run.export_dir
    try:
        return export_lib.export_classifier(model.classifier, target, metadata)
    except tf.errors.OpError as err:  # TensorFlow's own writes (variables) failed: disk full, ...
        reason = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", err.message)
        raise export_lib.ExportError(f"cannot export to {os.path.abspath(target)}: "
                                     f"{reason}") from err


def run(config: rat_flags.TrainConfig,
        extra_callbacks: Sequence[keras.callbacks.Callback] = ()) -> RunResult:
    """Trains (or resumes), evaluates and exports.

    Args:
      config: from `flags.config_from_flags`.
      extra_callbacks: more Keras callbacks for `fit`.

    Returns:
      The `RunResult`.

    Raises:
      app.UsageError: a flag value that cannot be used (one line naming the flag).
    """
    start = time.time()
    setup = prepare(config)
    try:
        train(setup, extra_callbacks)
        metrics = evaluate(setup)
        path = export(setup, metrics)
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
    return RunResult(config=setup.config, model=setup.model, data=setup.data, metrics=metrics,
                     trained_steps=trained_steps, export_path=path)


def summary_line(result: RunResult) -> str:
    """The final plain-text line the script prints."""
    cfg = result.config
    text = (f"{cfg.method.method} on {result.data.name}, {result.trained_steps} steps: "
            f"clean test accuracy {result.metrics['clean_accuracy']:.4f}")
    if "pgd_accuracy" in result.metrics:
        text += (f", PGD-{cfg.eval.eval_pgd_steps} test accuracy "
                 f"{result.metrics['pgd_accuracy']:.4f} (eps {cfg.eval.eval_epsilon:.4g}, "
                 f"step {cfg.eval.eval_step_size:.4g})")
    return f"{text} on {result.data.num_test} test images; SavedModel: {result.export_path}"


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = rat_flags.config_from_flags(FLAGS)
    try:
        result = run(config)
    except fault_tolerance.NonFiniteLossError as err:
        _fail(str(err))
    except OSError as err:  # e.g. a full or read-only disk while training or exporting
        _fail(str(err))
    print(summary_line(result), flush=True)


def _fail(message: str) -> None:
    """Ends the script with one line on stderr and exit status 1 (no traceback)."""
    print(f"train_main.py: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
    rat_flags.define_flags()
    flags.adopt_module_key_flags(rat_flags)  # list them in --help / --helpshort
    app.run(main)
