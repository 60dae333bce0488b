"""The configuration of a training run: frozen dataclasses, and the "auto" rules.

    from rat_tf import config as config_lib

    cfg = config_lib.resolve({"dataset": "cifar10", "method": "trades"})   # autos resolved
    cfg = config_lib.resolve_for_data(cfg, data.input_shape)               # shape-dependent autos
    rat_tf.training.train(cfg)

`resolve` takes values named like train_main.py's flags (missing ones take the flags'
defaults), with "auto" where a rule decides. Method hyperparameters ("auto" = the chosen
method's own default, the paper's CIFAR value) follow three dataset rules: epsilon is 0.1 on
digits and 0.3 on mnist, max_scale is 3.0 on ImageNette, and RAT's end_point_fraction is 0.5
on MNIST (`MNIST_METHOD_RULES`; npz:/folder: data by its image shape); step_size follows
epsilon at the method's ratio. A method receives exactly the hyperparameters it takes.

The training recipe (optimizer, learning_rate, lr_boundaries, weight_decay, epsilon_warmup;
"auto" by default) is the paper's CIFAR one (SGD, lr 0.1 divided by 10 at 37.5% and 56.25% of
the steps, weight decay 2e-4, no warm-up) everywhere but on MNIST: dataset mnist, and
npz:/folder: data of 28x28 grayscale images (decided by `resolve_for_data`), train with Adam,
lr 1e-3 divided by 10 at 75%, no weight decay and a one-epoch epsilon warm-up (`MNIST_RECIPE`);
the paper's recipe keeps a small CNN at chance there.

Config fields are named after the flags, so a config turns back into a flagfile
(`to_flagfile`) that reproduces the run with every "auto" resolved.

Every problem with a value is a `ConfigError` naming the field; train_main.py turns it into
the flag error `--field=value: message`, in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
import dataclasses
import math
import re
from typing import Any

from rat_tf import architectures
from rat_tf import data as data_lib
from rat_tf import methods as methods_lib
from rat_tf import weight_perturbation as awp_lib

AUTO = "auto"

# Training length when neither train_steps nor epochs is given.
PAPER_TRAIN_STEPS = 80_000
# The paper's learning-rate boundaries, 30k and 45k of 80k steps, as fractions of the run.
PAPER_BOUNDARY_FRACTIONS: tuple[float, ...] = (0.375, 0.5625)
DIGITS_EPOCHS = 20.0

OPTIMIZERS = ("sgd", "adam")

# Dataset families for the "auto" rules.
_DIGITS, _MNIST, _CIFAR, _IMAGENETTE, _CUSTOM = "digits", "mnist", "cifar", "imagenette", "custom"

# epsilon=auto on datasets whose pixel budget differs from CIFAR's 8/255.
DATASET_EPSILON = {_DIGITS: 0.1, _MNIST: 0.3}
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


class ConfigError(ValueError):
    """A configuration value that cannot be used.

    Attributes:
      field: the config field (= the train_main.py flag) at fault.
      message: what is wrong, one line.
      value: the value as given (for the message), or None.
    """

    def __init__(self, field: str, message: str, value: Any = None):
        self.field = field
        self.message = " ".join(str(message).split())  # one line
        self.value = value
        super().__init__(f"{field}={value}: {self.message}")


@contextlib.contextmanager
def field_errors(field: str, value: Any, *errors: type[BaseException]) -> Iterator[None]:
    """Turns `errors` raised inside into a `ConfigError` for `field` (and `value`)."""
    try:
        yield
    except ConfigError:
        raise
    except errors as err:
        raise ConfigError(field, str(err), value) from None


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


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What to train and test on (see `rat_tf.data.load`).

    Attributes:
      augment: True/False, or None for "auto" until the image shape is known
        (`resolve_for_data`).
    """

    dataset: str = "digits"
    data_dir: str | None = None
    image_size: int | None = None
    max_train_examples: int | None = None
    max_test_examples: int | None = None
    augment: bool | None = None


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The classifier.

    Attributes:
      arch: an architecture name, or "auto" until the image shape is known (npz:/folder:).
      precision: a Keras dtype policy name in `rat_tf.training.precision.PRECISIONS`.
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
    # The hyperparameters an "auto" took from `MNIST_METHOD_RULES` (for the training log).
    from_mnist_rule: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def kwargs(self) -> dict[str, Any]:
        """The hyperparameters as keyword arguments, for `RATModel(..., **kwargs)`."""
        return dict(self.hyperparameters)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, **self.kwargs()}


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer, schedule and training length (exactly one of train_steps and epochs).

    Attributes:
      optimizer, learning_rate, lr_boundaries, weight_decay, epsilon_warmup: the training
        recipe; "auto" (each
        of them) until the image shape of npz:/folder: data is known (`resolve_for_data`).
      awp_gamma, awp_warmup: adversarial weight perturbation (`rat_tf.weight_perturbation`)
        of relative size gamma (0: off) after a warm-up (a warm-up string, as epsilon_warmup).
    """

    optimizer: str = "sgd"
    batch_size: int = 128
    train_steps: int | None = PAPER_TRAIN_STEPS
    epochs: float | None = None
    steps_per_epoch: int | None = None
    learning_rate: float | str = 0.1
    lr_boundaries: tuple[float, ...] | str = PAPER_BOUNDARY_FRACTIONS
    momentum: float = 0.9
    weight_decay: float | str = 2e-4
    epsilon_warmup: str = "0"
    awp_gamma: float = 0.0
    awp_warmup: str = "0"


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
    tpu: str | None = None
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
            stem = re.sub(r"\.npz$", "", path.replace("\\", "/").split("/")[-1], flags=re.IGNORECASE)
            spec = f"{prefix[:-1]}-{stem}"
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", spec.lower()).strip("-.") or "data"
    return f"runs/{slug}-{method}"


def _auto_arch(family: str) -> str:
    return {_DIGITS: "small_cnn", _MNIST: "small_cnn", _CIFAR: "wrn-34-10",
            _IMAGENETTE: "preact_resnet18"}.get(family, AUTO)


def _auto_augment(family: str) -> bool | None:
    return {_DIGITS: False, _MNIST: False, _CIFAR: True, _IMAGENETTE: True}.get(family)


def _auto_recipe(family: str) -> dict[str, Any] | None:
    """The recipe's "auto" values for a dataset family (None: decided by the image shape)."""
    if family == _CUSTOM:
        return None
    return MNIST_RECIPE if family == _MNIST else PAPER_RECIPE


