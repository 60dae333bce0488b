"""The "auto" rules, as data, the functions that apply them, and their words for the flag help.

A value given as "auto" is decided by the dataset (its family: digits, mnist, cifar, imagenette)
or, for npz:/folder: data, by the image shape once the data is loaded:

- Method hyperparameters: the method's own default (the paper's CIFAR value), except epsilon on
  digits and mnist (`DATASET_EPSILON`), max_scale on ImageNette (`IMAGENETTE_MAX_SCALE`) and
  RAT's end_point_fraction on MNIST and 28x28 grayscale data (`MNIST_METHOD_RULES`); step_size
  follows epsilon at the method's ratio (`NON_PIXEL_STEP_SIZE` excepted).
- The training recipe (optimizer, learning_rate, lr_boundaries, weight_decay, epsilon_warmup):
  the paper's CIFAR one (`PAPER_RECIPE`) everywhere but on MNIST and 28x28 grayscale data
  (`MNIST_RECIPE`); the paper's recipe keeps a small CNN at chance there.
- arch and augment: `AUTO_ARCH` and `AUTO_AUGMENT` by family; by shape for npz:/folder: data.
- The evaluation attack: eval_epsilon is the training epsilon, eval_step_size a fixed fraction
  of it (`EVAL_STEP_FRACTION`).
- AWP: the official code's gamma and warm-up for the method (`rat_tf.weight_perturbation`).

The `describe_*` functions put each rule into words for the flag help, from the same data, so
the help cannot drift from what resolution does (`describe_auto` by flag name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rat_tf import methods as methods_lib
from rat_tf import weight_perturbation as awp_lib

AUTO = "auto"

# Training length when neither train_steps nor epochs is given.
PAPER_TRAIN_STEPS = 80_000
# The paper's learning-rate boundaries, 30k and 45k of 80k steps, as fractions of the run.
PAPER_BOUNDARY_FRACTIONS: tuple[float, ...] = (0.375, 0.5625)
DIGITS_EPOCHS = 20.0

# The names a value may take: optimizers, Keras dtype policies of the model
# (`rat_tf.training.precision`) and tf.distribute strategies (`rat_tf.training.distribute`).
OPTIMIZERS = ("sgd", "adam")
PRECISIONS: tuple[str, ...] = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGY_NAMES: tuple[str, ...] = ("default", "mirrored", "multi_worker", "tpu")

# Dataset families for the "auto" rules, and the dataset names each stands for (for the help).
DIGITS, MNIST, CIFAR, IMAGENETTE, CUSTOM = "digits", "mnist", "cifar", "imagenette", "custom"
FAMILY_NAMES = {DIGITS: "digits", MNIST: "mnist", CIFAR: "cifar10/cifar100", IMAGENETTE: "imagenette"}

# epsilon=auto on datasets whose pixel budget differs from CIFAR's 8/255.
DATASET_EPSILON = {DIGITS: 0.1, MNIST: 0.3}
# The epsilon the evaluation uses when the method has none (ST): the CIFAR budget.
DEFAULT_EPSILON = 8 / 255
# max_scale=auto on ImageNette (the paper's S = 3).
IMAGENETTE_MAX_SCALE = 3.0
# Method hyperparameters whose "auto" differs on MNIST (dataset mnist, or 28x28 grayscale
# npz:/folder: data): at eps 0.3 the paper's RAT (S = 2: region points up to 0.6 from the image,
# all with soft labels) is broken by AutoAttack (benchmarks/results/reproduce.jsonl); with half of
# its points the PGD end points, with hard labels, it trains robust (benchmarks/results/study.jsonl).
MNIST_METHOD_RULES: dict[str, Any] = {"end_point_fraction": 0.5}
# Methods whose `step_size` is not a pixel step (ADT: the update size of its distribution
# parameters), so step_size=auto does not scale it with epsilon.
NON_PIXEL_STEP_SIZE = frozenset({"adt"})
# eval_step_size=auto: this fraction of eval_epsilon (the paper's 2/255 at 8/255).
EVAL_STEP_FRACTION = 0.25

# The training recipe's "auto" values: the paper's (CIFAR) recipe, and MNIST's (28x28 grayscale).
# MNIST's learning rate drops after 75% of the steps (with the paper's 37.5%, a short run drops
# it right after the warm-up, before the model has trained at the full epsilon).
RECIPE_FIELDS = ("optimizer", "learning_rate", "lr_boundaries", "weight_decay", "epsilon_warmup")
PAPER_RECIPE: dict[str, Any] = {"optimizer": "sgd", "learning_rate": 0.1,
                                "lr_boundaries": PAPER_BOUNDARY_FRACTIONS, "weight_decay": 2e-4,
                                "epsilon_warmup": "0"}
MNIST_RECIPE: dict[str, Any] = {"optimizer": "adam", "learning_rate": 1e-3, "lr_boundaries": (0.75,),
                                "weight_decay": 0.0, "epsilon_warmup": "1epochs"}
MNIST_SHAPE = (28, 28, 1)

# arch=auto and augment=auto by family; npz:/folder: data decide by the image shape: RGB images
# of at least LARGE_RGB_SIZE x LARGE_RGB_SIZE are "large".
AUTO_ARCH = {DIGITS: "small_cnn", MNIST: "small_cnn", CIFAR: "wrn-34-10", IMAGENETTE: "preact_resnet18"}
AUTO_AUGMENT = {DIGITS: False, MNIST: False, CIFAR: True, IMAGENETTE: True}
LARGE_RGB_SIZE = 32
SHAPE_ARCH = {True: "preact_resnet18", False: "small_cnn"}   # {large RGB: arch}

# What `resolve` assumes for a value it is not given: train_main.py's flag defaults
# (tests/test_flags.py checks that they agree).
DEFAULTS: dict[str, Any] = {
    "dataset": "digits", "data_dir": None, "image_size": None, "max_train_examples": None,
    "max_test_examples": None, "augment": AUTO, "arch": AUTO, "synchronized_bn": False,
    "precision": "float32", "method": "rat", "optimizer": AUTO, "batch_size": 128,
    "train_steps": None, "epochs": None, "steps_per_epoch": None, "learning_rate": AUTO,
    "lr_boundaries": [AUTO],
    "epsilon_warmup": AUTO, "momentum": 0.9, "weight_decay": AUTO, "awp_gamma": 0.0,
    "awp_warmup": AUTO, "eval_epsilon": AUTO,
    "eval_step_size": AUTO, "eval_pgd_steps": 10, "validation_freq": 1, "seed": 0,
    "deterministic": False, "strategy": "default", "tpu": None, "model_dir": None,
    "export_dir": None,
}


def is_auto(value: Any) -> bool:
    """Whether a value (a flag value, or a one-element list flag) is "auto"."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    return isinstance(value, str) and value.strip().lower() == AUTO


