"""Flag-named values -> a frozen `TrainConfig`: every value checked, every "auto" resolved.

    cfg = resolve({"dataset": "cifar10", "method": "trades"})   # autos resolved, values checked
    cfg = resolve_for_data(cfg, data.input_shape)               # shape-dependent autos closed

`resolve` checks every value (`rat_tf.config.checks`) and applies the "auto" rules
(`rat_tf.config.rules`); what depends on the image shape of npz:/folder: data stays "auto"
until `resolve_for_data`.
"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import re
from typing import Any

from rat_tf import data as data_lib
from rat_tf import methods as methods_lib
from rat_tf import weight_perturbation as awp_lib
from rat_tf.config import checks, rules
from rat_tf.config.rules import AUTO, DEFAULTS, RECIPE_FIELDS, is_auto
from rat_tf.config.sections import (
    DataConfig,
    EvalConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)


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


def _resolve_recipe(values: Mapping[str, Any], recipe: Mapping[str, Any] | None) -> dict[str, Any]:
    """{recipe field: value}: explicit values checked, "auto"s from `recipe` (or left "auto")."""
    resolved = {}
    for name in RECIPE_FIELDS:
        value = values.get(name, AUTO)
        if is_auto(value):
            resolved[name] = AUTO if recipe is None else recipe[name]
        else:
            resolved[name] = checks.check_recipe_value(name, value)
    return resolved


def _resolve_awp(values: Mapping[str, Any], method: str) -> tuple[float, str]:
    """(awp_gamma, awp_warmup): "auto" is the official AWP code's value for the method."""
    gamma = values.get("awp_gamma", DEFAULTS["awp_gamma"])
    gamma = checks.check_awp_gamma(awp_lib.default_gamma(method) if is_auto(gamma) else gamma)
    warmup = values.get("awp_warmup", DEFAULTS["awp_warmup"])
    if is_auto(warmup):
        return gamma, awp_lib.default_warmup(method) if gamma else "0"
    return gamma, checks.check_warmup("awp_warmup", warmup, "AWP warm-up")


def _resolve_method(values: Mapping[str, Any], family: str) -> tuple[MethodConfig, Any]:
    """The method's hyperparameters, checked, with "auto"s resolved; and the attack epsilon."""
    method = checks.check_method(values.get("method", DEFAULTS["method"]))
    defaults = methods_lib.METHODS[method].hyperparameters()

    def given(name):
        value = values.get(name)
        return AUTO if value is None or is_auto(value) else value

    epsilon = given("epsilon")
    if epsilon == AUTO:
        epsilon = rules.auto_epsilon(method, family)
    resolved, from_rule, explicit = {}, [], set()
    for name, default in defaults.items():
        value = given(name)
        if value != AUTO:
            resolved[name], rule = value, False
            explicit.add(name)
        else:
            resolved[name], rule = rules.auto_hyperparameter(name, method, family, epsilon)
        from_rule += [name] if rule else []
    checks.check_method_hyperparameters(method, resolved, explicit)
    resolved = {name: float(value) if isinstance(defaults[name], float) and value != AUTO else value
                for name, value in resolved.items()}
    return MethodConfig(method=method, hyperparameters=tuple(resolved.items()),
                        from_mnist_rule=tuple(from_rule)), epsilon


