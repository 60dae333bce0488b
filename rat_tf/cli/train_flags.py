"""Command-line flags of the training program (rat-train, train_main.py), turned into a config.

    from absl import flags
    from rat_tf.cli import train_flags

    train_flags.define_flags()             # once, under __main__ (or on a fresh FlagValues)
    config = train_flags.config_from_flags(flags.FLAGS)   # frozen TrainConfig, "auto"s resolved

Every flag has a default. Method hyperparameter flags are generated from
`rat_tf.methods.METHODS`: one flag per hyperparameter name, default "auto". The flags parse
syntax only (a number, a fraction like 8/255, an integer, a list, "auto"); every rule over the
values, and every "auto" rule, is the library's (`rat_tf.config`), checked once in
`rat_tf.config.resolve`. Its `ConfigError` names the field, which is the flag, and becomes the
one-line usage error `--flag=value: message` (`rat_tf.cli.errors.usage_error`). The help of an
"auto" is `rat_tf.config.describe_auto`: the rule's own words, from the rule's data.
"""

from __future__ import annotations

import math
import re
from typing import Any

from absl import flags, logging

from rat_tf import config as config_lib
from rat_tf import data as data_lib
from rat_tf import methods as methods_lib
from rat_tf.cli.errors import usage_error
from rat_tf.config import AUTO, DIGITS_EPOCHS, OPTIMIZERS, PAPER_TRAIN_STEPS, PRECISIONS, STRATEGY_NAMES
from rat_tf.config.rules import format_value

AUGMENT_CHOICES = (AUTO, "true", "false")

# What each method hyperparameter is (its "auto" rule and its defaults are appended from the
# library); any other hyperparameter of a method gets a generic line.
_HYPERPARAMETER_HELP = {
    "epsilon": "Linf radius of the training attack in pixel units (images in [0, 1]); "
               "a fraction like 8/255 or a number like 0.031",
    "step_size": "Attack step size (pixel units; for ADT the update size of its distribution "
                 "parameters), 2/255 or 0.0078",
    "num_steps": "Attack steps K (ADT: T)",
    "num_samples": "RAT / SAT+ARS: region samples m per example; ADT: samples k per step",
    "max_scale": "RAT / SAT+ARS: largest scale S of the scale set {0, scale_step, ..., S}",
    "scale_step": "RAT / SAT+ARS: spacing of the scale set",
    "beta_max": "RAT: label-smoothing factor at scale 0",
    "beta_min": "RAT: label-smoothing factor at the largest scale",
    "end_point_fraction": "RAT: the fraction of the n * m training points that are the PGD end "
                          "points, with hard labels (the rest are region samples)",
    "smooth_from_scale": "RAT: label smoothing starts at this scale (hard labels below it)",
    "gamma": "AVmixup: vertex scale gamma",
    "lambda1": "AVmixup: label-smoothing factor at the clean point",
    "lambda2": "AVmixup: label-smoothing factor at the vertex",
    "beta": "TRADES: weight of the KL term",
    "entropy_weight": "ADT: weight lambda of the entropy term",
}


def _auto(name: str) -> str:
    """The help's "auto: ..." sentence for the flag `name`, from the library's rule."""
    return f"auto: {config_lib.describe_auto(name)}"


# --------------------------------------------------------------------------------------------
# Parsing helpers.


_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_FRACTION = re.compile(rf"^\s*({_NUMBER})\s*(?:/\s*({_NUMBER})\s*)?$")


def parse_fraction(text: str) -> float:
    """Parses "8/255", "0.031", "1e-2" or "2/255.0" into a finite float.

    Raises:
      ValueError: not a number or a fraction of two numbers, division by zero, or not finite.
    """
    match = _FRACTION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a number or a fraction like 8/255")
    value = float(match.group(1))
    if match.group(2) is not None:
        denominator = float(match.group(2))
        if denominator == 0:
            raise ValueError(f"{text!r} divides by zero")
        value /= denominator
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not finite")
    return value


class _AutoParser(flags.ArgumentParser):
    """Parses "auto" or a value: a float (numbers and fractions like 8/255) or an integer."""

    def __init__(self, integer: bool = False):
        super().__init__()
        self._integer = integer
        self.syntactic_help = ("'auto' or an integer" if integer else
                               "'auto', a number (0.031) or a fraction (8/255)")

    def parse(self, argument):
        if isinstance(argument, str) and argument.strip().lower() == AUTO:
            return AUTO
        if self._integer:
            try:
                number = float(argument)
            except (TypeError, ValueError):
                raise ValueError(f"{argument!r} is not an integer or 'auto'") from None
            if not math.isfinite(number) or number != int(number):
                raise ValueError(f"{argument!r} is not an integer or 'auto'")
            return int(number)
        if isinstance(argument, (int, float)) and not isinstance(argument, bool):
            if not math.isfinite(argument):
                raise ValueError(f"{argument!r} is not finite")
            return float(argument)
        return parse_fraction(argument)

    def flag_type(self):
        return "integer or 'auto'" if self._integer else "fraction or 'auto'"