# --------------------------------------------------------------------------------------------
# Applying the rules.


def dataset_family(spec: str) -> str:
    """The family a dataset spec belongs to, for the "auto" rules."""
    lowered = spec.strip().lower()
    if lowered == "digits":
        return DIGITS
    if lowered == "mnist":
        return MNIST
    if lowered in ("cifar10", "cifar100"):
        return CIFAR
    if lowered.startswith("imagenette"):
        return IMAGENETTE
    return CUSTOM


def method_hyperparameters() -> dict[str, dict[str, Any]]:
    """{hyperparameter name: {method name: default}} over all registered methods."""
    table: dict[str, dict[str, Any]] = {}
    for method in methods_lib.METHOD_NAMES:
        for name, default in methods_lib.METHODS[method].hyperparameters().items():
            table.setdefault(name, {})[method] = default
    return table


def is_mnist_shape(input_shape: tuple[int, ...]) -> bool:
    return tuple(input_shape) == MNIST_SHAPE


def is_large_rgb(input_shape: tuple[int, ...]) -> bool:
    height, width, channels = input_shape
    return min(height, width) >= LARGE_RGB_SIZE and channels == 3


def recipe_for_family(family: str) -> dict[str, Any] | None:
    """The recipe's "auto" values for a dataset family (None: decided by the image shape)."""
    if family == CUSTOM:
        return None
    return MNIST_RECIPE if family == MNIST else PAPER_RECIPE