def recipe_for_shape(input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The recipe's "auto" values for npz:/folder: data: MNIST's for 28x28 grayscale images."""
    return MNIST_RECIPE if tuple(input_shape) == MNIST_SHAPE else PAPER_RECIPE


def _check_recipe_value(name: str, value: Any) -> Any:
    """An explicit recipe value, checked and normalised (raises a `ConfigError` naming `name`)."""
    if name == "optimizer":
        optimizer = str(value).strip().lower()
        if optimizer not in OPTIMIZERS:
            raise ConfigError(name, f"unknown optimizer; allowed: {', '.join(OPTIMIZERS)}, auto", value)
        return optimizer
    if name == "epsilon_warmup":
        from rat_tf.training import schedules  # pylint: disable=g-import-not-at-top  (import cycle)

        with field_errors(name, value, ValueError):
            schedules.parse_warmup(str(value))
        return str(value).strip()
    if name == "lr_boundaries":
        with field_errors(name, value, TypeError, ValueError):
            boundaries = tuple(float(b) for b in ([value] if isinstance(value, (int, float, str))
                                                  else value))
        if not all(math.isfinite(b) and b > 0 for b in boundaries):
            raise ConfigError(name, "must be fractions in (0, 1) or step numbers >= 1", value)
        return boundaries
    with field_errors(name, value, TypeError, ValueError):
        if isinstance(value, bool):
            raise ValueError("must be a number")
        number = float(value)
    if not math.isfinite(number):
        raise ConfigError(name, "must be finite", value)
    if name == "learning_rate" and number <= 0.0:
        raise ConfigError(name, "must be > 0", value)
    if number < 0.0:
        raise ConfigError(name, "must be >= 0", value)
    return number


def _resolve_recipe(values: Mapping[str, Any], recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """{recipe field: value}: explicit values checked, "auto"s from `recipe` (or left "auto")."""
    resolved = {}
    for name in RECIPE_FIELDS:
        value = values.get(name, AUTO)
        if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], str):
            value = value[0] if value[0].strip().lower() == AUTO else value  # ["auto"]: a list flag
        if isinstance(value, str) and value.strip().lower() == AUTO:
            resolved[name] = AUTO if recipe is None else recipe[name]
        else:
            resolved[name] = _check_recipe_value(name, value)
    return resolved


def _resolve_awp(values: Mapping[str, Any], method: str) -> tuple[float, str]:
    """(awp_gamma, awp_warmup): "auto" is the official AWP code's value for the method."""
    gamma = values.get("awp_gamma", DEFAULTS["awp_gamma"])
    if isinstance(gamma, str) and gamma.strip().lower() == AUTO:
        gamma = awp_lib.default_gamma(method)
    with field_errors("awp_gamma", gamma, TypeError, ValueError):
        if isinstance(gamma, bool):
            raise ValueError("must be a number")
        gamma = awp_lib.check_gamma(float(gamma))
    warmup = values.get("awp_warmup", DEFAULTS["awp_warmup"])
    if isinstance(warmup, str) and warmup.strip().lower() == AUTO:
        return gamma, awp_lib.default_warmup(method) if gamma else "0"
    from rat_tf.training import schedules  # pylint: disable=g-import-not-at-top  (import cycle)

    with field_errors("awp_warmup", warmup, ValueError):
        schedules.parse_warmup(str(warmup), what="AWP warm-up")
    return gamma, str(warmup).strip()


def _resolve_method(values: Mapping[str, Any], family: str) -> tuple[MethodConfig, float]:
    """The method's hyperparameters with "auto"s resolved, and the attack epsilon."""
    method = values.get("method", DEFAULTS["method"])
    if method not in methods_lib.METHODS:
        raise ConfigError("method", f"unknown method; allowed: {', '.join(methods_lib.METHOD_NAMES)}",
                          method)
    defaults = methods_lib.METHODS[method].hyperparameters()

    def given(name):
        value = values.get(name)
        return AUTO if value is None else value

    epsilon = given("epsilon")
    if epsilon == AUTO:
        epsilon = DATASET_EPSILON.get(family, defaults.get("epsilon", DEFAULT_EPSILON))
    resolved, from_rule = {}, []
    for name, default in defaults.items():
        value = given(name)
        if value != AUTO:
            resolved[name] = value
        elif name == "epsilon":
            resolved[name] = epsilon
        elif (name == "step_size" and method not in NON_PIXEL_STEP_SIZE
              and defaults.get("epsilon") and epsilon != defaults["epsilon"]):
            resolved[name] = default * epsilon / defaults["epsilon"]
        elif name == "max_scale" and family == _IMAGENETTE:
            resolved[name] = IMAGENETTE_MAX_SCALE
        elif name in MNIST_METHOD_RULES and family in (_MNIST, _CUSTOM):
            # npz:/folder: data: stays "auto" until the image shape is known (resolve_for_data).
            resolved[name] = MNIST_METHOD_RULES[name] if family == _MNIST else AUTO
            from_rule += [name] if family == _MNIST else []
            continue
        else:
            resolved[name] = default
        if isinstance(default, float):
            resolved[name] = float(resolved[name])
    return MethodConfig(method=method, hyperparameters=tuple(resolved.items()),
                        from_mnist_rule=tuple(from_rule)), float(epsilon)


def resolve(values: Mapping[str, Any] | None = None) -> TrainConfig:
    """A frozen `TrainConfig` from flag-named values, with the dataset-name "auto"s resolved.

    The "auto"s that depend on the image shape of npz:/folder: data stay open here
    (`augment=None`, `arch="auto"`, and the training recipe's "auto"s); `resolve_for_data`
    closes them once the data is loaded.

    Args:
      values: {flag name: value}; "auto" (or None for a method hyperparameter) lets the rules
        decide, a missing name takes `DEFAULTS`. Method hyperparameters the chosen method does
        not take are ignored.

    Returns:
      The config.

    Raises:
      ConfigError: an unknown method or architecture, or a bad optimizer, learning_rate,
        lr_boundaries, weight_decay or epsilon_warmup.
    """
    v = {**DEFAULTS, **(values or {})}
    family = dataset_family(v["dataset"])
    recipe = _resolve_recipe(v, _auto_recipe(family))
    method, epsilon = _resolve_method(v, family)
    awp_gamma, awp_warmup = _resolve_awp(v, method.method)
    eval_epsilon = epsilon if v["eval_epsilon"] == AUTO else v["eval_epsilon"]
    eval_step_size = eval_epsilon / 4 if v["eval_step_size"] == AUTO else v["eval_step_size"]
    augment = v["augment"]
    augment = _auto_augment(family) if augment == AUTO else augment in (True, "true")
    if v["arch"] == AUTO:
        arch = _auto_arch(family)
    else:
        with field_errors("arch", v["arch"], ValueError):
            arch = architectures.parse(v["arch"]).name

    train_steps, epochs = v["train_steps"], v["epochs"]
    if train_steps is None and epochs is None:
        if family == _DIGITS:
            epochs = DIGITS_EPOCHS
        else:
            train_steps = PAPER_TRAIN_STEPS
    model_dir = (v["model_dir"].strip() if v["model_dir"] else
                 default_model_dir(v["dataset"], method.method))
    export_dir = (v["export_dir"].strip() if v["export_dir"] else
                  f"{model_dir.rstrip('/')}/export")

    return TrainConfig(
        data=DataConfig(dataset=v["dataset"].strip(), data_dir=v["data_dir"],
                        image_size=v["image_size"], max_train_examples=v["max_train_examples"],
                        max_test_examples=v["max_test_examples"], augment=augment),
        model=ModelConfig(arch=arch, synchronized_bn=v["synchronized_bn"],
                          precision=v["precision"]),
        method=method,
        optim=OptimConfig(batch_size=v["batch_size"], train_steps=train_steps, epochs=epochs,
                          steps_per_epoch=v["steps_per_epoch"], momentum=v["momentum"],
                          awp_gamma=awp_gamma, awp_warmup=awp_warmup, **recipe),
        eval=EvalConfig(eval_epsilon=float(eval_epsilon), eval_step_size=float(eval_step_size),
                        eval_pgd_steps=v["eval_pgd_steps"],
                        validation_freq=v["validation_freq"]),
        run=RunConfig(seed=v["seed"], deterministic=v["deterministic"], strategy=v["strategy"],
                      tpu=v["tpu"] or None, model_dir=model_dir, export_dir=export_dir),
    )


def resolve_for_data(config: TrainConfig, input_shape: tuple[int, int, int]) -> TrainConfig:
    """Closes the "auto"s that depend on the image shape (npz:/folder: data).

    --augment=auto: on for RGB images of at least 32x32. --arch=auto: small_cnn below 32x32 or
    for grayscale, else preact_resnet18. The training recipe (--optimizer, --learning_rate,
    --lr_boundaries, --weight_decay, --epsilon_warmup) = auto: MNIST's for 28x28 grayscale images, else the
    paper's (`recipe_for_shape`). The method hyperparameters of `MNIST_METHOD_RULES` = auto:
    those values for 28x28 grayscale images, else the method's defaults.
    """
    height, width, channels = input_shape
    large_rgb = min(height, width) >= 32 and channels == 3
    data, model, optim = config.data, config.model, config.optim
    if data.augment is None:
        data = dataclasses.replace(data, augment=large_rgb)
    if model.arch == AUTO:
        model = dataclasses.replace(model, arch="preact_resnet18" if large_rgb else "small_cnn")
    recipe = recipe_for_shape(input_shape)
    open_fields = {name: recipe[name] for name in RECIPE_FIELDS if getattr(optim, name) == AUTO}
    if open_fields:
        optim = dataclasses.replace(optim, **open_fields)
    method = config.method
    if any(value == AUTO for _, value in method.hyperparameters):
        mnist = tuple(input_shape) == MNIST_SHAPE
        defaults = methods_lib.METHODS[method.method].hyperparameters()
        method = dataclasses.replace(method, hyperparameters=tuple(
            (name, float(MNIST_METHOD_RULES[name] if mnist else defaults[name])) if value == AUTO
            else (name, value) for name, value in method.hyperparameters),
            from_mnist_rule=tuple(name for name, value in method.hyperparameters
                                  if value == AUTO and mnist))
    return dataclasses.replace(config, data=data, model=model, optim=optim, method=method)


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
