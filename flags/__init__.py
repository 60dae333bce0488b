"""Command-line flags of train_main.py, and the one place they turn into config objects.

    from absl import flags
    import flags as rat_flags            # a top-level package: import it under an alias

    rat_flags.define_flags()             # once, under __main__ (or on a fresh FlagValues)
    config = rat_flags.config_from_flags(flags.FLAGS)   # frozen TrainConfig, "auto"s resolved

Every flag has a default. Method hyperparameter flags are generated from
`rat_tf.methods.METHODS`: one flag per hyperparameter name, default "auto" (the rules are in
`rat_tf.config`). Bad values fail at parse time with absl's one-line "flag --name=value: ..."
error (exit status 1); what only the library can check comes back as a
`rat_tf.config.ConfigError` and becomes the same kind of error in `usage_error`.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import re
from typing import Any

from absl import app, flags, logging

from rat_tf import architectures
from rat_tf import config as config_lib
from rat_tf import data as data_lib
from rat_tf import methods as methods_lib
from rat_tf import weight_perturbation as awp_lib
from rat_tf.config import AUTO, DIGITS_EPOCHS, OPTIMIZERS, PAPER_TRAIN_STEPS
from rat_tf.training import distribute, schedules
from rat_tf.training import precision as precision_lib

AUGMENT_CHOICES = (AUTO, "true", "false")

# Help text of the known method hyperparameters; any other hyperparameter of a method gets a
# generic help line. The "auto" defaults are appended from the methods themselves.
_HYPERPARAMETER_HELP = {
    "epsilon": "Linf radius of the training attack in pixel units (images in [0, 1]); "
               "a fraction like 8/255 or a number like 0.031. auto: 0.1 on digits, 0.3 on "
               "mnist, otherwise the method's default",
    "step_size": "Attack step size (pixel units; for ADT the update size of its distribution "
                 "parameters), 2/255 or 0.0078. auto: the method's default, scaled by "
                 "--epsilon / the method's default epsilon (not for ADT)",
    "num_steps": "Attack steps K (ADT: T). auto: the method's default",
    "num_samples": "RAT / SAT+ARS: region samples m per example; ADT: samples k per step. "
                   "auto: the method's default",
    "max_scale": "RAT / SAT+ARS: largest scale S of the scale set {0, scale_step, ..., S}. "
                 "auto: 3.0 on imagenette, otherwise the method's default",
    "scale_step": "RAT / SAT+ARS: spacing of the scale set. auto: the method's default",
    "beta_max": "RAT: label-smoothing factor at scale 0. auto: the method's default",
    "beta_min": "RAT: label-smoothing factor at the largest scale. auto: the method's default",
    "end_point_fraction": "RAT: the fraction of the n * m training points that are the PGD end "
                          "points, with hard labels (the rest are region samples). auto: 0.5 on "
                          "MNIST (mnist, or 28x28 grayscale npz:/folder: data), otherwise the "
                          "method's default",
    "smooth_from_scale": "RAT: label smoothing starts at this scale (hard labels below it). "
                         "auto: the method's default",
    "gamma": "AVmixup: vertex scale gamma. auto: the method's default",
    "lambda1": "AVmixup: label-smoothing factor at the clean point. auto: the method's default",
    "lambda2": "AVmixup: label-smoothing factor at the vertex. auto: the method's default",
    "beta": "TRADES: weight of the KL term. auto: the method's default",
    "entropy_weight": "ADT: weight lambda of the entropy term. auto: the method's default",
}

_UNIT = (lambda v: 0.0 <= v <= 1.0, "must be in [0, 1]")
_POSITIVE = (lambda v: v > 0.0, "must be > 0")
_NON_NEGATIVE = (lambda v: v >= 0.0, "must be >= 0")
_HYPERPARAMETER_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epsilon": (_UNIT[0], "must be in [0, 1] (pixel units)"),
    "step_size": _NON_NEGATIVE,
    "num_steps": _NON_NEGATIVE,
    "num_samples": (lambda v: v >= 1, "must be >= 1"),
    "max_scale": _POSITIVE,
    "scale_step": _POSITIVE,
    "beta_max": _UNIT,
    "beta_min": _UNIT,
    "gamma": _POSITIVE,
    "lambda1": _UNIT,
    "lambda2": _UNIT,
    "beta": _NON_NEGATIVE,
    "entropy_weight": _NON_NEGATIVE,
}


# The training recipe's "auto" rule, in the help of --optimizer, --learning_rate,
# --weight_decay and --epsilon_warmup.
_RECIPE_AUTO = "auto (the training recipe)"


def _recipe_rule(name: str) -> str:
    mnist, paper = config_lib.MNIST_RECIPE[name], config_lib.PAPER_RECIPE[name]
    if isinstance(mnist, tuple):
        mnist, paper = ",".join(f"{b:g}" for b in mnist), ",".join(f"{b:g}" for b in paper)
    return (f"{_format_default(mnist)} for mnist and 28x28 grayscale npz:/folder: data, "
            f"{_format_default(paper)} otherwise (the paper's recipe)")


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


def _format_default(value: Any) -> str:
    if isinstance(value, float):
        in_255ths = value * 255
        if 0 < value < 1 and abs(in_255ths - round(in_255ths)) < 1e-9:
            return f"{round(in_255ths)}/255"
        return f"{value:g}"
    return str(value)


def _describe_defaults(defaults: dict[str, Any]) -> str:
    groups: dict[str, list[str]] = {}
    for method, value in defaults.items():
        groups.setdefault(_format_default(value), []).append(method)
    return "; ".join(f"{'/'.join(ms)} {v}" for v, ms in groups.items())


def _check_dataset(spec: str) -> bool:
    lowered = (spec or "").strip().lower()
    if lowered in data_lib.DATASET_NAMES:
        return True
    for prefix in data_lib.SPEC_PREFIXES:
        if lowered.startswith(prefix) and spec.strip()[len(prefix):].strip():
            return True
    raise flags.ValidationError(f"unknown dataset; allowed: {data_lib.describe_specs()}")


def _check_arch(name: str) -> bool:
    if name == AUTO:
        return True
    try:
        architectures.parse(name)
    except ValueError as err:
        raise flags.ValidationError(f"{str(err).rstrip('.')}, or auto") from None
    return True


def _warmup_check(what: str) -> Callable[[str], bool]:
    """A validator of a warm-up flag ("auto" or a form `schedules.parse_warmup` accepts)."""

    def check(value: str) -> bool:
        if str(value).strip().lower() == AUTO:
            return True
        try:
            schedules.parse_warmup(value, what=what)
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None
        return True

    return check


def _check_lr_boundaries(values: list[str]) -> bool:
    if [v.strip().lower() for v in values] == [AUTO]:
        return True
    for value in values:
        try:
            number = float(value)
        except ValueError:
            raise flags.ValidationError(f"{value!r} is not a number") from None
        if not (0.0 < number < 1.0 or (number >= 1.0 and number == int(number))):
            raise flags.ValidationError(
                f"{value} must be a fraction in (0, 1) of the training steps or an integer "
                "step number >= 1")
    return True


# --------------------------------------------------------------------------------------------
# Flag definitions.


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines all training flags (with defaults and validators) on `flag_values`."""
    fv = dict(flag_values=flag_values)

    def register(name, checker, message):
        flags.register_validator(name, checker, message=message, **fv)

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
                         "center crop). Default: native size (ImageNette: 160).", lower_bound=1,
                         **fv)
    flags.DEFINE_integer("max_train_examples", None, "Keep only the first N training examples.",
                         lower_bound=1, **fv)
    flags.DEFINE_integer("max_test_examples", None, "Keep only the first N test examples.",
                         lower_bound=1, **fv)
    flags.DEFINE_enum(
        "augment", AUTO, AUGMENT_CHOICES,
        "Random crop (4 px zero padding) + horizontal flip. auto: on for RGB images of at least "
        "32x32 (CIFAR, ImageNette, such npz:/folder: data), off otherwise (digits, mnist).", **fv)

    # Model.
    flags.DEFINE_string(
        "arch", AUTO,
        "Architecture: small_cnn, preact_resnet18, wrn-34-10 or any wrn-D-K. auto: small_cnn "
        "for digits and mnist, wrn-34-10 for cifar10/cifar100, preact_resnet18 for imagenette; "
        "for npz:/folder: data small_cnn below 32x32 or for grayscale, else preact_resnet18.",
        **fv)
    flags.DEFINE_boolean("synchronized_bn", False,
                         "Synchronise BatchNorm statistics across replicas.", **fv)
    flags.DEFINE_enum(
        "precision", "float32", precision_lib.PRECISIONS,
        "Keras dtype policy of the model: float32, mixed_float16 (GPUs; with dynamic loss "
        "scaling) or mixed_bfloat16 (TPUs, recent GPUs and CPUs). Logits, the attack's loss and "
        "the training loss stay float32.", **fv)

    # Method and its hyperparameters (one flag per hyperparameter name of any method).
    flags.DEFINE_enum("method", "rat", methods_lib.METHOD_NAMES, "Training method.", **fv)
    for name, defaults in config_lib.method_hyperparameters().items():
        if name in flag_values:
            raise ValueError(f"method hyperparameter {name!r} clashes with the flag --{name}")
        integer = all(isinstance(v, int) and not isinstance(v, bool) for v in defaults.values())
        help_text = _HYPERPARAMETER_HELP.get(
            name, f"{'/'.join(defaults)}: hyperparameter {name}. auto: the method's default")
        flags.DEFINE(_AutoParser(integer), name, AUTO,
                     f"{help_text} ({_describe_defaults(defaults)}).",
                     serializer=_AutoSerializer(), **fv)
        if name in _HYPERPARAMETER_RANGES:
            check, message = _HYPERPARAMETER_RANGES[name]
            register(name, lambda v, check=check: v == AUTO or check(v),
                     f"{name} {message} or 'auto'")
    if "beta_min" in flag_values and "beta_max" in flag_values:
        rat_defaults = methods_lib.METHODS["rat"].hyperparameters()

        def betas_ordered(d):
            low = rat_defaults["beta_min"] if d["beta_min"] == AUTO else d["beta_min"]
            high = rat_defaults["beta_max"] if d["beta_max"] == AUTO else d["beta_max"]
            return low <= high

        flags.register_multi_flags_validator(["beta_min", "beta_max"], betas_ordered,
                                             message="beta_min must be <= beta_max", **fv)

    # Optimisation.
    flags.DEFINE_enum("optimizer", AUTO, (AUTO, *OPTIMIZERS),
                      f"Optimizer: sgd (with --momentum, the paper) or adam. {_RECIPE_AUTO}: "
                      f"{_recipe_rule('optimizer')}.", **fv)
    flags.DEFINE_integer("batch_size", 128, "Global batch size (all replicas together).",
                         lower_bound=1, **fv)
    flags.DEFINE_integer(
        "train_steps", None,
        f"Training steps. Default (when --epochs is not given either): {PAPER_TRAIN_STEPS} "
        f"(the paper), but {DIGITS_EPOCHS:g} epochs on digits.", lower_bound=1, **fv)
    flags.DEFINE_float("epochs", None, "Training length in passes over the training data "
                       "(instead of --train_steps; may be fractional).", **fv)
    flags.DEFINE_integer(
        "steps_per_epoch", None,
        "Steps per Keras epoch: the checkpoint, CSV/TensorBoard log and validation interval. "
        "Default: one pass over the training data (examples // batch_size).", lower_bound=1,
        **fv)
    flags.DEFINE(_AutoParser(), "learning_rate", AUTO,
                 f"Initial learning rate. {_RECIPE_AUTO}: {_recipe_rule('learning_rate')}.",
                 serializer=_AutoSerializer(), **fv)
    flags.DEFINE_list(
        "lr_boundaries", [AUTO],
        "Steps where the learning rate is divided by 10: a value in (0, 1) is a fraction of the "
        "training steps, an integer >= 1 an absolute step. Empty: constant. The paper's are 30k "
        "and 45k of 80k, as fractions, so any length keeps the shape. "
        f"{_RECIPE_AUTO}: {_recipe_rule('lr_boundaries')}.", **fv)
    flags.DEFINE_string(
        "epsilon_warmup", AUTO,
        "Ramp the training attack's epsilon (and step size) linearly from 0 over this many "
        "steps, for every method: an integer number of steps, a fraction in (0, 1) of the "
        "training steps, or epochs written as e.g. 2epochs. 0: no warm-up (the paper). "
        f"{_RECIPE_AUTO}: {_recipe_rule('epsilon_warmup')}.", **fv)
    flags.DEFINE(_AutoParser(), "awp_gamma", 0.0,
                 "Adversarial weight perturbation (Wu et al. 2020), for any method: each step the "
                 "kernels are perturbed by gamma times their norm along the gradient of the "
                 "method's loss, and the step's gradient is taken there. 0: off (the paper). "
                 f"auto: the official AWP code's value, {awp_lib.default_gamma('trades'):g} for "
                 f"trades and {awp_lib.DEFAULT_GAMMA:g} otherwise.",
                 serializer=_AutoSerializer(), **fv)
    flags.DEFINE_string(
        "awp_warmup", AUTO,
        "Training before the weight perturbation starts, in the forms of --epsilon_warmup. "
        f"auto: {awp_lib.default_warmup('trades')} of the run for trades (the official code's "
        "10 of 200 epochs), 0 otherwise.", **fv)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.", **fv)
    flags.DEFINE(_AutoParser(), "weight_decay", AUTO,
                 "Coupled L2 weight decay (0.5 * wd * sum(w^2) added to the loss). "
                 f"{_RECIPE_AUTO}: {_recipe_rule('weight_decay')}.", serializer=_AutoSerializer(),
                 **fv)

    # Evaluation.
    flags.DEFINE(_AutoParser(), "eval_epsilon", AUTO,
                 "Linf radius of the evaluation PGD attack. auto: --epsilon (8/255 for methods "
                 "without one, like st; 0.1 on digits, 0.3 on mnist).",
                 serializer=_AutoSerializer(), **fv)
    flags.DEFINE(_AutoParser(), "eval_step_size", AUTO,
                 "Step size of the evaluation PGD attack. auto: eval_epsilon / 4 (the paper's "
                 "2/255 at 8/255).", serializer=_AutoSerializer(), **fv)
    flags.DEFINE_integer(
        "eval_pgd_steps", 10,
        "Steps of the evaluation PGD attack (random start) for the validation and final test "
        "PGD accuracy; 0: clean accuracy only.", lower_bound=0, **fv)
    flags.DEFINE_integer("validation_freq", 1,
                         "Validate on the test set every N Keras epochs during training "
                         "(0: never; the final test evaluation always runs).", lower_bound=0,
                         **fv)

    # Run.
    flags.DEFINE_integer("seed", 0, "Root seed: weight init, data order and augmentation, and "
                         "the training step's randomness.", **fv)
    flags.DEFINE_boolean(
        "deterministic", False,
        "Run TensorFlow ops deterministically (tf.config.experimental.enable_op_determinism): "
        "two runs with one seed give identical weights, at some cost in speed.", **fv)
    flags.DEFINE_enum("strategy", "default", distribute.STRATEGY_NAMES,
                      "tf.distribute strategy: default (one device), mirrored (all local GPUs, "
                      "else the CPU), multi_worker (cluster from TF_CONFIG) or tpu.", **fv)
    flags.DEFINE_string("tpu", None, "--strategy=tpu: TPU name or grpc address (default: "
                        "TPU_NAME or the local TPU VM).", **fv)
    flags.DEFINE_string(
        "model_dir", None,
        "Checkpoint (backup/), metrics.csv, TensorBoard logs (tensorboard/), the resolved "
        "flags (flags.txt) and config (config.json). Rerunning with the same --model_dir "
        "resumes. Default: runs/<dataset>-<method>.", **fv)
    flags.DEFINE_string("export_dir", None, "SavedModel of the trained classifier. Default: "
                        "<model_dir>/export.", **fv)

    # Validators (one-line messages; absl names the flag and its value).
    register("dataset", _check_dataset, "unknown dataset")
    register("arch", _check_arch, "unknown architecture")
    register("eval_epsilon", lambda v: v == AUTO or 0.0 <= v <= 1.0,
             "eval_epsilon must be in [0, 1] (pixel units) or 'auto'")
    register("eval_step_size", lambda v: v == AUTO or v >= 0.0,
             "eval_step_size must be >= 0 or 'auto'")
    register("epochs", lambda v: v is None or (math.isfinite(v) and v > 0), "epochs must be > 0")
    register("learning_rate", lambda v: v == AUTO or (math.isfinite(v) and v > 0),
             "learning_rate must be > 0 or 'auto'")
    register("lr_boundaries", _check_lr_boundaries, "bad learning-rate boundary")
    register("epsilon_warmup", _warmup_check("epsilon warm-up"), "bad epsilon warm-up")
    register("awp_gamma", lambda v: v == AUTO or (math.isfinite(v) and v >= 0.0),
             "awp_gamma must be >= 0 or 'auto'")
    register("awp_warmup", _warmup_check("AWP warm-up"), "bad AWP warm-up")
    register("momentum", lambda v: 0.0 <= v < 1.0, "momentum must be in [0, 1)")
    register("weight_decay", lambda v: v == AUTO or (math.isfinite(v) and v >= 0.0),
             "weight_decay must be >= 0 or 'auto'")
    register("model_dir", lambda v: v is None or bool(v.strip()), "model_dir must not be empty")
    register("export_dir", lambda v: v is None or bool(v.strip()), "export_dir must not be empty")
    flags.register_multi_flags_validator(
        ["train_steps", "epochs"], lambda d: d["train_steps"] is None or d["epochs"] is None,
        message="give --train_steps or --epochs, not both", **fv)
    flags.register_multi_flags_validator(
        ["tpu", "strategy"], lambda d: not d["tpu"] or d["strategy"] == "tpu",
        message="--tpu only applies with --strategy=tpu", **fv)


