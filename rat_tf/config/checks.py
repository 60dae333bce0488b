"""Every rule a config value must follow, checked here once (resolution calls these).

Each check raises a `ConfigError` naming the field (= the flag) and what is allowed. The
method hyperparameters are checked by the method's own constructor (`rat_tf.methods`), whose
error is mapped to the hyperparameter it names (`check_method`).

Also here: the forms of a warm-up length (`parse_warmup`) and of a learning-rate boundary
(`check_boundary`), which the training schedules apply (`rat_tf.training.schedules`).
"""

from __future__ import annotations

from collections.abc import Mapping
import math
import re
from typing import Any

from rat_tf import architectures, validation
from rat_tf import data as data_lib
from rat_tf import methods as methods_lib
from rat_tf import weight_perturbation as awp_lib
from rat_tf.config.errors import ConfigError, field_errors, named_field_errors
from rat_tf.config.rules import AUTO, OPTIMIZERS, PRECISIONS, STRATEGY_NAMES

_EPOCHS_SUFFIX = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*epochs?\s*$")
_WARMUP_FORMS = ("an integer number of steps >= 0, a fraction in (0, 1) of the training steps, or "
                 "a number of epochs such as 2epochs")


def parse_warmup(text: str, what: str = "epsilon warm-up") -> tuple[str, float]:
    """Parses a warm-up length: ("steps", n), ("fraction", f) or ("epochs", e).

    `what` names it in errors: the epsilon ramp's, or the training before AWP starts.

    Accepted: an integer >= 0 (steps; 0 is no warm-up), a fraction in (0, 1) of the training
    steps, or a number of epochs written with the suffix "epochs" (e.g. "2epochs", "0.5epoch").

    Raises:
      ValueError: on anything else, with a message saying what is allowed.
    """
    value = str(text).strip()
    match = _EPOCHS_SUFFIX.match(value.lower())
    if match:
        epochs = float(match.group(1))
        if not (math.isfinite(epochs) and epochs > 0):
            raise ValueError(f"{what} {value!r} must be {_WARMUP_FORMS}")
        return "epochs", epochs
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} must be {_WARMUP_FORMS}") from None
    if 0.0 < number < 1.0:
        return "fraction", number
    if number >= 0.0 and math.isfinite(number) and number == int(number):
        return "steps", float(int(number))
    raise ValueError(f"{what} {value!r} must be {_WARMUP_FORMS}")


def check_warmup(field: str, value: Any, what: str) -> str:
    """A warm-up string, checked (`parse_warmup`) and stripped."""
    with field_errors(field, value, ValueError):
        parse_warmup(str(value), what=what)
    return str(value).strip()


def check_boundary(value: Any) -> float:
    """One learning-rate boundary: a fraction in (0, 1) of the training steps or a step >= 1.

    Raises:
      ValueError: not a number, or neither form.
    """
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"learning-rate boundary {value!r} is not a number") from None
    if not (0.0 < number < 1.0 or (number >= 1.0 and math.isfinite(number) and number == int(number))):
        raise ValueError(f"learning-rate boundary {value} must be a fraction in (0, 1) of the training "
                         "steps or an integer step number >= 1")
    return number


def check_recipe_value(name: str, value: Any) -> Any:
    """An explicit value of the training recipe, checked and normalised."""
    if name == "optimizer":
        optimizer = str(value).strip().lower()
        if optimizer not in OPTIMIZERS:
            raise ConfigError(name, f"unknown optimizer; allowed: {', '.join(OPTIMIZERS)}, auto", value)
        return optimizer
    if name == "epsilon_warmup":
        return check_warmup(name, value, "epsilon warm-up")
    if name == "lr_boundaries":
        values = [value] if isinstance(value, (int, float, str)) else list(value)
        shown = ",".join(str(v) for v in values)
        with field_errors(name, shown, ValueError):
            return tuple(check_boundary(v) for v in values)
    with field_errors(name, value, ValueError):
        number = _number(value)
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError("must be finite")
        if name == "learning_rate":
            return validation.check_float(name, number, minimum=0.0, exclude_minimum=True)
        return validation.check_float(name, number, minimum=0.0)


