"""One training run of the robust-overfitting study: train_main.py plus per-epoch curves.

Takes every train_main.py flag, plus the subset flags below. Before training it writes (once,
atomically) the class-balanced subset as the npz file named by --dataset=npz:PATH, drawn from
--source (a `rat_tf.data.load` spec, e.g. folder:../cache/cifar10, the image-folder tree made by
`tar -xzf ../shared/data/cifar10-jpeg.tar.gz -C ../cache/cifar10`): keys x_train / y_train (the
training subset), x_val / y_val (the validation split, held out from the same training images),
x_test / y_test (the whole test split) and the indices. It then trains with
`rat_tf.training.prepare` / `fit` and the `benchmarks.monitor.RobustnessCurves` callback on fixed
subsets of --monitor_examples images (train: a class-balanced sample of the training subset; val:
the validation split; test: the first test images), and exports two SavedModels: the last weights
(--export_dir, default MODEL_DIR/export) and the best by validation PGD (MODEL_DIR/best).
MODEL_DIR/overfit_train.json holds the curve, the best epoch and both export paths; it is written
last (a run is complete when it exists). Resumable like train_main.py: the same command continues.

    python -m benchmarks.overfit_train --dataset=npz:../runs/overfit/data/x.npz \\
        --source=folder:../cache/cifar10 --train_examples=4000 --val_examples=1000 \\
        --method=sat --arch=small_cnn --epochs=50 --model_dir=../runs/overfit/x

`python -m benchmarks.overfit` builds these commands for the study's runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import monitor, subsets  # noqa: E402
import flags as rat_flags  # noqa: E402
from rat_tf import attacks, files, training  # noqa: E402
from rat_tf import data as data_lib  # noqa: E402
from rat_tf.config import ConfigError  # noqa: E402

FLAGS = flags.FLAGS
SUMMARY = "overfit_train.json"
BEST_SUBDIR = "best"
BEST_WEIGHTS = "best.weights.h5"
CURVE = "curves.json"


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the subset flags (the trainer's flags are `flags.define_flags`)."""
    flags.DEFINE_string("source", None, "Data set the subset is drawn from (a data.load spec), e.g. "
                        "folder:../cache/cifar10.", flag_values=flag_values)
    flags.DEFINE_integer("train_examples", 4000, "Size of the class-balanced training subset.",
                         flag_values=flag_values)
    flags.DEFINE_integer("val_examples", 1000, "Size of the validation split (held out from the training images).",
                         flag_values=flag_values)
    flags.DEFINE_integer("subset_seed", 0, "Seed of the subset and validation split (the same for every run).",
                         flag_values=flag_values)
    flags.DEFINE_integer("monitor_examples", 1000, "Images per monitored subset (train, val, test).",
                         flag_values=flag_values)


def write_subset(path: str, source: str, train_examples: int, val_examples: int, seed: int,
                 monitor_examples: int) -> None:
    """Writes the subset npz (atomically; nothing is done when it exists)."""
    if os.path.exists(path):
        return
    full = data_lib.load(source)
    train_idx, val_idx = subsets.balanced_split(full.y_train, train_examples, val_examples, seed,
                                                num_classes=full.num_classes)
    monitor_idx = subsets.balanced_subset(full.y_train[train_idx], min(monitor_examples, train_examples),
                                          seed, num_classes=full.num_classes)
    arrays = dict(x_train=full.x_train[train_idx], y_train=full.y_train[train_idx],
                  x_val=full.x_train[val_idx], y_val=full.y_train[val_idx],
                  x_test=full.x_test, y_test=full.y_test, train_index=train_idx, val_index=val_idx,
                  train_monitor_index=monitor_idx)
    files.atomic_write(path, lambda f: np.savez(f, **arrays), mode="wb")
    print(f"wrote {path}: {train_examples} training images (per class "
          f"{subsets.class_counts(arrays['y_train'], full.num_classes).tolist()}), {val_examples} validation",
          flush=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.dataset.startswith("npz:"):
        raise app.UsageError("--dataset must be npz:PATH (the subset file, written from --source)")
    if not FLAGS.source:
        raise app.UsageError("--source is required: the data set the subset is drawn from, e.g. "
                             "folder:../cache/cifar10")
    npz_path = os.path.abspath(FLAGS.dataset[len("npz:"):])
    write_subset(npz_path, FLAGS.source, FLAGS.train_examples, FLAGS.val_examples, FLAGS.subset_seed,
                 FLAGS.monitor_examples)
    started = time.time()
    config = rat_flags.config_from_flags(FLAGS)
    try:
        setup = training.prepare(config)
    except ConfigError as err:
        raise rat_flags.usage_error(err) from None
    model_dir = config.run.model_dir
    n = FLAGS.monitor_examples
    with np.load(npz_path) as z:
        sets = {"train": (z["x_train"][z["train_monitor_index"][:n]], z["y_train"][z["train_monitor_index"][:n]]),
                "val": (z["x_val"][:n], z["y_val"][:n]),
                "test": (z["x_test"][:n], z["y_test"][:n])}
    ev = setup.config.eval
    pgd = attacks.PGDConfig(epsilon=ev.eval_epsilon, step_size=ev.eval_step_size, num_steps=ev.eval_pgd_steps)
    best_weights = os.path.join(model_dir, BEST_WEIGHTS)
    curves = monitor.RobustnessCurves(setup.model.classifier, sets, pgd, os.path.join(model_dir, CURVE),
                                      best_weights=best_weights, initial_epoch=setup.initial_epoch,
                                      seed=config.run.seed)
    training.fit(setup, [curves])
    if not curves.curve:   # training was already complete: the curve is on disk
        curves.curve = monitor.read_curve(curves.curve_path).get("curve", [])
    metrics = training.evaluate(setup)
    last_path = training.export(setup, metrics)
    best = monitor.best_epoch(curves.curve, curves.select)
    with open(best_weights + ".json", encoding="utf-8") as f:
        saved_epoch = json.load(f)["epoch"]
    if saved_epoch != best:
        raise RuntimeError(f"{best_weights} holds epoch {saved_epoch}, the curve's best is {best}")
    setup.model.classifier.load_weights(best_weights)
    best_metrics = training.evaluate(setup)
    best_setup = dataclasses.replace(setup, export_target=os.path.join(model_dir, BEST_SUBDIR))
    best_path = training.export(best_setup, {**best_metrics, "best_epoch": best, "selected_by": curves.select})
    summary = {**curves.state(), "last_export": last_path, "best_export": best_path,
               "last_test_metrics": metrics, "best_test_metrics": best_metrics,
               "trained_steps": int(setup.model.optimizer.iterations.numpy()),
               "total_steps": setup.total_steps, "steps_per_epoch": setup.steps_per_epoch,
               "lr_boundaries": setup.lr_boundaries, "config": setup.config.to_dict(),
               "subset": {"source": FLAGS.source, "train_examples": FLAGS.train_examples,
                          "val_examples": FLAGS.val_examples, "subset_seed": FLAGS.subset_seed,
                          "monitor_examples": n, "npz": npz_path},
               "seconds_this_attempt": round(time.time() - started, 1)}
    files.atomic_write_text(os.path.join(model_dir, SUMMARY), json.dumps(summary, indent=1) + "\n")
    last = curves.curve[-1] if curves.curve else {}
    print(f"done: best epoch {best} (val PGD), last epoch {last.get('epoch')}: test PGD "
          f"{last.get('test_pgd')}; exports {last_path} and {best_path}", flush=True)


if __name__ == "__main__":
    rat_flags.define_flags()
    define_flags()
    app.run(main)
