"""Command-line flags of train_main.py, and the one place they turn into config objects.

    from absl import flags
    import flags as rat_flags            # a top-level package: import it under an alias

    rat_flags.define_flags()             # once, under __main__ (or on a fresh FlagValues)
    config = rat_flags.config_from_flags(flags.FLAGS)   # frozen TrainConfig, "auto"s resolved

Every flag has a default. Method hyperparameter flags are generated from
`rat_tf.methods.METHODS`: one flag per hyperparameter name, default "auto" = the chosen method's
own default (the paper's CIFAR value), with two dataset rules: --epsilon is 0.1 on digits and
0.3 on mnist, and --max_scale is 3.0 on ImageNette; --step_size follows --epsilon at the
method's ratio. A method receives exactly the hyperparameters it takes. Bad values fail at parse
time with absl's one-line "flag --name=value: ..." error (exit status 1).

Config fields are named after their flags, so a config turns back into a flagfile
(`to_flagfile`) that reproduces the run with every "auto" resolved.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Optional

from absl import flags
from absl import logging

from rat_tf import architectures
from rat_tf import data as data_lib
from rat_tf import distribute
from rat_tf import methods as methods_lib
from rat_tf import precision as precision_lib
from rat_tf import schedules

AUTO = "auto"

# Training length when neither --train_steps nor --epochs is given.
PAPER_TRAIN_STEPS = 80_000
DIGITS_EPOCHS = 20.0

OPTIMIZERS = ("sgd", "adam")
AUGMENT_CHOICES = (AUTO, "true", "false")

# Dataset families for the "auto" rules.
_DIGITS, _MNIST, _CIFAR, _IMAGENETTE, _CUSTOM = "digits", "mnist", "cifar", "imagenette", "custom"

# --epsilon=auto on datasets whose pixel budget differs from CIFAR's 8/255.
DATASET_EPSILON = {_DIGITS: 0.1, _MNIST: 0.3}
# The epsilon the evaluation uses when the method has none (ST): the CIFAR budget.
DEFAULT_EPSILON = 8 / 255
# --max_scale=auto on ImageNette (the paper's S = 3).
IMAGENETTE_MAX_SCALE = 3.0
# Methods whose `step_size` is not a pixel step (ADT: the update size of its distribution
# parameters), so --step_size=auto does not scale it with --epsilon.
NON_PIXEL_STEP_SIZE = frozenset({"adt"})

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


def dataset_family(spec: str) -> str:
    """The family a dataset spec belongs to, for the "auto" rules."""
    lowered = spec.strip().lower()
    if lowered == "digits":
        return _DIGITS
    if lowered == "mnist":
        return _MNIST
    if lowered in ("cifar10", "cifar100"):
        return _CIFAR
    if lowered.startswith("imagenette"):
        return _IMAGENETTE
    return _CUSTOM


def method_hyperparameters() -> dict[str, dict[str, Any]]:
    """{hyperparameter name: {method name: default}} over all registered methods."""
    table: dict[str, dict[str, Any]] = {}
    for method in methods_lib.METHOD_NAMES:
        for name, default in methods_lib.METHODS[method].hyperparameters().items():
            table.setdefault(name, {})[method] = default
    return table


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


def _check_epsilon_warmup(value: str) -> bool:
    try:
        schedules.parse_warmup(value)
    except ValueError as err:
        raise flags.ValidationError(str(err)) from None
    return True


def _check_lr_boundaries(values: list[str]) -> bool:
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
    for name, defaults in method_hyperparameters().items():
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
    flags.DEFINE_enum("optimizer", "sgd", OPTIMIZERS,
                      "Optimizer: sgd (with --momentum, the paper) or adam.", **fv)
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
    flags.DEFINE_float("learning_rate", 0.1, "Initial learning rate.", **fv)
    flags.DEFINE_list(
        "lr_boundaries", ["0.375", "0.5625"],
        "Steps where the learning rate is divided by 10: a value in (0, 1) is a fraction of the "
        "training steps, an integer >= 1 an absolute step. Default: the paper's 30k and 45k of "
        "80k, as fractions, so any length keeps the shape. Empty: constant.", **fv)
    flags.DEFINE_string(
        "epsilon_warmup", "0",
        "Ramp the training attack's epsilon (and step size) linearly from 0 over this many "
        "steps, for every method: an integer number of steps, a fraction in (0, 1) of the "
        "training steps, or epochs written as e.g. 2epochs. 0: no warm-up (the paper).", **fv)
    flags.DEFINE_float("momentum", 0.9, "SGD momentum.", **fv)
    flags.DEFINE_float("weight_decay", 2e-4,
                       "Coupled L2 weight decay (0.5 * wd * sum(w^2) added to the loss).", **fv)

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
    register("learning_rate", lambda v: math.isfinite(v) and v > 0, "learning_rate must be > 0")
    register("lr_boundaries", _check_lr_boundaries, "bad learning-rate boundary")
    register("epsilon_warmup", _check_epsilon_warmup, "bad epsilon warm-up")
    register("momentum", lambda v: 0.0 <= v < 1.0, "momentum must be in [0, 1)")
    register("weight_decay", lambda v: math.isfinite(v) and v >= 0.0, "weight_decay must be >= 0")
    register("model_dir", lambda v: v is None or bool(v.strip()), "model_dir must not be empty")
    register("export_dir", lambda v: v is None or bool(v.strip()), "export_dir must not be empty")
    flags.register_multi_flags_validator(
        ["train_steps", "epochs"], lambda d: d["train_steps"] is None or d["epochs"] is None,
        message="give --train_steps or --epochs, not both", **fv)
    flags.register_multi_flags_validator(
        ["tpu", "strategy"], lambda d: not d["tpu"] or d["strategy"] == "tpu",
        message="--tpu only applies with --strategy=tpu", **fv)


# --------------------------------------------------------------------------------------------
# Config objects.


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What to train and test on (see `rat_tf.data.load`).

    Attributes:
      augment: True/False, or None for "auto" until the image shape is known
        (`resolve_for_data`).
    """

    dataset: str = "digits"
    data_dir: Optional[str] = None
    image_size: Optional[int] = None
    max_train_examples: Optional[int] = None
    max_test_examples: Optional[int] = None
    augment: Optional[bool] = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The classifier.

    Attributes:
      arch: an architecture name, or "auto" until the image shape is known (npz:/folder:).
      precision: a Keras dtype policy name in `rat_tf.precision.PRECISIONS`.
    """

    arch: str = "small_cnn"
    synchronized_bn: bool = False
    precision: str = "float32"


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """The training method and the hyperparameters it takes, resolved (pixel units).

    Attributes:
      method: a name in `rat_tf.methods.METHOD_NAMES`.
      hyperparameters: (name, value) pairs, exactly the method's constructor arguments.
    """

    method: str = "rat"
    hyperparameters: tuple[tuple[str, Any], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        """The hyperparameters as keyword arguments, for `RATModel(..., **kwargs)`."""
        return dict(self.hyperparameters)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self.kwargs()}


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer, schedule and training length (exactly one of train_steps and epochs)."""

    optimizer: str = "sgd"
    batch_size: int = 128
    train_steps: Optional[int] = PAPER_TRAIN_STEPS
    epochs: Optional[float] = None
    steps_per_epoch: Optional[int] = None
    learning_rate: float = 0.1
    lr_boundaries: tuple[float, ...] = schedules.PAPER_BOUNDARY_FRACTIONS
    momentum: float = 0.9
    weight_decay: float = 2e-4
    epsilon_warmup: str = "0"


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """The evaluation attack (PGD with random start) and validation during training."""

    eval_epsilon: float = 8 / 255
    eval_step_size: float = 2 / 255
    eval_pgd_steps: int = 10
    validation_freq: int = 1


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where things go and how the run is executed."""

    seed: int = 0
    deterministic: bool = False
    strategy: str = "default"
    tpu: Optional[str] = None
    model_dir: str = "runs/digits-rat"
    export_dir: str = "runs/digits-rat/export"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The full, resolved configuration of a training run."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    method: MethodConfig = MethodConfig()
    optim: OptimConfig = OptimConfig()
    eval: EvalConfig = EvalConfig()
    run: RunConfig = RunConfig()

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """{section: {flag name: value}}, plain JSON types (tuples become lists)."""
        sections = {}
        for field in dataclasses.fields(self):
            section = getattr(self, field.name)
            values = section.to_dict() if isinstance(section, MethodConfig) else \
                dataclasses.asdict(section)
            sections[field.name] = json_ready(values)
        return sections

    def flag_values(self) -> dict[str, Any]:
        """{flag name: value} of every flag the run uses."""
        values = {}
        for section in self.to_dict().values():
            values.update(section)
        return values


def json_ready(value: Any) -> Any:
    """Tuples (also nested) become lists, as in JSON."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def default_model_dir(dataset: str, method: str) -> str:
    """runs/<dataset>-<method>, with the dataset spec made file-name safe."""
    spec = dataset.strip()
    for prefix in data_lib.SPEC_PREFIXES:
        if spec.lower().startswith(prefix):
            path = spec[len(prefix):].strip().rstrip("/\\")
            stem = re.sub(r"\.npz$", "", path.replace("\\", "/").split("/")[-1], flags=re.I)
            spec = f"{prefix[:-1]}-{stem}"
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", spec.lower()).strip("-.") or "data"
    return f"runs/{slug}-{method}"


