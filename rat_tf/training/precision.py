"""Mixed precision: the Keras dtype policy while a model is built, and float16 loss scaling.

    with precision.policy_scope("mixed_bfloat16"):
        classifier = architectures.build(...)      # layers compute in bfloat16
        model = rat_tf.RATModel(classifier, ...)
        model.compile(optimizer=precision.loss_scaled(optimizer, "mixed_bfloat16"), ...)

Under "mixed_float16" / "mixed_bfloat16" the layers keep float32 weights and compute in the low
precision. What stays float32, and why it is enough:

* logits: every builder in `rat_tf.architectures` gives its last Dense layer dtype="float32";
* the attack: `rat_tf.attacks.pgd` keeps the images, the perturbation, the projection onto the
  epsilon ball and [0, 1] in the images' dtype (float32), and computes its losses from float32
  logits; only the sign of the input gradient is used, and it flows back through the model in
  low precision;
* the training loss: the methods' losses are `keras.losses.Loss` objects, which compute in
  `keras.backend.floatx()` (float32) whatever the policy.

Loss scaling: Keras 3 `Model.compile` wraps the optimizer in a `keras.optimizers.
LossScaleOptimizer` when the model's policy is "mixed_float16" (`auto_scale_loss=True`), and
`RATModel.train_step` calls `optimizer.scale_loss`. That optimizer skips a step whose scaled
gradients overflow without counting it in `optimizer.iterations`. The trainer, the learning-rate
schedule, the input pipeline's fast-forward on resume and the training step's random seed all
take `iterations` as the number of batches consumed, so `loss_scaled` wraps explicitly with
`LossScaleOptimizer` below, which counts a skipped step as a step (as tf.keras 2 did).
bfloat16 has float32's exponent range and needs no loss scaling.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib

import keras

from rat_tf.config import PRECISIONS  # the policy names (also the config's rule)


def _check(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    return precision


@contextlib.contextmanager
def policy_scope(precision: str) -> Iterator[None]:
    """Sets the global Keras dtype policy to `precision` inside the block, then restores it.

    Layers take the global policy when they are created, so the models built inside keep it;
    restoring the previous policy afterwards keeps the setting from leaking into other code in
    the same process (tests, notebooks).

    Args:
      precision: one of `PRECISIONS`.

    Raises:
      ValueError: an unknown precision.
    """
    _check(precision)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@keras.saving.register_keras_serializable(package="rat_tf")
class LossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    """Dynamic loss scaling that still counts a skipped (overflowed) step in `iterations`."""

    def apply(self, grads, trainable_variables=None):
        # A step skipped for non-finite gradients leaves the inner optimizer's count where it
        # was; count it, so that `iterations` is the number of batches trained (the schedules,
        # the warm-up and resuming read it).
        before = keras.ops.add(self.iterations, 0)  # the count now, not a view of the variable
        super().apply(grads, trainable_variables)
        skipped = keras.ops.equal(keras.ops.convert_to_tensor(self.iterations), before)
        self.inner_optimizer.iterations.assign_add(keras.ops.cast(skipped, self.iterations.dtype))


def loss_scaled(optimizer: keras.optimizers.Optimizer,
                precision: str) -> keras.optimizers.Optimizer:
    """`optimizer` wrapped in `LossScaleOptimizer` for "mixed_float16", else unchanged."""
    if _check(precision) == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer):
        return LossScaleOptimizer(optimizer)
    return optimizer
