"""Learning-rate schedule and training-length arithmetic.

The paper trains for 80k steps with lr 0.1, divided by 10 at steps 30k and 45k. Boundaries are
given as *fractions* of the total number of training steps (0.375 and 0.5625 reproduce 30k and
45k of 80k), so a short run keeps the same shape:

    boundaries = resolve_boundaries([0.375, 0.5625], total_steps=80_000)   # [30000, 45000]
    schedule = StepDecay(0.1, boundaries)                                   # 0.1, 0.01, 0.001

Rule for a boundary value b (`rat_tf.config.check_boundary`): 0 < b < 1 is a fraction of the
total steps (rounded to the nearest step); an integer b >= 1 is an absolute step number. Anything
else is an error. Boundaries must not decrease; two that round to the same step (very short runs)
divide by 100 there. The paper's boundaries are `rat_tf.config.PAPER_BOUNDARY_FRACTIONS`, and the
forms of a warm-up length `rat_tf.config.parse_warmup`.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
from typing import Any

import keras
import tensorflow as tf

from rat_tf import validation
from rat_tf.config import check_boundary, parse_warmup


def resolve_boundaries(values: Sequence[float], total_steps: int) -> list[int]:
    """Turns boundary values (fractions or absolute steps) into absolute step numbers.

    Args:
      values: each value is a fraction of `total_steps` if 0 < value < 1, or an absolute step
        number if it is an integer >= 1.
      total_steps: the total number of training steps (> 0).

    Returns:
      Non-decreasing absolute step numbers.

    Raises:
      ValueError: a value is neither a fraction in (0, 1) nor an integer >= 1, or the resolved
        boundaries decrease.
    """
    validation.check_int("total_steps", total_steps, minimum=1)
    steps = []
    for value in values:
        value = check_boundary(value)
        steps.append(int(round(value * total_steps)) if value < 1.0 else int(value))
    if any(b < a for a, b in zip(steps, steps[1:])):
        raise ValueError(f"learning-rate boundaries must not decrease, got {steps} "
                         f"(from {list(values)} of {total_steps} steps)")
    return steps


@keras.saving.register_keras_serializable(package="rat_tf")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant learning rate, multiplied by `decay_factor` at each boundary.

    lr(step) = initial_learning_rate * decay_factor ** (number of boundaries b with step >= b),
    where `step` is the optimizer's iteration count (the number of updates already applied).
    So with boundaries [30000, 45000] the first 30000 updates use lr0, the next 15000 use
    lr0 / 10, and the rest lr0 / 100, as PyTorch's `MultiStepLR` stepped once per iteration.

    Args:
      initial_learning_rate: the learning rate before the first boundary (> 0).
      boundaries: non-decreasing absolute step numbers (see `resolve_boundaries`); a repeated
        boundary applies the factor once per repetition.
      decay_factor: the factor applied at each boundary (the paper: 0.1).
      name: optional name.
    """

    def __init__(self, initial_learning_rate: float, boundaries: Sequence[int] = (),
                 decay_factor: float = 0.1, name: str | None = None):
        super().__init__()
        validation.check_float("initial_learning_rate", initial_learning_rate, minimum=0.0,
                               exclude_minimum=True)
        validation.check_float("decay_factor", decay_factor, minimum=0.0, exclude_minimum=True)
        boundaries = [int(b) for b in boundaries]
        if any(b < 0 for b in boundaries) or any(b < a for a, b in zip(boundaries,
                                                                         boundaries[1:])):
            raise ValueError(f"boundaries must be non-negative and non-decreasing, "
                             f"got {boundaries}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.boundaries = boundaries
        self.decay_factor = float(decay_factor)
        self.name = name

    def values(self) -> list[float]:
        """The learning rate of each piece (len(boundaries) + 1 values)."""
        return [self.initial_learning_rate * self.decay_factor ** i
                for i in range(len(self.boundaries) + 1)]

    def __call__(self, step):
        with tf.name_scope(self.name or "step_decay"):
            step = tf.cast(tf.convert_to_tensor(step), tf.int64)
            if not self.boundaries:
                return tf.constant(self.initial_learning_rate, tf.float32)
            passed = tf.reduce_sum(tf.cast(
                step >= tf.constant(self.boundaries, tf.int64), tf.int32))
            return tf.gather(tf.constant(self.values(), tf.float32), passed)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "boundaries": list(self.boundaries),
            "decay_factor": self.decay_factor,
            "name": self.name,
        }


def steps_per_data_epoch(num_examples: int, batch_size: int) -> int:
    """Optimizer steps in one pass over the training data (the last partial batch dropped).

    Raises:
      ValueError: the batch is larger than the data set (no full batch at all).
    """
    validation.check_int("batch_size", batch_size, minimum=1)
    steps = num_examples // batch_size
    if steps < 1:
        raise ValueError(f"batch size {batch_size} is larger than the {num_examples} training "
                         "examples: no full batch")
    return steps


def total_train_steps(*, train_steps: int | None, epochs: float | None,
                      steps_per_epoch: int) -> int:
    """The training length in optimizer steps, from exactly one of `train_steps` and `epochs`.

    Args:
      train_steps: the number of optimizer steps, or None.
      epochs: the number of (possibly fractional) epochs of `steps_per_epoch` steps, or None.
      steps_per_epoch: steps per epoch (> 0).

    Returns:
      The total number of steps (>= 1); epochs are rounded up to a whole step.

    Raises:
      ValueError: both or neither given, or a non-positive value.
    """
    if (train_steps is None) == (epochs is None):
        raise ValueError("give exactly one of train_steps and epochs")
    validation.check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    if train_steps is not None:
        return validation.check_int("train_steps", train_steps, minimum=1)
    validation.check_float("epochs", epochs, minimum=0.0, exclude_minimum=True)
    return max(1, int(math.ceil(epochs * steps_per_epoch - 1e-9)))


def num_keras_epochs(total_steps: int, steps_per_epoch: int) -> int:
    """Keras epochs (of `steps_per_epoch` steps) needed to run `total_steps` steps."""
    return int(math.ceil(total_steps / steps_per_epoch))


def resolve_warmup(text: str, total_steps: int, steps_per_data_epoch: int) -> int:
    """A warm-up in training steps (see `parse_warmup` for the accepted forms).

    Args:
      text: the warm-up length as given (flag value).
      total_steps: training steps of the run (fractions are of this).
      steps_per_data_epoch: steps in one pass over the training data (epochs are of this).

    Returns:
      Steps >= 0; a fraction or an epoch count rounds to at least 1 step.
    """
    kind, value = parse_warmup(text)
    if kind == "steps":
        return int(value)
    base = total_steps if kind == "fraction" else steps_per_data_epoch
    return max(1, int(round(value * base)))
