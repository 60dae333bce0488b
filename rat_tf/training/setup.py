"""Everything before `fit`: strategy, data, model, optimizer, and the state of a resumed run.

    setup = prepare(config)        # a `Setup`; user errors are `rat_tf.config.ConfigError`s
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import tempfile
from typing import Any

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from rat_tf import architectures, files
from rat_tf import config as config_lib
from rat_tf import data as data_lib
from rat_tf import export as export_lib
from rat_tf.config import ConfigError, field_errors
from rat_tf.model import RATModel
from rat_tf.training import distribute, fault_tolerance, schedules
from rat_tf.training import precision as precision_lib
from rat_tf.training.callbacks import BACKUP_SUBDIR

FLAGFILE = "flags.txt"
CONFIG_JSON = "config.json"

# Fields that may change when a run in the same model_dir is resumed; any other difference
# means the checkpoint belongs to another experiment.
RESUMABLE_CHANGES = frozenset({
    "train_steps", "epochs", "model_dir", "export_dir", "data_dir", "max_test_examples",
    "eval_epsilon", "eval_step_size", "eval_pgd_steps", "validation_freq", "strategy", "tpu",
    "deterministic"})
# Fields added after runs were recorded, with the value an older config.json implies.
ADDED_FIELDS = {"awp_gamma": 0.0, "awp_warmup": "0"}

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


@dataclasses.dataclass
class Setup:
    """Everything `fit`, `evaluate` and `export` need, built by `prepare`."""

    config: config_lib.TrainConfig
    strategy: tf.distribute.Strategy
    data: data_lib.ImageData
    model: RATModel
    mean: list[float]
    std: list[float]
    steps_per_epoch: int
    total_steps: int
    lr_boundaries: list[int]
    done_steps: int
    initial_epoch: int
    # Where this process writes: model_dir and export_dir on the chief (every single-process
    # run); a scratch directory, deleted by `train`, on the other workers of a multi-worker run.
    write_dir: str = ""
    export_target: str = ""
    scratch_dir: str | None = None


def check_resumable(previous: dict[str, Any], current: config_lib.TrainConfig,
                    model_dir: str) -> None:
    """Raises a `ConfigError` when the checkpoint in `model_dir` comes from another config."""
    before = {}
    for section in previous.values():
        before.update(section)
    now = config_lib.json_ready(current.flag_values())
    for name, implied in ADDED_FIELDS.items():
        before.setdefault(name, implied)
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and before.get(k) != now[k])
    if changed:
        details = ", ".join(f"--{k} ({before.get(k)!r} there, {now[k]!r} now)" for k in changed)
        raise ConfigError("model_dir", f"holds a checkpoint trained with different flags: "
                          f"{details}; use another --model_dir, or the same flags to resume",
                          model_dir)


def build_optimizer(config: config_lib.OptimConfig, boundaries: list[int],
                    precision: str) -> keras.optimizers.Optimizer:
    """SGD with momentum (or Adam) on the step-decay schedule, loss-scaled for float16."""
    schedule = schedules.StepDecay(config.learning_rate, boundaries, decay_factor=0.1)
    if config.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(schedule, momentum=config.momentum)
    else:
        optimizer = keras.optimizers.Adam(schedule)
    return precision_lib.loss_scaled(optimizer, precision)


def _write_dirs(strategy: tf.distribute.Strategy, run: config_lib.RunConfig
                ) -> tuple[str, str, str | None]:
    """(write_dir, export_target, scratch): a non-chief worker writes to a scratch directory."""
    if distribute.is_chief(strategy):
        return run.model_dir, run.export_dir, None
    scratch = tempfile.mkdtemp(prefix=f"rat_tf-{distribute.task_name(strategy)}-")
    atexit.register(shutil.rmtree, scratch, True)  # also when prepare fails later
    logging.info("%s is not the chief: writing to %s (deleted at the end)",
                 distribute.task_name(strategy), scratch)
    return os.path.join(scratch, "run"), os.path.join(scratch, "export"), scratch


def _write_config(write_dir: str, config: config_lib.TrainConfig) -> None:
    with field_errors("model_dir", config.run.model_dir, OSError):
        os.makedirs(write_dir, exist_ok=True)
        with open(os.path.join(write_dir, FLAGFILE), "w", encoding="utf-8") as f:
            f.write(config_lib.to_flagfile(config))
        with open(os.path.join(write_dir, CONFIG_JSON), "w", encoding="utf-8") as f:
            json.dump(config.to_dict(), f, indent=2)


def prepare(config: config_lib.TrainConfig) -> Setup:
    """Strategy, data, model and restored state.

    Args:
      config: the run's config (`rat_tf.config.resolve`).

    Returns:
      The `Setup`, with the model compiled and, when `model_dir` holds a checkpoint, restored.

    Raises:
      ConfigError: a value that cannot be used, naming its field.
    """
    run_cfg, data_cfg, optim = config.run, config.data, config.optim
    with field_errors("strategy", run_cfg.strategy, ValueError):
        strategy = distribute.get_strategy(run_cfg.strategy, tpu=run_cfg.tpu)
    if run_cfg.deterministic:
        tf.config.experimental.enable_op_determinism()
    logging.info("strategy %s with %d replica(s)", run_cfg.strategy,
                 strategy.num_replicas_in_sync)
    model_dir = run_cfg.model_dir
    write_dir, export_target, scratch = _write_dirs(strategy, run_cfg)

    with field_errors("dataset", data_cfg.dataset, ValueError, data_lib.DatasetUnavailableError):
        data = data_lib.load(data_cfg.dataset, data_dir=data_cfg.data_dir,
                             image_size=data_cfg.image_size,
                             max_train_examples=data_cfg.max_train_examples,
                             max_test_examples=data_cfg.max_test_examples)
    config = config_lib.resolve_for_data(config, data.input_shape)
    optim = config.optim  # the training recipe's "auto"s may depend on the image shape
    for name in config.method.from_mnist_rule:
        logging.info("--%s=auto is %g: the MNIST rule (dataset mnist, or 28x28 grayscale "
                     "npz:/folder: data); give --%s to override it", name,
                     config.method.kwargs()[name], name)
    logging.info("dataset %s: %d train / %d test images of shape %s, %d classes", data.name,
                 data.num_train, data.num_test, data.input_shape, data.num_classes)

    with field_errors("batch_size", optim.batch_size, ValueError):
        data_epoch = schedules.steps_per_data_epoch(data.num_train, optim.batch_size)
    steps_per_epoch = optim.steps_per_epoch or data_epoch
    total_steps = schedules.total_train_steps(train_steps=optim.train_steps,
                                              epochs=optim.epochs, steps_per_epoch=data_epoch)
    with field_errors("lr_boundaries", ",".join(f"{b:g}" for b in optim.lr_boundaries),
                      ValueError):
        boundaries = schedules.resolve_boundaries(optim.lr_boundaries, total_steps)
    with field_errors("epsilon_warmup", optim.epsilon_warmup, ValueError):
        warmup_steps = schedules.resolve_warmup(optim.epsilon_warmup, total_steps, data_epoch)
    with field_errors("awp_warmup", optim.awp_warmup, ValueError):
        awp_warmup_steps = schedules.resolve_warmup(optim.awp_warmup, total_steps, data_epoch)
    with field_errors("export_dir", run_cfg.export_dir, export_lib.ExportError):
        export_lib.check_export_target(export_target)

    # Every worker resumes from the chief's checkpoint (a multi-worker model_dir must be on a
    # file system all workers share, as for Keras' BackupAndRestore).
    backup_dir = os.path.join(model_dir, BACKUP_SUBDIR)
    if fault_tolerance.has_backup(backup_dir):
        previous = files.read_json_object(os.path.join(model_dir, CONFIG_JSON))
        if previous is not None:
            check_resumable(previous, config, model_dir)
    _write_config(write_dir, config)

    mean, std = channel_stats(data.x_train)
    method_cfg, evaluation = config.method, config.eval
    keras.utils.set_random_seed(run_cfg.seed)
    # The dtype policy holds while the model is built (layers take it when created).
    with precision_lib.policy_scope(config.model.precision), strategy.scope():
        with field_errors("arch", config.model.arch, ValueError):
            classifier = architectures.build(
                config.model.arch, data.input_shape, data.num_classes, mean=mean, std=std,
                synchronized_bn=config.model.synchronized_bn)
        with field_errors("method", method_cfg.method, ValueError):
            model = RATModel(
                classifier, method_cfg.method, seed=run_cfg.seed,
                weight_decay=optim.weight_decay, eval_pgd_steps=evaluation.eval_pgd_steps,
                eval_epsilon=evaluation.eval_epsilon, eval_step_size=evaluation.eval_step_size,
                num_classes=data.num_classes, epsilon_warmup=warmup_steps,
                awp_gamma=optim.awp_gamma, awp_warmup=awp_warmup_steps, **method_cfg.kwargs())
        model.compile(optimizer=build_optimizer(optim, boundaries, config.model.precision),
                      metrics=["accuracy"])
        model(np.zeros((1,) + data.input_shape, np.float32))  # build (BackupAndRestore needs it)

        # The checkpoint callback restores the same checkpoint when fit starts; restoring here
        # first tells how far the run got: fit starts at that epoch (the callback checks it),
        # and the input pipeline continues where it stopped.
        with field_errors("model_dir", model_dir, OSError, ValueError):
            state = fault_tolerance.restore(model, backup_dir)
        done_steps, initial_epoch = state if state is not None else (0, 0)
    logging.info("%s: %s with %s, %s parameters; %d steps (%d per epoch), %s lr %g divided by 10 "
                 "at steps %s, weight decay %g, epsilon warm-up %d steps, %s", model_dir,
                 method_cfg.method, config.model.arch, f"{classifier.count_params():,}",
                 total_steps, steps_per_epoch, optim.optimizer, optim.learning_rate, boundaries,
                 optim.weight_decay, warmup_steps,
                 f"AWP gamma {optim.awp_gamma:g} from step {awp_warmup_steps}" if optim.awp_gamma
                 else "no AWP")
    return Setup(config=config, strategy=strategy, data=data, model=model, mean=mean, std=std,
                 steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                 lr_boundaries=boundaries, done_steps=done_steps, initial_epoch=initial_epoch,
                 write_dir=write_dir, export_target=export_target, scratch_dir=scratch)