def _number(value: Any) -> Any:
    """A number given as a string ("0.01") as a float; anything else unchanged."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    return value


def check_awp_gamma(value: Any) -> float:
    with field_errors("awp_gamma", value, ValueError):
        return awp_lib.check_gamma(_number(value))


def check_dataset(spec: Any) -> str:
    """A dataset spec: a known name, or npz:PATH / folder:PATH with a path."""
    text = str(spec or "").strip()
    lowered = text.lower()
    if lowered in data_lib.DATASET_NAMES or any(
            lowered.startswith(prefix) and text[len(prefix):].strip() for prefix in data_lib.SPEC_PREFIXES):
        return text
    raise ConfigError("dataset", f"unknown dataset; allowed: {data_lib.describe_specs()}", spec)


def check_arch(name: str) -> str:
    """An architecture name, canonical (`rat_tf.architectures.parse`)."""
    with field_errors("arch", name, ValueError):
        return architectures.parse(name).name


def check_augment(value: Any) -> bool | None:
    """augment: True/False (or "true"/"false"); None for "auto"."""
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError("augment", "must be auto, true or false", value)


def check_count(name: str, value: Any, minimum: int, optional: bool = False) -> int | None:
    """An integer >= minimum (None allowed when optional)."""
    if value is None and optional:
        return None
    with field_errors(name, value, ValueError):
        return validation.check_int(name, value, minimum=minimum)


def check_length(train_steps: Any, epochs: Any) -> tuple[int | None, float | None]:
    """The training length: train_steps (>= 1) or epochs (> 0), not both."""
    if train_steps is not None and epochs is not None:
        raise ConfigError("epochs", "give train_steps or epochs, not both", epochs)
    steps = check_count("train_steps", train_steps, 1, optional=True)
    if epochs is not None:
        with field_errors("epochs", epochs, ValueError):
            epochs = validation.check_float("epochs", epochs, minimum=0.0, exclude_minimum=True)
    return steps, epochs


def check_momentum(value: Any) -> float:
    with field_errors("momentum", value, ValueError):
        return validation.check_float("momentum", value, minimum=0.0, maximum=1.0, exclude_maximum=True)


def check_eval_epsilon(value: Any) -> float:
    """The evaluation PGD's radius, in [0, 1] (pixel units)."""
    with field_errors("eval_epsilon", value, ValueError):
        return validation.check_float("eval_epsilon", _number(value), minimum=0.0, maximum=1.0)


def check_eval_step_size(value: Any) -> float:
    """The evaluation PGD's step size, >= 0 (pixel units)."""
    with field_errors("eval_step_size", value, ValueError):
        return validation.check_float("eval_step_size", _number(value), minimum=0.0)


def check_directory(name: str, value: Any) -> str | None:
    """A directory flag: None (its default) or a non-empty path."""
    if value is None:
        return None
    if not str(value).strip():
        raise ConfigError(name, "must not be empty", value)
    return str(value).strip()


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """One of `allowed` names."""
    if value not in allowed:
        raise ConfigError(name, f"unknown {name}; allowed: {', '.join(allowed)}", value)
    return value


def check_precision(value: Any) -> str:
    return check_choice("precision", value, PRECISIONS)


def check_strategy(value: Any) -> str:
    return check_choice("strategy", value, STRATEGY_NAMES)


def check_tpu(tpu: Any, strategy: str) -> str | None:
    if tpu and strategy != "tpu":
        raise ConfigError("tpu", f"a TPU address only applies with strategy=tpu (got strategy={strategy})", tpu)
    return tpu or None


def check_method(method: Any) -> str:
    return check_choice("method", method, methods_lib.METHOD_NAMES)


def check_method_hyperparameters(method: str, values: Mapping[str, Any], given: set[str]) -> None:
    """Builds the method from `values` (its constructor checks every range and rule).

    A hyperparameter still "auto" (open until the image shape is known) is checked at the
    method's default. The constructor's error names the hyperparameters it is about; the
    `ConfigError` names the first of them the user gave (else the first named).

    Raises:
      ConfigError: naming the hyperparameter (or `method` when the message names none).
    """
    defaults = methods_lib.METHODS[method].hyperparameters()
    kwargs = {}
    for name, value in values.items():
        if value == AUTO:
            value = defaults[name]
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, "must be a number", value)
        kwargs[name] = value
    with named_field_errors(values, "method", TypeError, ValueError, prefer=given, default_value=method):
        methods_lib.METHODS[method](**kwargs)