def recipe_for_shape(input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The recipe's "auto" values for npz:/folder: data: MNIST's for 28x28 grayscale images."""
    return MNIST_RECIPE if is_mnist_shape(input_shape) else PAPER_RECIPE


def auto_epsilon(method: str, family: str) -> float:
    """epsilon=auto: the dataset's budget, else the method's default (CIFAR's for ST)."""
    defaults = methods_lib.METHODS[method].hyperparameters()
    return DATASET_EPSILON.get(family, defaults.get("epsilon", DEFAULT_EPSILON))


def auto_hyperparameter(name: str, method: str, family: str, epsilon: float) -> tuple[Any, bool]:
    """(value, from the MNIST rule) of a method hyperparameter given as "auto".

    The value is AUTO for a rule that waits for the image shape (npz:/folder: data).
    """
    defaults = methods_lib.METHODS[method].hyperparameters()
    default = defaults[name]
    if name == "epsilon":
        return epsilon, False
    if (name == "step_size" and method not in NON_PIXEL_STEP_SIZE and defaults.get("epsilon")
            and epsilon != defaults["epsilon"]):
        return default * epsilon / defaults["epsilon"], False
    if name == "max_scale" and family == IMAGENETTE:
        return IMAGENETTE_MAX_SCALE, False
    if name in MNIST_METHOD_RULES and family == MNIST:
        return MNIST_METHOD_RULES[name], True
    if name in MNIST_METHOD_RULES and family == CUSTOM:
        return AUTO, False
    return default, False


def hyperparameter_for_shape(name: str, method: str, input_shape: tuple[int, ...]) -> tuple[Any, bool]:
    """(value, from the MNIST rule) of a hyperparameter left open until the image shape is known."""
    if is_mnist_shape(input_shape):
        return MNIST_METHOD_RULES[name], True
    return methods_lib.METHODS[method].hyperparameters()[name], False


# --------------------------------------------------------------------------------------------
# The rules in words, for the flag help.


def format_value(value: Any) -> str:
    """A value as the help shows it: multiples of 1/255 as such (8/255), numbers short."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        in_255ths = value * 255
        if 0 < value < 1 and abs(in_255ths - round(in_255ths)) < 1e-9:
            return f"{round(in_255ths)}/255"
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return str(value)


def _by_value(table: Mapping[str, Any]) -> str:
    """{family: value} as "v1 for digits and mnist, v2 for cifar10/cifar100"."""
    groups: dict[str, list[str]] = {}
    for family, value in table.items():
        groups.setdefault(format_value(value), []).append(FAMILY_NAMES[family])
    return ", ".join(f"{value} for {' and '.join(names)}" for value, names in groups.items())


def _on(table: Mapping[str, Any]) -> str:
    return ", ".join(f"{format_value(value)} on {FAMILY_NAMES[family]}" for family, value in table.items())


_MNIST_DATA = f"mnist, or {MNIST_SHAPE[0]}x{MNIST_SHAPE[1]} grayscale npz:/folder: data"


def describe_hyperparameter(name: str) -> str:
    """The "auto" rule of a method hyperparameter, in words."""
    if name == "epsilon":
        return f"{_on(DATASET_EPSILON)}, otherwise the method's default"
    if name == "step_size":
        return ("the method's default, scaled by --epsilon / the method's default epsilon"
                + (f" (not for {', '.join(sorted(NON_PIXEL_STEP_SIZE))})" if NON_PIXEL_STEP_SIZE else ""))
    if name == "max_scale":
        return f"{_on({IMAGENETTE: IMAGENETTE_MAX_SCALE})}, otherwise the method's default"
    if name in MNIST_METHOD_RULES:
        return f"{format_value(MNIST_METHOD_RULES[name])} on MNIST ({_MNIST_DATA}), otherwise the method's default"
    return "the method's default"


def describe_recipe(name: str) -> str:
    """The training recipe's "auto" rule for one of `RECIPE_FIELDS`, in words."""
    return (f"{format_value(MNIST_RECIPE[name])} for {_MNIST_DATA}, "
            f"{format_value(PAPER_RECIPE[name])} otherwise (the paper's recipe)")


def describe_arch() -> str:
    return (f"{_by_value(AUTO_ARCH)}; for npz:/folder: data {SHAPE_ARCH[False]} below "
            f"{LARGE_RGB_SIZE}x{LARGE_RGB_SIZE} or for grayscale, else {SHAPE_ARCH[True]}")


def describe_augment() -> str:
    on = [FAMILY_NAMES[f] for f, v in AUTO_AUGMENT.items() if v]
    off = [FAMILY_NAMES[f] for f, v in AUTO_AUGMENT.items() if not v]
    return (f"on for RGB images of at least {LARGE_RGB_SIZE}x{LARGE_RGB_SIZE} ({', '.join(on)}, such "
            f"npz:/folder: data), off otherwise ({', '.join(off)})")


def describe_eval_epsilon() -> str:
    without = [m for m in methods_lib.METHOD_NAMES if "epsilon" not in methods_lib.METHODS[m].hyperparameters()]
    return (f"--epsilon ({format_value(DEFAULT_EPSILON)} for methods without one, like "
            f"{', '.join(without)}; {_on(DATASET_EPSILON)})")


def describe_eval_step_size() -> str:
    return (f"eval_epsilon / {1 / EVAL_STEP_FRACTION:g} (the paper's "
            f"{format_value(EVAL_STEP_FRACTION * 8 / 255)} at 8/255)")


def describe_awp_gamma() -> str:
    special = ", ".join(f"{g:g} for {m}" for m, g in awp_lib.METHOD_GAMMA.items())
    return f"the official AWP code's value, {special} and {awp_lib.DEFAULT_GAMMA:g} otherwise"


def describe_awp_warmup() -> str:
    special = ", ".join(f"{w} of the run for {m}" for m, w in awp_lib.METHOD_WARMUP.items())
    return f"the official AWP code's, {special}, 0 otherwise"


def describe_auto(name: str) -> str:
    """The "auto" rule of the flag `name`, in words (KeyError: the flag has no "auto")."""
    if name in RECIPE_FIELDS:
        return describe_recipe(name)
    if name in method_hyperparameters():
        return describe_hyperparameter(name)
    described = {"arch": describe_arch, "augment": describe_augment, "eval_epsilon": describe_eval_epsilon,
                 "eval_step_size": describe_eval_step_size, "awp_gamma": describe_awp_gamma,
                 "awp_warmup": describe_awp_warmup}
    return described[name]()