# --------------------------------------------------------------------------------------------
# Flags to config.


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> config_lib.TrainConfig:
    """Turns parsed flags into a frozen `TrainConfig` (`rat_tf.config.resolve` on their values).

    A method hyperparameter flag given for a method that does not take it is ignored with a
    warning. Two "auto"s depend on the image shape of npz:/folder: data and stay open
    (`rat_tf.config.resolve_for_data` closes them once the data is loaded).

    Args:
      flag_values: parsed flags defined by `define_flags`.

    Returns:
      The config.
    """
    method = flag_values.method
    takes = methods_lib.METHODS[method].hyperparameters()
    for name in config_lib.method_hyperparameters():
        if name not in takes and flag_values[name].present:
            logging.warning("--%s is not a hyperparameter of method %s; ignored", name, method)
    names = [*config_lib.DEFAULTS, *config_lib.method_hyperparameters()]
    try:
        return config_lib.resolve({name: flag_values[name].value for name in names
                                   if name in flag_values})
    except config_lib.ConfigError as err:
        raise usage_error(err) from None


def usage_error(err: config_lib.ConfigError) -> app.UsageError:
    """The one-line usage error `--field=value: message` for a library `ConfigError`."""
    return app.UsageError(f"--{err.field}={err.value}: {err.message}")