class _AutoSerializer(flags.ArgumentSerializer):
    def serialize(self, value):
        return value if value == AUTO else repr(value)


def _describe_defaults(defaults: dict[str, Any]) -> str:
    groups: dict[str, list[str]] = {}
    for method, value in defaults.items():
        groups.setdefault(format_value(value), []).append(method)
    return "; ".join(f"{'/'.join(ms)} {v}" for v, ms in groups.items())


# --------------------------------------------------------------------------------------------
# Flag definitions.


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines all training flags (with their defaults) on `flag_values`."""
    fv = dict(flag_values=flag_values)

    def auto_flag(name, help_text, integer=False):
        flags.DEFINE(_AutoParser(integer), name, AUTO, help_text, serializer=_AutoSerializer(), **fv)

    # Data.
    flags.DEFINE_string(
        "dataset", "digits",
        f"Dataset: {data_lib.describe_specs()}. digits (default): the 8x8 scikit-learn digits, "
        "available offline (first 1,437 images train, last 360 test). npz:PATH: arrays with "
        "the keras.datasets keys x_train, y_train, x_test, y_test. folder:PATH: an image tree "
        "PATH/train/<class>/*, PATH/test/<class>/*.", **fv)
    flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data directory (TFDS datasets "
                        "only; default: TFDS' default, ~/tensorflow_datasets).", **fv)
    flags.DEFINE_integer("image_size", None, "Resize images to SIZE x SIZE (shorter side, then "
                         "center crop). Default: native size (ImageNette: 160).", **fv)
    flags.DEFINE_integer("max_train_examples", None, "Keep only the first N training examples.", **fv)
    flags.DEFINE_integer("max_test_examples", None, "Keep only the first N test examples.", **fv)
    flags.DEFINE_string(
        "augment", AUTO,
        f"Random crop (4 px zero padding) + horizontal flip: {', '.join(AUGMENT_CHOICES)}. "
        f"{_auto('augment')}.", **fv)

    # Model.
    flags.DEFINE_string(
        "arch", AUTO,
        f"Architecture: small_cnn, preact_resnet18, wrn-34-10 or any wrn-D-K. {_auto('arch')}.", **fv)
    flags.DEFINE_boolean("synchronized_bn", False,
                         "Synchronise BatchNorm statistics across replicas.", **fv)
    flags.DEFINE_string(
        "precision", "float32",
        f"Keras dtype policy of the model ({', '.join(PRECISIONS)}): mixed_float16 for GPUs (with "
        "dynamic loss scaling), mixed_bfloat16 for TPUs, recent GPUs and CPUs. Logits, the attack's "
        "loss and the training loss stay float32.", **fv)

    # Method and its hyperparameters (one flag per hyperparameter name of any method).
    flags.DEFINE_string("method", "rat", f"Training method: {', '.join(methods_lib.METHOD_NAMES)}.", **fv)
    for name, defaults in config_lib.method_hyperparameters().items():
        if name in flag_values:
            raise ValueError(f"method hyperparameter {name!r} clashes with the flag --{name}")
        integer = all(isinstance(v, int) and not isinstance(v, bool) for v in defaults.values())
        what = _HYPERPARAMETER_HELP.get(name, f"{'/'.join(defaults)}: hyperparameter {name}")
        auto_flag(name, f"{what}. {_auto(name)} ({_describe_defaults(defaults)}).", integer)

    # Optimisation.
    flags.DEFINE_string("optimizer", AUTO, f"Optimizer: {', '.join(OPTIMIZERS)} (sgd with --momentum, "
                        f"the paper) or auto. {_auto('optimizer')}.", **fv)
    flags.DEFINE_integer("batch_size", 128, "Global batch size (all replicas together).", **fv)
    flags.DEFINE_integer(
        "train_steps", None,
        f"Training steps. Default (when --epochs is not given either): {PAPER_TRAIN_STEPS} "
        f"(the paper), but {DIGITS_EPOCHS:g} epochs on digits.", **fv)
    flags.DEFINE_float("epochs", None, "Training length in passes over the training data "
                       "(instead of --train_steps; may be fractional).", **fv)
    flags.DEFINE_integer(
        "steps_per_epoch", None,
        "Steps per Keras epoch: the checkpoint, CSV/TensorBoard log and validation interval. "
        "Default: one pass over the training data (examples // batch_size).", **fv)
    auto_flag("learning_rate", f"Initial learning rate. {_auto('learning_rate')}.")
    flags.DEFINE_list(
        "lr_boundaries", [AUTO],
        "Steps where the learning rate is divided by 10: a value in (0, 1) is a fraction of the "
        "training steps, an integer >= 1 an absolute step. Empty: constant. The paper's are 30k "
        "and 45k of 80k, as fractions, so any length keeps the shape. "
        f"{_auto('lr_boundaries')}.", **fv)
    flags.DEFINE_string(
        "epsilon_warmup", AUTO,
        "Ramp the training attack's epsilon (and step size) linearly from 0 over this many "
        "steps, for every method: an integer number of steps, a fraction in (0, 1) of the "
        "training steps, or epochs written as e.g. 2epochs. 0: no warm-up (the paper). "
        f"{_auto('epsilon_warmup')}.", **fv)
    flags.DEFINE(_AutoParser(), "awp_gamma", 0.0,
                 "Adversarial weight perturbation (Wu et al. 2020), for any method: each step the "
                 "kernels are perturbed by gamma times their norm along the gradient of the "
                 "method's loss, and the step's gradient is taken there. 0: off (the paper). "
                 f"{_auto('awp_gamma')}.", serializer=_AutoSerializer(), **fv)
    flags.DEFINE_string(
        "awp_warmup", AUTO,
        f"Training before the weight perturbation starts, in the forms of --epsilon_warmup. "
        f"{_auto('awp_warmup')}.", **fv)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum, in [0, 1).", **fv)
    auto_flag("weight_decay", "Coupled L2 weight decay (0.5 * wd * sum(w^2) added to the loss). "
              f"{_auto('weight_decay')}.")

    # Evaluation.
    auto_flag("eval_epsilon", f"Linf radius of the evaluation PGD attack. {_auto('eval_epsilon')}.")
    auto_flag("eval_step_size", f"Step size of the evaluation PGD attack. {_auto('eval_step_size')}.")
    flags.DEFINE_integer(
        "eval_pgd_steps", 10,
        "Steps of the evaluation PGD attack (random start) for the validation and final test "
        "PGD accuracy; 0: clean accuracy only.", **fv)
    flags.DEFINE_integer("validation_freq", 1,
                         "Validate on the test set every N Keras epochs during training "
                         "(0: never; the final test evaluation always runs).", **fv)

    # Run.
    flags.DEFINE_integer("seed", 0, "Root seed: weight init, data order and augmentation, and "
                         "the training step's randomness.", **fv)
    flags.DEFINE_boolean(
        "deterministic", False,
        "Run TensorFlow ops deterministically (tf.config.experimental.enable_op_determinism): "
        "two runs with one seed give identical weights, at some cost in speed.", **fv)
    flags.DEFINE_string("strategy", "default",
                        f"tf.distribute strategy ({', '.join(STRATEGY_NAMES)}): default is one device, "
                        "mirrored all local GPUs (else the CPU), multi_worker the cluster in TF_CONFIG.",
                        **fv)
    flags.DEFINE_string("tpu", None, "--strategy=tpu: TPU name or grpc address (default: "
                        "TPU_NAME or the local TPU VM).", **fv)
    flags.DEFINE_string(
        "model_dir", None,
        "Checkpoint (backup/), metrics.csv, TensorBoard logs (tensorboard/), the resolved "
        "flags (flags.txt) and config (config.json). Rerunning with the same --model_dir "
        "resumes. Default: runs/<dataset>-<method>.", **fv)
    flags.DEFINE_string("export_dir", None, "SavedModel of the trained classifier. Default: "
                        "<model_dir>/export.", **fv)


# --------------------------------------------------------------------------------------------
# Flags to config.


def flag_names() -> list[str]:
    """The training flags that `rat_tf.config.resolve` takes (its fields' names)."""
    return [*config_lib.DEFAULTS, *config_lib.method_hyperparameters()]


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> config_lib.TrainConfig:
    """Turns parsed flags into a frozen `TrainConfig` (`rat_tf.config.resolve` on their values).

    A method hyperparameter flag given for a method that does not take it is ignored with a
    warning. The "auto"s that depend on the image shape of npz:/folder: data stay open
    (`rat_tf.config.resolve_for_data` closes them once the data is loaded).

    Args:
      flag_values: parsed flags defined by `define_flags`.

    Returns:
      The config.

    Raises:
      app.UsageError: a value the library refuses, as `--flag=value: message`.
    """
    method = flag_values.method
    if method in methods_lib.METHODS:
        takes = methods_lib.METHODS[method].hyperparameters()
        for name in config_lib.method_hyperparameters():
            if name not in takes and flag_values[name].present:
                logging.warning("--%s is not a hyperparameter of method %s; ignored", name, method)
    try:
        return config_lib.resolve({name: flag_values[name].value for name in flag_names()
                                   if name in flag_values})
    except config_lib.ConfigError as err:
        raise usage_error(err) from None