def _auto_arch(family: str) -> str:
    return {_DIGITS: "small_cnn", _MNIST: "small_cnn", _CIFAR: "wrn-34-10",
            _IMAGENETTE: "preact_resnet18"}.get(family, AUTO)


def _auto_augment(family: str) -> Optional[bool]:
    return {_DIGITS: False, _MNIST: False, _CIFAR: True, _IMAGENETTE: True}.get(family)


def _resolve_method(flag_values: flags.FlagValues, family: str) -> tuple[MethodConfig, float]:
    """The method's hyperparameters with "auto"s resolved, and the attack epsilon."""
    method = flag_values.method
    defaults = methods_lib.METHODS[method].hyperparameters()
    for name in method_hyperparameters():
        if name not in defaults and flag_values[name].present:
            logging.warning("--%s is not a hyperparameter of method %s; ignored", name, method)

    def given(name):
        return flag_values[name].value if name in flag_values else AUTO

    epsilon = given("epsilon")
    if epsilon == AUTO:
        epsilon = DATASET_EPSILON.get(family, defaults.get("epsilon", DEFAULT_EPSILON))
    values = {}
    for name, default in defaults.items():
        value = given(name)
        if value != AUTO:
            values[name] = value
        elif name == "epsilon":
            values[name] = epsilon
        elif (name == "step_size" and method not in NON_PIXEL_STEP_SIZE
              and defaults.get("epsilon") and epsilon != defaults["epsilon"]):
            values[name] = default * epsilon / defaults["epsilon"]
        elif name == "max_scale" and family == _IMAGENETTE:
            values[name] = IMAGENETTE_MAX_SCALE
        else:
            values[name] = default
        if isinstance(default, float):
            values[name] = float(values[name])
    return MethodConfig(method=method, hyperparameters=tuple(values.items())), float(epsilon)


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> TrainConfig:
    """Turns parsed flags into a frozen `TrainConfig`, resolving the dataset-name "auto"s.

    Two "auto"s depend on the image shape of npz:/folder: data and stay open here
    (`augment=None`, `arch="auto"`); `resolve_for_data` closes them once the data is loaded.

    Args:
      flag_values: parsed flags defined by `define_flags`.

    Returns:
      The config.
    """
    f = flag_values
    family = dataset_family(f.dataset)
    method, epsilon = _resolve_method(f, family)
    eval_epsilon = epsilon if f.eval_epsilon == AUTO else f.eval_epsilon
    eval_step_size = eval_epsilon / 4 if f.eval_step_size == AUTO else f.eval_step_size
    augment = _auto_augment(family) if f.augment == AUTO else f.augment == "true"
    arch = _auto_arch(family) if f.arch == AUTO else architectures.parse(f.arch).name

    train_steps, epochs = f.train_steps, f.epochs
    if train_steps is None and epochs is None:
        if family == _DIGITS:
            epochs = DIGITS_EPOCHS
        else:
            train_steps = PAPER_TRAIN_STEPS
    model_dir = f.model_dir.strip() if f.model_dir else default_model_dir(f.dataset, f.method)
    export_dir = f.export_dir.strip() if f.export_dir else f"{model_dir.rstrip('/')}/export"

    return TrainConfig(
        data=DataConfig(dataset=f.dataset.strip(), data_dir=f.data_dir, image_size=f.image_size,
                        max_train_examples=f.max_train_examples,
                        max_test_examples=f.max_test_examples, augment=augment),
        model=ModelConfig(arch=arch, synchronized_bn=f.synchronized_bn,
                          precision=f.precision),
        method=method,
        optim=OptimConfig(optimizer=f.optimizer, batch_size=f.batch_size, train_steps=train_steps,
                          epochs=epochs, steps_per_epoch=f.steps_per_epoch,
                          learning_rate=f.learning_rate,
                          lr_boundaries=tuple(float(b) for b in f.lr_boundaries),
                          momentum=f.momentum, weight_decay=f.weight_decay,
                          epsilon_warmup=f.epsilon_warmup.strip()),
        eval=EvalConfig(eval_epsilon=float(eval_epsilon), eval_step_size=float(eval_step_size),
                        eval_pgd_steps=f.eval_pgd_steps, validation_freq=f.validation_freq),
        run=RunConfig(seed=f.seed, deterministic=f.deterministic, strategy=f.strategy,
                      tpu=f.tpu or None, model_dir=model_dir, export_dir=export_dir),
    )


