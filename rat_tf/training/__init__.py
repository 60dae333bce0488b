"""The trainer as a library: one `train(config)` call from a config to a SavedModel.

    from rat_tf import config as config_lib, training

    result = training.train(config_lib.resolve({"dataset": "digits", "method": "rat"}))
    print(training.summary_line(result))

`train` = `prepare` (strategy, data, model, restored checkpoint) -> `fit` (Keras' fit with the
CSV log, atomic checkpoints, the step limit, TensorBoard) -> `evaluate` -> `export` ->
`write_curves` (curves.png). Problems with the config raise `rat_tf.config.ConfigError` naming
the field, before any training.

Submodules: `schedules` (learning rate, training length, warm-up), `fault_tolerance` (atomic
checkpoints, the stop on a non-finite loss), `precision` (dtype policy, float16 loss scaling),
`distribute` (strategies from names, chief/worker roles), `curves` (the PNG of metrics.csv),
`callbacks`, `setup`, `trainer`.
"""

from rat_tf.training import curves, distribute, fault_tolerance, precision, schedules
from rat_tf.training.callbacks import BACKUP_SUBDIR, METRICS_CSV, TENSORBOARD_SUBDIR
from rat_tf.training.curves import CURVES_PNG, plot_curves
from rat_tf.training.fault_tolerance import NonFiniteLossError
from rat_tf.training.setup import CONFIG_JSON, FLAGFILE, Setup, channel_stats, prepare
from rat_tf.training.trainer import (
    TrainResult,
    evaluate,
    export,
    export_metadata,
    fit,
    summary_line,
    train,
    write_curves,
)

__all__ = [
    "BACKUP_SUBDIR", "CONFIG_JSON", "CURVES_PNG", "FLAGFILE", "METRICS_CSV", "TENSORBOARD_SUBDIR",
    "NonFiniteLossError", "Setup", "TrainResult", "channel_stats", "curves", "distribute",
    "evaluate", "export", "export_metadata", "fault_tolerance", "fit", "plot_curves", "precision",
    "prepare", "schedules", "summary_line", "train", "write_curves",
]
