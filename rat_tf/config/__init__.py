"""The configuration of a training run: frozen dataclasses, the "auto" rules, and the checks.

    from rat_tf import config as config_lib

    cfg = config_lib.resolve({"dataset": "cifar10", "method": "trades"})   # checked, autos resolved
    cfg = config_lib.resolve_for_data(cfg, data.input_shape)               # shape-dependent autos
    rat_tf.training.train(cfg)

`resolve` takes values named like train_main.py's flags (missing ones take the flags'
defaults), with "auto" where a rule decides. It is the one place where values are checked: a
value that cannot be used is a `ConfigError` naming the field, which the command-line tools
turn into the flag error `--field=value: message`.

Modules, one concern each:

- `rules`: the "auto" rules as data (method hyperparameters by dataset, the training recipe,
  arch, augment, the evaluation attack), the functions that apply them, and the same rules in
  words for the flag help (`describe_auto`).
- `checks`: every rule a value must follow (ranges, the forms of a warm-up and of a
  learning-rate boundary; the methods' own constructors for their hyperparameters).
- `sections`: the frozen dataclasses (`TrainConfig` and its sections).
- `resolution`: `resolve` and `resolve_for_data`.
- `flagfile`: `to_flagfile`, a config back into the flags that reproduce it.
- `errors`: `ConfigError`, and `field_errors` / `named_field_errors` (a library error as the
  `ConfigError` of the field it is about).
- `evaluation`: `EvaluateConfig`, the configuration of an evaluation (evaluate_main.py).
"""

from rat_tf.config.checks import check_boundary, parse_warmup
from rat_tf.config.errors import ConfigError, field_errors, named_field_errors
from rat_tf.config.evaluation import EvaluateConfig
from rat_tf.config.flagfile import to_flagfile
from rat_tf.config.resolution import default_model_dir, resolve, resolve_for_data
from rat_tf.config.rules import (
    AUTO,
    DATASET_EPSILON,
    DEFAULT_EPSILON,
    DEFAULTS,
    DIGITS_EPOCHS,
    EVAL_STEP_FRACTION,
    IMAGENETTE_MAX_SCALE,
    MNIST_METHOD_RULES,
    MNIST_RECIPE,
    MNIST_SHAPE,
    NON_PIXEL_STEP_SIZE,
    OPTIMIZERS,
    PAPER_BOUNDARY_FRACTIONS,
    PAPER_RECIPE,
    PAPER_TRAIN_STEPS,
    PRECISIONS,
    RECIPE_FIELDS,
    STRATEGY_NAMES,
    dataset_family,
    describe_auto,
    method_hyperparameters,
    recipe_for_shape,
)
from rat_tf.config.sections import (
    DataConfig,
    EvalConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    json_ready,
)

__all__ = [
    "AUTO", "DATASET_EPSILON", "DEFAULT_EPSILON", "DEFAULTS", "DIGITS_EPOCHS", "EVAL_STEP_FRACTION",
    "IMAGENETTE_MAX_SCALE", "MNIST_METHOD_RULES", "MNIST_RECIPE", "MNIST_SHAPE", "NON_PIXEL_STEP_SIZE",
    "OPTIMIZERS", "PAPER_BOUNDARY_FRACTIONS", "PAPER_RECIPE", "PAPER_TRAIN_STEPS", "PRECISIONS", "RECIPE_FIELDS",
    "STRATEGY_NAMES",
    "ConfigError", "DataConfig", "EvalConfig", "EvaluateConfig", "MethodConfig", "ModelConfig", "OptimConfig",
    "RunConfig", "TrainConfig",
    "check_boundary", "dataset_family", "default_model_dir", "describe_auto", "field_errors", "json_ready",
    "method_hyperparameters", "named_field_errors", "parse_warmup", "recipe_for_shape", "resolve",
    "resolve_for_data", "to_flagfile",
]