def resolve_for_data(config: TrainConfig, input_shape: tuple[int, int, int]) -> TrainConfig:
    """Closes the "auto"s that depend on the image shape (npz:/folder: data).

    --augment=auto: on for RGB images of at least 32x32. --arch=auto: small_cnn below 32x32 or
    for grayscale, else preact_resnet18.
    """
    height, width, channels = input_shape
    large_rgb = min(height, width) >= 32 and channels == 3
    data, model = config.data, config.model
    if data.augment is None:
        data = dataclasses.replace(data, augment=large_rgb)
    if model.arch == AUTO:
        model = dataclasses.replace(model, arch="preact_resnet18" if large_rgb else "small_cnn")
    return dataclasses.replace(config, data=data, model=model)


def _format_flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_format_flag_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_flagfile(config: TrainConfig) -> str:
    """A flagfile (`--flagfile=...`) that reproduces `config`, one `--name=value` per line.

    Flags whose value is None (their default) are written as comments. The hyperparameters
    the method does not take are left out (they stay "auto").
    """
    lines = ["# Resolved flags of a train_main.py run; rerun with --flagfile=THIS_FILE."]
    for name, value in config.flag_values().items():
        if value is None:
            lines.append(f"# --{name} not set")
        else:
            lines.append(f"--{name}={_format_flag_value(value)}")
    return "\n".join(lines) + "\n"
