"""The sections of a training config: frozen dataclasses named after the flags.

`TrainConfig` holds one section per concern (data, model, method, optim, eval, run); every field
is named after the train_main.py flag that sets it, so `flag_values()` is the run's flags and
`rat_tf.config.to_flagfile` writes them back.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rat_tf.config.rules import PAPER_BOUNDARY_FRACTIONS, PAPER_TRAIN_STEPS


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