def resolve(values: Mapping[str, Any] | None = None) -> TrainConfig:
    """A frozen `TrainConfig` from flag-named values, checked, with the dataset-name "auto"s resolved.

    The "auto"s that depend on the image shape of npz:/folder: data stay open here
    (`augment=None`, `arch="auto"`, the training recipe's "auto"s and `MNIST_METHOD_RULES`'
    hyperparameters); `resolve_for_data` closes them once the data is loaded.

    Args:
      values: {flag name: value}; "auto" (or None for a method hyperparameter) lets the rules
        decide, a missing name takes `DEFAULTS`. Method hyperparameters the chosen method does
        not take are ignored.

    Returns:
      The config.

    Raises:
      ConfigError: a value that cannot be used, naming its field (every rule of
        `rat_tf.config.checks`, and each method's own).
    """
    v = {**DEFAULTS, **(values or {})}
    dataset = checks.check_dataset(v["dataset"])
    family = rules.dataset_family(dataset)
    recipe = _resolve_recipe(v, rules.recipe_for_family(family))
    method, epsilon = _resolve_method(v, family)
    awp_gamma, awp_warmup = _resolve_awp(v, method.method)
    eval_epsilon = checks.check_eval_epsilon(epsilon if is_auto(v["eval_epsilon"]) else v["eval_epsilon"])
    eval_step_size = (eval_epsilon * rules.EVAL_STEP_FRACTION if is_auto(v["eval_step_size"])
                      else checks.check_eval_step_size(v["eval_step_size"]))
    augment = checks.check_augment(v["augment"])
    augment = rules.AUTO_AUGMENT.get(family) if augment is None else augment
    arch = rules.AUTO_ARCH.get(family, AUTO) if is_auto(v["arch"]) else checks.check_arch(v["arch"])

    train_steps, epochs = checks.check_length(v["train_steps"], v["epochs"])
    if train_steps is None and epochs is None:
        if family == rules.DIGITS:
            epochs = rules.DIGITS_EPOCHS
        else:
            train_steps = rules.PAPER_TRAIN_STEPS
    model_dir = (checks.check_directory("model_dir", v["model_dir"])
                 or default_model_dir(dataset, method.method))
    export_dir = (checks.check_directory("export_dir", v["export_dir"])
                  or f"{model_dir.rstrip('/')}/export")

    return TrainConfig(
        data=DataConfig(dataset=dataset, data_dir=v["data_dir"],
                        image_size=checks.check_count("image_size", v["image_size"], 1, optional=True),
                        max_train_examples=checks.check_count("max_train_examples", v["max_train_examples"], 1,
                                                              optional=True),
                        max_test_examples=checks.check_count("max_test_examples", v["max_test_examples"], 1,
                                                             optional=True),
                        augment=augment),
        model=ModelConfig(arch=arch, synchronized_bn=v["synchronized_bn"],
                          precision=checks.check_precision(v["precision"])),
        method=method,
        optim=OptimConfig(batch_size=checks.check_count("batch_size", v["batch_size"], 1),
                          train_steps=train_steps, epochs=epochs,
                          steps_per_epoch=checks.check_count("steps_per_epoch", v["steps_per_epoch"], 1,
                                                             optional=True),
                          momentum=checks.check_momentum(v["momentum"]),
                          awp_gamma=awp_gamma, awp_warmup=awp_warmup, **recipe),
        eval=EvalConfig(eval_epsilon=eval_epsilon, eval_step_size=float(eval_step_size),
                        eval_pgd_steps=checks.check_count("eval_pgd_steps", v["eval_pgd_steps"], 0),
                        validation_freq=checks.check_count("validation_freq", v["validation_freq"], 0)),
        run=RunConfig(seed=v["seed"], deterministic=v["deterministic"], strategy=checks.check_strategy(v["strategy"]),
                      tpu=checks.check_tpu(v["tpu"], v["strategy"]), model_dir=model_dir,
                      export_dir=export_dir),
    )


def resolve_for_data(config: TrainConfig, input_shape: tuple[int, int, int]) -> TrainConfig:
    """Closes the "auto"s that depend on the image shape (npz:/folder: data).

    --augment=auto: on for RGB images of at least 32x32. --arch=auto: small_cnn below 32x32 or
    for grayscale, else preact_resnet18. The training recipe (--optimizer, --learning_rate,
    --lr_boundaries, --weight_decay, --epsilon_warmup) = auto: MNIST's for 28x28 grayscale
    images, else the paper's (`recipe_for_shape`). The method hyperparameters of
    `MNIST_METHOD_RULES` = auto: those values for 28x28 grayscale images, else the method's
    defaults.
    """
    large_rgb = rules.is_large_rgb(input_shape)
    data, model, optim = config.data, config.model, config.optim
    if data.augment is None:
        data = dataclasses.replace(data, augment=large_rgb)
    if model.arch == AUTO:
        model = dataclasses.replace(model, arch=rules.SHAPE_ARCH[large_rgb])
    recipe = rules.recipe_for_shape(input_shape)
    open_fields = {name: recipe[name] for name in RECIPE_FIELDS if getattr(optim, name) == AUTO}
    if open_fields:
        optim = dataclasses.replace(optim, **open_fields)
    method = config.method
    if any(value == AUTO for _, value in method.hyperparameters):
        hyperparameters, from_rule = [], []
        for name, value in method.hyperparameters:
            if value == AUTO:
                value, rule = rules.hyperparameter_for_shape(name, method.method, input_shape)
                value = float(value)
                from_rule += [name] if rule else []
            hyperparameters.append((name, value))
        method = dataclasses.replace(method, hyperparameters=tuple(hyperparameters),
                                     from_mnist_rule=tuple(from_rule))
    return dataclasses.replace(config, data=data, model=model, optim=optim, method=method)
